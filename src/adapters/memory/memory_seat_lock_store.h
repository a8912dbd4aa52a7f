#pragma once
// The embedded Seat Lock Store: every event's seats, holds and counts in this process's memory,
// one mutex per event. Real code with the same contract suite as the Redis adapter. After a
// restart it starts empty; the Booking Service replays the bookings store into it (restore()).

#include <atomic>
#include <memory>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/row_index.h"
#include "domain/seat_layout.h"
#include "ports/seat_lock_store.h"

namespace boxoffice {

class MemorySeatLockStore final : public SeatLockStore {
 public:
  /// Finished holds (expired, released) stay readable for `finished_hold_retention`.
  explicit MemorySeatLockStore(Millis finished_hold_retention = std::chrono::hours{1});
  ~MemorySeatLockStore() override;

  void add_event(const Event& event) override;
  void restore(const std::string& event_id, const std::vector<RestoredClaim>& claims) override;
  void raise_fence_floor(uint64_t fence) override;
  Result<Hold> hold(const HoldRequest& request) override;
  Result<Hold> get_hold(const std::string& hold_id, Timestamp now) override;
  Result<Hold> release(const std::string& hold_id, Timestamp now) override;
  Result<Hold> begin_checkout(const std::string& hold_id, Timestamp now) override;
  void abort_checkout(const std::string& hold_id, bool keep) override;
  void set_waitlisted(const std::string& event_id, const std::string& section,
                      uint32_t waiting) override;
  Result<uint32_t> free_seats(const std::string& event_id, const std::string& section,
                              Timestamp now) override;
  std::vector<SectionRef> sweep_expired(Timestamp now, size_t limit) override;
  Status mark_sold(const std::string& hold_id, Timestamp now) override;
  Status release_booked(const std::string& hold_id, Timestamp now) override;
  Result<std::vector<SectionAvailability>> availability(const std::string& event_id,
                                                        Timestamp now) override;
  Result<std::vector<SeatState>> seats(const std::string& event_id, const std::string& section_id,
                                       const std::optional<std::string>& row,
                                       Timestamp now) override;

 private:
  struct EventState;
  struct HoldRecord;

  std::shared_ptr<EventState> find_event(const std::string& event_id) const;
  std::shared_ptr<EventState> find_event_of_hold(const std::string& hold_id) const;
  /// Runs fn(state, record) under the hold's event lock, after reclaiming expired holds;
  /// not_found when the hold is unknown.
  template <class Fn>
  auto with_hold(const std::string& hold_id, Timestamp now, Fn&& fn)
      -> decltype(fn(std::declval<EventState&>(), std::declval<HoldRecord&>()));
  /// Expires every active hold whose time has come and forgets finished ones past retention.
  void reclaim(EventState& state, Timestamp now, size_t limit = SIZE_MAX);
  void free_seats(EventState& state, HoldRecord& record);
  void finish(EventState& state, HoldRecord& record, HoldStatus status, Timestamp now);

  const Millis retention_;
  std::atomic<uint64_t> next_fence_{1};

  mutable std::shared_mutex events_mutex_;
  std::unordered_map<std::string, std::shared_ptr<EventState>> events_;

  mutable std::mutex hold_index_mutex_;  // taken after an event's mutex, never before
  std::unordered_map<std::string, std::string> event_of_hold_;
};

}  // namespace boxoffice

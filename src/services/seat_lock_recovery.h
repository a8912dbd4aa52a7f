#pragma once
// The Seat Lock Store is a fast gate that may forget: Redis restarted without persistence, or a
// failover to a replica that had not seen the latest writes. The Bookings DB is the record, so
// what the gate forgot can be rebuilt from it. RecoveringSeatLockStore wraps the real store for
// every service that uses it (booking, waitlist, payments): a call that finds an event forgotten
// (LockStateLost) rebuilds that event from the Bookings DB — fence floor, layout, live claims —
// and runs once more; a payment settled for a hold of an event this process has not seen (made
// by another process) loads the events and runs once more. While one caller rebuilds an event,
// others touching it get StorageError (503, "retry shortly") instead of a guess, so a forgotten
// seat is never sold twice, and sales resume by themselves once the rebuild is done.

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "ports/booking_store.h"
#include "ports/seat_lock_store.h"

namespace boxoffice {

class RecoveringSeatLockStore final : public SeatLockStore {
 public:
  RecoveringSeatLockStore(SeatLockStore& inner, BookingStore& bookings);

  /// Events rebuilt since start (for logs and tests).
  uint64_t rebuilds() const;

  /// Makes every event of the bookings DB known to the store (a known one is left as it is).
  /// A process that settles payments for events another process created (the payments role
  /// running apart) calls it at start; settling a hold of an event it still does not know
  /// calls it again and retries once.
  void load_events();

  void add_event(const Event& event) override;
  void restore(const std::string& event_id, const std::vector<RestoredClaim>& claims) override;
  void raise_fence_floor(uint64_t fence) override;
  Result<Hold> hold(const HoldRequest& request) override;
  /// Passes LockStateLost through: rebuilding reads the Bookings DB, which blocks, so the caller
  /// (the Api) answers that request with hold() on a worker instead.
  void async_hold(const HoldRequest& request, HoldDone done) override;
  Result<Hold> get_hold(const std::string& hold_id, Timestamp now) override;
  Result<Hold> release(const std::string& hold_id, Timestamp now) override;
  Result<Hold> begin_checkout(const std::string& hold_id, Timestamp now) override;
  void abort_checkout(const std::string& hold_id, bool keep) override;
  Status mark_sold(const std::string& hold_id, Timestamp now) override;
  Status release_booked(const std::string& hold_id, Timestamp now) override;
  void set_waitlisted(const std::string& event_id, const std::string& section,
                      uint32_t waiting) override;
  Result<uint32_t> free_seats(const std::string& event_id, const std::string& section,
                              Timestamp now) override;
  std::vector<SectionRef> sweep_expired(Timestamp now, size_t limit) override;
  Result<std::vector<SectionAvailability>> availability(const std::string& event_id,
                                                        Timestamp now) override;
  Result<std::vector<SeatState>> seats(const std::string& event_id, const std::string& section_id,
                                       const std::optional<std::string>& row,
                                       Timestamp now) override;

 private:
  /// Runs `call`; if the store lost the event, rebuilds it and runs `call` once more.
  template <class Call>
  auto recovering(Call&& call) -> decltype(call());
  void rebuild(const std::string& event_id);

  SeatLockStore& inner_;
  BookingStore& bookings_;
  mutable std::mutex mutex_;
  std::set<std::string> rebuilding_;  // events whose rebuild is in progress
  uint64_t rebuilds_ = 0;
};

}  // namespace boxoffice

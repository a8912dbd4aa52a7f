#pragma once
// The Booking Service: events, availability, holds, checkout, bookings and cancellation, written
// against the ports only. The hot path (holds, availability) touches only the Seat Lock Store and
// this process's cache of events; the Bookings DB is the arbiter at checkout.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/booking.h"
#include "domain/caller.h"
#include "domain/event.h"
#include "domain/hold.h"
#include "domain/result.h"
#include "ports/booking_store.h"
#include "ports/clock.h"
#include "ports/seat_lock_store.h"

namespace boxoffice {

struct EventStats {
  std::string event_id;
  std::vector<SectionAvailability> sections;
  BookingCounts bookings;
};

class BookingService {
 public:
  BookingService(const Clock& clock, SeatLockStore& locks, BookingStore& bookings);

  /// Start-up: loads every event into the Seat Lock Store and replays the live bookings into it,
  /// so sold seats stay sold and seats of bookings awaiting payment stay held. Also raises the
  /// lock store's fence floor above every fence the bookings store has seen.
  void recover();

  /// Loads events this instance has not seen (created by another instance); returns how many.
  /// Blocking; run it in the background.
  size_t refresh_events();

  /// Admin only. Fills id and created_at; sale_opens_at must already be set (the API defaults it
  /// to the time of the request).
  Result<Event> create_event(const Caller& caller, Event event);
  std::vector<Event> list_events();
  Result<Event> get_event(const std::string& event_id);
  /// The seat counts of every section. With an availability max age set, a count made at most
  /// that long ago answers (availability is advice: a hold is what decides), so a crowd refreshing
  /// the page costs the Seat Lock Store one call per event per max age.
  Result<std::vector<SectionAvailability>> availability(const std::string& event_id);
  /// 0 (the default): every call counts afresh.
  void set_availability_max_age(Millis max_age) { availability_max_age_ = max_age; }
  /// True when availability(event_id) would answer from a count younger than half the max age
  /// (so, without calling the Seat Lock Store, even if the call comes a moment later).
  bool availability_cached(const std::string& event_id) const;
  Result<std::vector<SeatState>> seats(const std::string& event_id, const std::string& section_id,
                                       const std::optional<std::string>& row);
  /// Admin only.
  Result<EventStats> stats(const Caller& caller, const std::string& event_id);

  Result<Hold> create_hold(const Caller& caller, const std::string& event_id,
                           const HoldSelection& selection);
  /// create_hold without blocking on a remote Seat Lock Store: `done` runs once, maybe on the
  /// store's I/O thread (SeatLockStore::async_hold), maybe before this returns.
  void async_create_hold(const Caller& caller, const std::string& event_id,
                         const HoldSelection& selection, SeatLockStore::HoldDone done);
  Result<Hold> get_hold(const Caller& caller, const std::string& hold_id);
  Result<Hold> release_hold(const Caller& caller, const std::string& hold_id);

  /// Turns an active hold into a pending_payment booking (and its payment job). Checking out a
  /// hold that is already checked out returns its booking.
  Result<Booking> checkout(const Caller& caller, const std::string& hold_id,
                           const std::string& payment_method);
  Result<Booking> get_booking(const Caller& caller, const std::string& booking_id);
  /// The booking made from a hold, if any (blocking: the bookings store).
  std::optional<Booking> booking_of_hold(const std::string& hold_id) {
    return bookings_.find_booking_by_hold(hold_id);
  }
  std::vector<Booking> list_bookings(const Caller& caller);
  /// A confirmed booking becomes cancelled, with a refund job in the same transaction.
  Result<Booking> cancel_booking(const Caller& caller, const std::string& booking_id);

  /// What other parts want to hear about. Set before serving; each must be quick and must not
  /// block (holds are released on I/O threads).
  struct Hooks {
    /// A booking (and its charge job) or a cancellation (and its refund job) was committed.
    std::function<void(const Booking&)> payment_job_committed;
    /// A hold was released by its buyer: its section got seats back.
    std::function<void(const Hold& hold)> hold_released;
  };
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }

  static constexpr size_t bookings_list_max = 500;

 private:
  struct CountedAvailability {
    std::vector<SectionAvailability> sections;
    std::chrono::steady_clock::time_point counted_at;
  };
  Millis availability_max_age_{0};
  mutable std::shared_mutex availability_mutex_;
  std::unordered_map<std::string, CountedAvailability> availability_counts_;

  std::shared_ptr<const Event> find_event(const std::string& event_id);
  /// What the Seat Lock Store is asked for a hold, or why it is refused before that.
  Result<HoldRequest> hold_request(const Caller& caller, const std::string& event_id,
                                   const HoldSelection& selection);

  const Clock& clock_;
  Hooks hooks_;
  SeatLockStore& locks_;
  BookingStore& bookings_;

  // Events never change once created, so every instance may cache them for good.
  std::shared_mutex events_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Event>> events_;
};

}  // namespace boxoffice

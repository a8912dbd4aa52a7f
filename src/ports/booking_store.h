#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/booking.h"
#include "domain/event.h"
#include "domain/hold.h"
#include "domain/result.h"
#include "ports/seat_lock_store.h"

namespace boxoffice {

/// Everything the checkout transaction needs. The hold comes from SeatLockStore::begin_checkout
/// (with its original expires_at and fence).
struct CheckoutRequest {
  std::string booking_id;  // chosen by the caller (new_id("bkg"))
  Hold hold;
  std::string payment_method;
  Timestamp now{};
};

/// The booking a checkout creates: the hold's seats and amount, pending payment.
inline Booking pending_booking(const CheckoutRequest& request) {
  const Hold& hold = request.hold;
  Booking booking;
  booking.id = request.booking_id;
  booking.event_id = hold.event_id;
  booking.hold_id = hold.id;
  booking.buyer = hold.buyer;
  booking.section = hold.section;
  booking.seats = hold.seats;
  booking.quantity = hold.quantity;
  booking.amount = hold.amount;
  booking.currency = hold.currency;
  booking.payment_method = request.payment_method;
  booking.status = BookingStatus::pending_payment;
  booking.fence = hold.fence;
  booking.created_at = request.now;
  booking.updated_at = request.now;
  return booking;
}

struct BookingCounts {
  uint32_t pending_payment = 0;
  uint32_t confirmed = 0;
  uint32_t payment_failed = 0;
  uint32_t cancelled = 0;
  uint32_t refunded = 0;
  int64_t revenue = 0;  // amount of confirmed bookings (cancelled ones count until refunded)
  uint64_t payment_attempts = 0;  // charge attempts over all bookings of the event
  uint32_t dead_lettered = 0;     // bookings whose charge job exhausted its deliveries
};

/// A payment job waiting in the outbox (written in the same transaction as its booking).
struct OutboxJob {
  int64_t sequence = 0;
  std::string kind;  // "charge" or "refund"
  std::string booking_id;
  Timestamp created_at{};
};

/// Bookings DB: the record of every event, booking and seat sold, and the final arbiter of a sale.
/// Every write is one ACID transaction and durable when the call returns.
///
/// Thread-safe. Business refusals are Error values; engine failures are thrown as StorageError.
class BookingStore {
 public:
  virtual ~BookingStore() = default;

  /// Errors: conflict (an event with this id exists).
  virtual Status create_event(const Event& event) = 0;
  virtual std::optional<Event> get_event(const std::string& event_id) = 0;
  /// Events ordered by starts_at, then id.
  virtual std::vector<Event> list_events() = 0;

  /// The checkout transaction. In one transaction: accepts the hold only if now < its expires_at
  /// and no seat (or the general section) has been booked under a higher fence; refuses a seat
  /// already in a live booking (a unique constraint, not a prior read) and a general section past
  /// its capacity; writes the booking (pending_payment), its seats and a "charge" outbox job.
  /// A booking already made from this hold is returned as is (checkout is idempotent per hold).
  /// Errors: hold_expired (expired or fenced out), seats_unavailable (+ ids), sold_out.
  virtual Result<Booking> create_booking(const CheckoutRequest& request) = 0;

  virtual std::optional<Booking> get_booking(const std::string& booking_id) = 0;
  virtual std::optional<Booking> find_booking_by_hold(const std::string& hold_id) = 0;
  /// A buyer's bookings, newest first, at most `limit`.
  virtual std::vector<Booking> list_bookings(const std::string& buyer, size_t limit) = 0;

  /// Moves a booking from `from` to `to` if it is still in `from` (and the state machine allows
  /// it); a refund job is written in the same transaction when `to` is cancelled. Seats stop
  /// being live when the booking reaches payment_failed or refunded.
  /// Errors: not_found, invalid_state (the booking is not in `from`).
  virtual Result<Booking> transition(const std::string& booking_id, BookingStatus from,
                                     BookingStatus to, Timestamp now,
                                     const std::string& last_error = {}) = 0;

  /// The live bookings of an event as seat claims, to rebuild the Seat Lock Store.
  virtual std::vector<RestoredClaim> live_claims(const std::string& event_id) = 0;
  /// The highest fence of any booking (0 when none).
  virtual uint64_t max_fence() = 0;
  virtual BookingCounts counts(const std::string& event_id) = 0;

  /// The oldest outbox jobs not yet published, at most `limit`.
  virtual std::vector<OutboxJob> pending_outbox(size_t limit) = 0;
  /// The relay handed these jobs to the Payment Queue; they leave the outbox.
  virtual void mark_outbox_published(const std::vector<int64_t>& sequences) = 0;

  /// A charge attempt was made: payment_attempts + 1 and last_error set to `error` (cleared when
  /// empty); updated_at = now. Errors: not_found.
  virtual Status record_payment_attempt(const std::string& booking_id, const std::string& error,
                                        Timestamp now) = 0;
  /// The booking's payment job exhausted its deliveries (counted once in counts()).
  virtual void mark_dead_lettered(const std::string& booking_id) = 0;
  /// Bookings in `status` not updated since `before`, oldest first, at most `limit`: the
  /// reconciler's input (a pending_payment or cancelled booking whose job may have been lost).
  virtual std::vector<Booking> stale_bookings(BookingStatus status, Timestamp before,
                                              size_t limit) = 0;
};

}  // namespace boxoffice

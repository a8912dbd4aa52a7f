#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/event.h"
#include "domain/hold.h"
#include "domain/result.h"

namespace boxoffice {

struct HoldRequest {
  std::string hold_id;  // chosen by the caller (new_id("hld"))
  std::string event_id;
  std::string buyer;
  HoldSelection selection;
  Timestamp now{};
  Timestamp expires_at{};
  uint32_t buyer_seats_max = 0;  // seats this buyer may hold or have booked in the event
  /// An offer to a waiting buyer: may take seats kept for the section's waitlist.
  bool for_waitlist = false;
};

struct SectionAvailability {
  std::string id;
  SectionKind kind = SectionKind::general;
  uint32_t capacity = 0;
  uint32_t available = 0;
  uint32_t held = 0;  // active holds and bookings waiting for payment
  uint32_t sold = 0;
  uint32_t waitlisted = 0;  // buyers waiting; while any do, free seats read as held (kept)
};

/// A section of an event, as named in the API.
struct SectionRef {
  std::string event_id;
  std::string section;
  bool operator==(const SectionRef&) const = default;
};

enum class SeatStatus { available, held, sold };
std::string_view to_string(SeatStatus status);

struct SeatState {
  std::string id;
  SeatStatus status = SeatStatus::available;
};

/// A seat claim the bookings store knows about, replayed into an empty lock store at start-up.
struct RestoredClaim {
  std::string hold_id;
  std::string buyer;
  std::string section;
  std::vector<std::string> seats;  // empty for general admission
  uint32_t quantity = 0;
  bool sold = false;  // confirmed (or cancelled, not yet refunded): sold; pending_payment: held
  Timestamp hold_created_at{};  // the checked-out hold's own times, shown by get_hold
  Timestamp hold_expires_at{};
};

/// Thrown when the store no longer knows an event it was given: its engine restarted empty or
/// failed over to a replica that had not seen it. The Booking Service rebuilds the event
/// (add_event, then restore from the bookings store) and refuses holds on it with 503 until then,
/// rather than risking a double sale.
class LockStateLost : public StorageError {
 public:
  explicit LockStateLost(std::string event_id)
      : StorageError("the seat lock store lost the state of event " + event_id),
        event_id_(std::move(event_id)) {}
  const std::string& event_id() const { return event_id_; }

 private:
  std::string event_id_;
};

/// Seat Lock Store: the fast gate of every sale. It keeps, per event, which seats are free, held
/// or sold, every hold with its expiry and fencing token, and each buyer's seat count. Every
/// operation is atomic (all or nothing) and judges expiry by the `now` it is given: a hold is
/// valid only while now < expires_at, whether or not anything has reclaimed it yet.
///
/// Thread-safe. Business refusals are returned as Error values; an engine failure is thrown as
/// StorageError. Costs do not grow with the size of the event.
class SeatLockStore {
 public:
  virtual ~SeatLockStore() = default;

  /// Makes an event's layout known. Idempotent. The event takes holds once restore() ran for it
  /// (with no claims for a new event), so a store that lost its state is never re-opened with
  /// every seat free.
  virtual void add_event(const Event& event) = 0;

  /// Puts back what the bookings store says is taken, before any hold is taken on the event
  /// (start-up, a new event, or an engine that came back empty), and opens the event for holds.
  /// Claims already present are left alone; an event already open is left as it is.
  virtual void restore(const std::string& event_id, const std::vector<RestoredClaim>& claims) = 0;

  /// Every fence granted from now on is greater than `fence` (the highest the bookings store has
  /// seen), so tokens keep increasing across restarts of an engine that forgot its counter.
  virtual void raise_fence_floor(uint64_t fence) = 0;

  /// Takes every requested seat (or the quantity) for the buyer, or nothing.
  /// Errors: not_found (event, section or seat), seats_unavailable (+ the ids that are taken),
  /// sold_out (not enough seats left in the section), limit_exceeded (buyer cap),
  /// invalid_request (seats from more than one section, repeated seats, quantity 0).
  virtual Result<Hold> hold(const HoldRequest& request) = 0;

  /// How an asynchronous call ends: with the exception the synchronous form would throw
  /// (StorageError, LockStateLost; then `hold` holds nothing meaningful), or with its result.
  using HoldDone = std::function<void(std::exception_ptr error, Result<Hold> hold)>;
  /// hold(), without blocking the calling thread on a remote engine: `done` runs once, possibly
  /// on the engine client's I/O thread (so it must not block), possibly before this returns. The
  /// default runs hold() in place, which suits a store in memory.
  virtual void async_hold(const HoldRequest& request, HoldDone done);

  /// The hold as of `now` (an active hold past its expiry reads as expired). not_found if unknown
  /// or forgotten (finished holds are kept for a retention period only).
  virtual Result<Hold> get_hold(const std::string& hold_id, Timestamp now) = 0;

  /// Frees an active hold's seats. Errors: not_found, hold_expired (already expired),
  /// invalid_state (checked out or released).
  virtual Result<Hold> release(const std::string& hold_id, Timestamp now) = 0;

  /// Checkout's first step: the hold must be active at `now`; it becomes checked_out. From then
  /// on expiry no longer frees its seats: they stay held until the booking's outcome sells or
  /// releases them (the payment pipeline). Returns the hold as it was before (active, with its
  /// expires_at and fence), which the bookings store checks again in its transaction.
  /// Errors: not_found, hold_expired (expired or released), invalid_state (already checked out).
  virtual Result<Hold> begin_checkout(const std::string& hold_id, Timestamp now) = 0;

  /// Undoes begin_checkout when the booking could not be written: back to active with the
  /// original expiry if `keep` (an engine failure, the buyer may retry), else released.
  virtual void abort_checkout(const std::string& hold_id, bool keep) = 0;

  /// Payment approved: a checked-out hold's seats become sold. Repeating it changes nothing.
  /// not_found when the store does not know the hold (it is rebuilt from the bookings store).
  virtual Status mark_sold(const std::string& hold_id, Timestamp now) = 0;

  /// Payment failed, or the booking was refunded: a checked-out hold's seats (held or sold) are
  /// free again and the hold reads as released. Repeating it changes nothing. not_found as above.
  virtual Status release_booked(const std::string& hold_id, Timestamp now) = 0;

  /// How many buyers wait for this section. While any do, seats that come back are kept for them:
  /// public holds there are refused as sold_out, the free seats read as held, and only holds
  /// `for_waitlist` take them. Zero gives the free seats back to the public.
  virtual void set_waitlisted(const std::string& event_id, const std::string& section,
                              uint32_t waiting) = 0;

  /// Free seats of a section at `now`, those kept for its waitlist included.
  virtual Result<uint32_t> free_seats(const std::string& event_id, const std::string& section,
                                      Timestamp now) = 0;

  /// Expires every hold whose time has come, at most `limit` of them, and returns the sections
  /// that got seats back that way (also those expired lazily by other calls since the last
  /// sweep), so waiting buyers can be offered them. Expiry never depends on this running.
  virtual std::vector<SectionRef> sweep_expired(Timestamp now, size_t limit) = 0;

  /// Seat counts per section, in the event's section order. not_found for an unknown event.
  virtual Result<std::vector<SectionAvailability>> availability(const std::string& event_id,
                                                                Timestamp now) = 0;

  /// The status of every seat of a reserved section, in seat order; optionally one row only.
  virtual Result<std::vector<SeatState>> seats(const std::string& event_id,
                                               const std::string& section_id,
                                               const std::optional<std::string>& row,
                                               Timestamp now) = 0;
};

}  // namespace boxoffice

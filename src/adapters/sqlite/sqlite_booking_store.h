#pragma once
// The Bookings DB and the idempotency records in one embedded SQLite file (which also holds the
// Payment Queue, see sqlite_payment_queue.h).
//
// The database, not a prior read, is the arbiter of a sale: a partial unique index allows each
// seat in one live booking only, a guarded UPDATE keeps a general section within its capacity,
// and a per-seat fence refuses a hold older than one already booked. The schema is created and
// upgraded by numbered migrations (sqlite_schema.h) when the store opens.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "adapters/sqlite/sqlite_connection.h"
#include "ports/booking_store.h"
#include "ports/idempotency_store.h"

namespace boxoffice {

class SqliteBookingStore final : public BookingStore, public IdempotencyStore {
 public:
  static constexpr Millis busy_timeout_default{5'000};

  // Opens (creating if needed) the database at `path`, whose directory must exist, and brings
  // its schema up to date. Every call waits at most `busy_timeout` for a connection and for
  // SQLite's locks, then throws StorageError.
  SqliteBookingStore(const std::string& path, size_t connections,
                     Millis busy_timeout = busy_timeout_default);
  ~SqliteBookingStore() override;

  // BookingStore
  Status create_event(const Event& event) override;
  std::optional<Event> get_event(const std::string& event_id) override;
  std::vector<Event> list_events() override;
  Result<Booking> create_booking(const CheckoutRequest& request) override;
  std::optional<Booking> get_booking(const std::string& booking_id) override;
  std::optional<Booking> find_booking_by_hold(const std::string& hold_id) override;
  std::vector<Booking> list_bookings(const std::string& buyer, size_t limit) override;
  Result<Booking> transition(const std::string& booking_id, BookingStatus from, BookingStatus to,
                             Timestamp now, const std::string& last_error = {}) override;
  std::vector<RestoredClaim> live_claims(const std::string& event_id) override;
  uint64_t max_fence() override;
  BookingCounts counts(const std::string& event_id) override;
  std::vector<OutboxJob> pending_outbox(size_t limit) override;
  void mark_outbox_published(const std::vector<int64_t>& sequences) override;
  Status record_payment_attempt(const std::string& booking_id, const std::string& error,
                                Timestamp now) override;
  void mark_dead_lettered(const std::string& booking_id) override;
  std::vector<Booking> stale_bookings(BookingStatus status, Timestamp before,
                                      size_t limit) override;

  // IdempotencyStore
  IdempotencyOutcome begin(const std::string& buyer, const std::string& key,
                           const std::string& fingerprint, Timestamp now, Millis lease) override;
  void complete(const std::string& buyer, const std::string& key, const StoredResponse& response,
                Timestamp now) override;
  void abandon(const std::string& buyer, const std::string& key) override;
  size_t purge(Timestamp now, Millis retention) override;

 private:
  SqlitePool pool_;
};

}  // namespace boxoffice

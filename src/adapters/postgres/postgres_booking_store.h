#pragma once
// The Bookings DB and the idempotency records in PostgreSQL, over libpq. Same schema semantics
// as the embedded SQLite adapter (sqlite_booking_store.h): the database, not a prior read, is
// the arbiter of a sale — a partial unique index allows each seat in one live booking only, a
// guarded UPDATE keeps a general section within its capacity, and a per-seat fence refuses a
// hold older than one already booked. The schema is brought up to date by numbered migrations
// (pg_schema.h) when the store opens.
//
// Isolation: READ COMMITTED with row-level guards rather than SERIALIZABLE. Every decision that
// must not race is taken by one statement that re-checks its condition on the newest row
// version after waiting for the row lock (PostgreSQL's EvalPlanQual), or by a unique index:
//   - a transition is `UPDATE ... WHERE id = $1 AND status = $from`: of two racing transitions
//     the second re-reads the status the first committed and changes nothing;
//   - capacity is `UPDATE section_sales SET sold = sold + q WHERE sold + q <= capacity`;
//   - a fence is an upsert whose DO UPDATE is guarded by `excluded.fence >= fence`;
//   - a seat is an insert into booking_seats under the partial unique index on live seats, and
//     a hold is an insert under the unique hold_id: a racing insert waits for the first one's
//     transaction and then conflicts (or goes ahead if it rolled back).
// No read that precedes a write decides anything, so nothing here is exposed to the anomalies
// SERIALIZABLE would prevent, and no checkout pays for predicate locks or aborts. Rows are
// locked in one order (seats sorted) so checkouts do not deadlock; should one still lose a
// deadlock (40P01) or a serialization failure (40001), the call is run again, a bounded number
// of times.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "adapters/postgres/pg_connection.h"
#include "ports/booking_store.h"
#include "ports/idempotency_store.h"

namespace boxoffice {

class PostgresBookingStore final : public BookingStore, public IdempotencyStore {
 public:
  // Attempts of one call that lost a deadlock or serialization failure, before StorageError.
  static constexpr int attempts_max = 5;

  // `url`: a libpq URL ("postgresql://user@host:port/db") or key=value string. Connects and
  // brings the schema up to date (StorageError when the server cannot be reached). At most
  // `connections` connections are open; a call waits at most `acquire_timeout` for one.
  PostgresBookingStore(const std::string& url, size_t connections,
                       Millis acquire_timeout = PgPool::acquire_timeout_default);
  ~PostgresBookingStore() override;

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
  // Runs `body` on a pooled connection, again on a fresh attempt when it lost a deadlock or a
  // serialization failure.
  template <class Body>
  auto with_retry(Body&& body);

  PgPool pool_;
};

}  // namespace boxoffice

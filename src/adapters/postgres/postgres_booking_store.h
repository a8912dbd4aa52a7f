#pragma once
// The Bookings DB and the idempotency records in PostgreSQL, over libpq. Same schema semantics
// as the embedded SQLite adapter (sqlite_booking_store.h): the database, not a prior read, is
// the arbiter of a sale — a partial unique index allows each seat in one live booking only, a
// guarded UPDATE keeps a general section within its capacity, and a per-seat fence refuses a
// hold older than one already booked. The schema comes from numbered migrations (pg_schema.h):
// applied when the store opens, or only checked, as PostgresStoreOptions::migrate says.
//
// Isolation: READ COMMITTED with row-level guards rather than SERIALIZABLE. Every decision that
// must not race is taken by one statement that re-checks its condition on the newest row
// version after waiting for the row lock (PostgreSQL's EvalPlanQual), or by a unique index:
//   - a transition is `UPDATE ... WHERE id = $1 AND status = $from`: of two racing transitions
//     the second re-reads the status the first committed and changes nothing;
//   - capacity is `UPDATE section_sales SET sold = sold + q WHERE sold + q <= capacity`;
//   - a fence is an upsert whose DO UPDATE is guarded by `excluded.fence >= fence`;
//   - a seat is an insert into booking_seats under the partial unique index on live seats, and
//     a hold is an insert under the unique hold_id (ON CONFLICT DO NOTHING, then the hold is
//     looked up again): a racing insert waits for the first one's transaction and then
//     conflicts (or goes ahead if it rolled back).
// No read that precedes a write decides anything, so nothing here is exposed to the anomalies
// SERIALIZABLE would prevent, and no checkout pays for predicate locks or aborts. Rows are
// locked in one order (seats sorted) so checkouts do not deadlock; should one still lose a
// deadlock (40P01) or a serialization failure (40001), the call is run again, a bounded number
// of times.
//
// A checkout is one statement and one round trip: the PL/pgSQL function boxoffice_checkout
// (migrations/postgres/002_checkout_function.sql) runs the statements above in the order they
// were once sent one by one (look the hold up, check expiry, read the section's kind, insert the
// booking, take capacity or claim fences, insert the seats, insert the outbox job). The function
// is VOLATILE, so under READ COMMITTED each statement in it takes a fresh snapshot and the guards
// work exactly as they would from the client. Its writes run in one block with an exception
// handler, one subtransaction: a refusal found after a write (sold out, fenced out, a seat taken)
// raises inside the block and undoes it, and any error (a deadlock, a timeout) is undone too and
// reported in the result row rather than raised, where this store raises it (PgRetryable for
// 40001/40P01). A checkout that is refused or fails has therefore written nothing, and the
// statement itself does not fail, so the transaction around it stays usable.
// Group commit: concurrent checkouts share transactions, so a flash sale does not pay one WAL
// flush (fsync) and one BEGIN/COMMIT per booking. (PostgreSQL already lets concurrent commits
// share a flush; what batching adds above all is that the row every checkout of a general section
// updates is locked once per batch, from update to flush, instead of once per booking.) A checkout
// is queued; a caller that finds a batch slot free (one of group_commit_batches_max) takes up to
// group_commit_max queued checkouts and runs them in one transaction, one boxoffice_checkout call
// each, then commits once and answers every caller of the batch; the others wait. The whole batch
// (BEGIN, the calls, COMMIT) is sent in one flight, libpq's pipeline mode: the server runs the
// statements one after another as if they came one by one, and no answer is needed before the
// next is sent, since the function decides every outcome itself. A lone checkout thus commits
// at once (its call runs without BEGIN/COMMIT, as a transaction of its own), and batches grow by
// themselves while commits are in flight. A batch runs in (event, section, first
// seat) order, so two batches, like two checkouts, take section and seat rows in one order.
// Everything above holds inside a batch: each checkout's guards see the rows of the checkouts
// before it (same transaction), and a refusal (a seat taken, fenced out, sold out, hold expired)
// leaves nothing behind, so it undoes that checkout only; no client-side SAVEPOINT is needed.
// Answers are given after COMMIT, so a caller's booking is durable when create_booking returns,
// and a refusal caused by a checkout of the same batch stands only if that checkout committed. A
// checkout that loses a deadlock (undone by the function) is run again in the next transaction;
// a batch whose transaction fails as a whole is run again when the failure is retryable
// (bounded), else every caller of it gets the StorageError.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/postgres/pg_connection.h"
#include "ports/booking_store.h"
#include "ports/idempotency_store.h"

namespace boxoffice {

struct PostgresStoreOptions {
  // Checkouts committed in one transaction, at most. 64 is PostgreSQL's cache of subtransaction
  // ids per backend (PGPROC_MAX_CACHED_SUBXIDS): each checkout that writes is one subtransaction
  // (boxoffice_checkout's exception block), and a transaction with more of them "overflows" it, and
  // every snapshot on the server then reads pg_subtrans. 1 turns group commit off: each checkout
  // runs its own transaction on its own connection.
  static constexpr size_t group_commit_max_limit = 64;

  // At most PgPool::connections_max; a call waits at most `acquire_timeout` for a connection.
  size_t connections = 8;
  Millis acquire_timeout = PgPool::acquire_timeout_default;
  // True: apply pending migrations when the store opens. False: refuse (StorageError) a
  // database whose schema is behind this build, and change nothing.
  bool migrate = true;
  size_t group_commit_max = group_commit_max_limit;  // 1 to group_commit_max_limit
  // Batches in flight at once, each on a connection of its own; at most half the connections
  // (at least 1), the rest serving reads, transitions and idempotency keys. Few, so that
  // checkouts queue and batches form; more than one, so that while a batch waits for its
  // round trip and its WAL flush another runs, and separate batches share flushes. Measured
  // (32 callers, fsync on): 4 matched independent transactions on distinct seats and doubled
  // checkouts of one general section, where every checkout waits for the section's row lock.
  size_t group_commit_batches_max = 4;
};

class PostgresBookingStore final : public BookingStore, public IdempotencyStore {
 public:
  // Attempts of one call that lost a deadlock or serialization failure, before StorageError.
  static constexpr int attempts_max = 5;

  // Checkouts waiting for a batch, at most; one more waits up to acquire_timeout for room, then
  // gets a StorageError. (Callers are threads, so the server's worker pool bounds it first.)
  static constexpr size_t checkouts_queued_max = 1024;

  // `url`: a libpq URL ("postgresql://user@host:port/db") or key=value string. Connects and
  // migrates or checks the schema (StorageError when the server cannot be reached or the schema
  // is behind and must not be migrated).
  PostgresBookingStore(const std::string& url, const PostgresStoreOptions& options);
  PostgresBookingStore(const std::string& url, size_t connections,
                       Millis acquire_timeout = PgPool::acquire_timeout_default);
  ~PostgresBookingStore() override;

  // For metrics and tests: how well checkouts are being batched.
  struct GroupCommitCounters {
    uint64_t transactions = 0;  // batch transactions run (committed, or failed as a whole)
    uint64_t checkouts = 0;     // checkouts answered by them
  };
  GroupCommitCounters group_commit_counters() const;

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

  struct QueuedCheckout;
  // Runs `batch` to the end and answers every checkout of it (result or error); never throws.
  void commit_batch(std::vector<QueuedCheckout*> batch) noexcept;

  PgPool pool_;
  const size_t group_commit_max_;
  const size_t group_commit_batches_max_;
  const Millis acquire_timeout_;

  // The group-commit queue: checkouts waiting for a batch, oldest first. A waiting caller sleeps
  // on its QueuedCheckout's condition variable, under queue_mutex_.
  std::mutex queue_mutex_;
  std::deque<QueuedCheckout*> queue_;
  size_t batches_in_flight_ = 0;
  std::condition_variable queue_has_room_;
  std::atomic<uint64_t> transactions_run_{0};
  std::atomic<uint64_t> checkouts_answered_{0};
};

}  // namespace boxoffice

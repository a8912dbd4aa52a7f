#include "adapters/postgres/postgres_booking_store.h"

#include "adapters/common/stored_booking.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <set>
#include <string_view>
#include <thread>
#include <tuple>

#include <boost/json.hpp>

#include "adapters/postgres/pg_schema.h"

namespace boxoffice {

using stored::check_hold_shape;
using stored::decode_event;
using stored::decode_seats;
using stored::decode_status;
using stored::encode_event;
using stored::encode_seats;
using stored::to_sql_limit;

namespace {

namespace json = boost::json;

// --- queries -----------------------------------------------------------------------------------

constexpr PgQuery kInsertEvent{
    "events.insert",
    "INSERT INTO events (id, starts_at_ms, body, created_at_ms) VALUES ($1, $2, $3, $4)"};
constexpr PgQuery kSelectEvent{"events.select", "SELECT body FROM events WHERE id = $1"};
constexpr PgQuery kListEvents{"events.list", "SELECT body FROM events ORDER BY starts_at_ms, id"};

constexpr PgQuery kInsertSection{
    "section_sales.insert",
    "INSERT INTO section_sales (event_id, section_id, kind, capacity, sold) "
    "VALUES ($1, $2, $3, $4, 0)"};
constexpr PgQuery kGiveBackCapacity{"section_sales.give_back",
                                    "UPDATE section_sales SET sold = sold - $3 "
                                    "WHERE event_id = $1 AND section_id = $2 AND kind = 'general'"};

#define BOOKING_COLUMNS                                                                         \
  "id, event_id, hold_id, buyer, section, quantity, amount, currency, payment_method, status, " \
  "fence, seats, created_at_ms, updated_at_ms, payment_attempts, last_error"

constexpr PgQuery kSelectBooking{"bookings.select",
                                 "SELECT " BOOKING_COLUMNS " FROM bookings WHERE id = $1"};
constexpr PgQuery kSelectBookingByHold{
    "bookings.select_by_hold", "SELECT " BOOKING_COLUMNS " FROM bookings WHERE hold_id = $1"};
constexpr PgQuery kListBookingsOfBuyer{
    "bookings.list_of_buyer",
    "SELECT " BOOKING_COLUMNS
    " FROM bookings WHERE buyer = $1 ORDER BY created_at_ms DESC, id DESC LIMIT $2"};
// The transition guard: of two racing transitions from one status, the second re-reads the
// status the first committed and changes nothing.
constexpr PgQuery kUpdateStatus{
    "bookings.update_status",
    "UPDATE bookings SET status = $3, updated_at_ms = $4, last_error = $5 "
    "WHERE id = $1 AND status = $2 RETURNING " BOOKING_COLUMNS};
// Kept in step with holds_seats() in domain/booking.h.
constexpr PgQuery kLiveClaims{
    "bookings.live_claims",
    "SELECT hold_id, buyer, section, seats, quantity, status, hold_created_at_ms, "
    "hold_expires_at_ms FROM bookings "
    "WHERE event_id = $1 AND status IN ('pending_payment', 'confirmed', 'cancelled') "
    "ORDER BY created_at_ms, id"};
constexpr PgQuery kMaxFence{"bookings.max_fence", "SELECT COALESCE(MAX(fence), 0) FROM bookings"};
constexpr PgQuery kCounts{
    "bookings.counts",
    "SELECT status, COUNT(*), COALESCE(SUM(amount), 0), "
    "COALESCE(SUM(payment_attempts), 0), COUNT(*) FILTER (WHERE dead_lettered) "
    "FROM bookings WHERE event_id = $1 GROUP BY status"};
constexpr PgQuery kRecordPaymentAttempt{
    "bookings.record_payment_attempt",
    "UPDATE bookings SET payment_attempts = payment_attempts + 1, last_error = $2, "
    "updated_at_ms = $3 WHERE id = $1"};
constexpr PgQuery kMarkDeadLettered{"bookings.mark_dead_lettered",
                                    "UPDATE bookings SET dead_lettered = true WHERE id = $1"};
// Served by bookings_by_status_age (status, updated_at_ms, id): no sort, no scan of fresh rows.
constexpr PgQuery kStaleBookings{
    "bookings.stale",
    "SELECT " BOOKING_COLUMNS
    " FROM bookings WHERE status = $1 AND updated_at_ms < $2 ORDER BY updated_at_ms, id LIMIT $3"};

#undef BOOKING_COLUMNS

constexpr PgQuery kReleaseSeats{"booking_seats.release",
                                "UPDATE booking_seats SET live = false WHERE booking_id = $1"};

// One checkout, one statement, one round trip: boxoffice_checkout() (migration 2) runs the
// checkout's guards and writes in the order the header describes and answers with the booking's
// columns (BOOKING_COLUMNS; set for outcome "existing") and then its outcome and detail. A
// checkout it refuses, or that fails, has written nothing (its writes run in one subtransaction
// of the function), and a failure is reported in the row, not raised: a batch's transaction
// survives a checkout's deadlock or timeout, as it did when each checkout had a SAVEPOINT.
constexpr PgQuery kCheckout{
    "checkout.run",
    "SELECT (c.booking).id, (c.booking).event_id, (c.booking).hold_id, (c.booking).buyer, "
    "(c.booking).section, (c.booking).quantity, (c.booking).amount, (c.booking).currency, "
    "(c.booking).payment_method, (c.booking).status, (c.booking).fence, (c.booking).seats, "
    "(c.booking).created_at_ms, (c.booking).updated_at_ms, (c.booking).payment_attempts, "
    "(c.booking).last_error, c.outcome, c.detail "
    "FROM boxoffice_checkout($1::text, $2::text, $3::text, $4::text, $5::text, $6::integer, "
    "$7::bigint, $8::text, $9::text, $10::bigint, $11::jsonb, $12::bigint, $13::bigint, "
    "$14::bigint, $15::text) AS c"};
constexpr int kCheckoutOutcomeColumn = 16;
constexpr int kCheckoutDetailColumn = 17;
// Around a batch of checkouts, sent in the same flight as them (PgConnection::pipeline).
constexpr PgQuery kBatchBegin{"checkout.begin", "BEGIN"};
constexpr PgQuery kBatchCommit{"checkout.commit", "COMMIT"};
constexpr PgQuery kBatchRollback{"checkout.rollback", "ROLLBACK"};

constexpr PgQuery kInsertOutbox{
    "outbox.insert", "INSERT INTO outbox (kind, booking_id, created_at_ms) VALUES ($1, $2, $3)"};
// Sequences are taken at insert and committed in any order, so a job may appear behind a
// younger one; the relay deletes what it published and sees the late one on its next pass.
constexpr PgQuery kPendingOutbox{"outbox.pending",
                                 "SELECT sequence, kind, booking_id, created_at_ms FROM outbox "
                                 "ORDER BY sequence LIMIT $1"};
// Published jobs are deleted rather than flagged: the queue and the bookings keep their history,
// so the outbox stays as small as the relay's backlog.
constexpr PgQuery kDeleteOutbox{"outbox.delete",
                                "DELETE FROM outbox WHERE sequence = ANY ($1::bigint[])"};

// First use inserts; an abandoned in-flight record (same request, lease run out) is taken over;
// anything else is left alone and returns no row.
constexpr PgQuery kBeginIdempotency{
    "idempotency.begin",
    "INSERT INTO idempotency (buyer, key, fingerprint, state, created_at_ms, updated_at_ms) "
    "VALUES ($1, $2, $3, 'in_flight', $4, $4) "
    "ON CONFLICT (buyer, key) DO UPDATE "
    "SET created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms "
    "WHERE idempotency.state = 'in_flight' AND idempotency.fingerprint = excluded.fingerprint "
    "AND idempotency.updated_at_ms <= $5 "
    "RETURNING 1"};
constexpr PgQuery kSelectIdempotency{
    "idempotency.select",
    "SELECT fingerprint, state, status, content_type, body FROM idempotency "
    "WHERE buyer = $1 AND key = $2"};
// Only an in-flight record is completed: when a lease was taken over, the first response stored
// is the one every retry gets.
constexpr PgQuery kCompleteIdempotency{
    "idempotency.complete",
    "UPDATE idempotency SET state = 'done', status = $3, content_type = $4, body = $5, "
    "updated_at_ms = $6 WHERE buyer = $1 AND key = $2 AND state = 'in_flight'"};
// A stored response is never forgotten early: a late abandon() must not undo a complete().
constexpr PgQuery kAbandonIdempotency{
    "idempotency.abandon",
    "DELETE FROM idempotency WHERE buyer = $1 AND key = $2 AND state = 'in_flight'"};
constexpr PgQuery kPurgeIdempotency{
    "idempotency.purge",
    "DELETE FROM idempotency WHERE (buyer, key) IN "
    "(SELECT buyer, key FROM idempotency WHERE created_at_ms < $1 LIMIT $2)"};

// Purging runs in batches so no one statement holds many row locks or runs for long.
constexpr int64_t kPurgeBatchRows = 10'000;
// begin() finds no row after its insert was refused only if the record was deleted in between
// (abandon, purge); it tries again, this many times.
constexpr int kBeginAttemptsMax = 3;

// Reads row `row` of a result selected with BOOKING_COLUMNS.
Booking read_booking(const PgResult& result, int row) {
  Booking booking;
  booking.id = result.text(row, 0);
  booking.event_id = result.text(row, 1);
  booking.hold_id = result.text(row, 2);
  booking.buyer = result.text(row, 3);
  booking.section = result.text(row, 4);
  booking.quantity = static_cast<uint32_t>(result.int64(row, 5));
  booking.amount = result.int64(row, 6);
  booking.currency = result.text(row, 7);
  booking.payment_method = result.text(row, 8);
  booking.status = decode_status(result.text(row, 9));
  booking.fence = static_cast<uint64_t>(result.int64(row, 10));
  booking.seats = decode_seats(result.text(row, 11));
  booking.created_at = from_unix_ms(result.int64(row, 12));
  booking.updated_at = from_unix_ms(result.int64(row, 13));
  booking.payment_attempts = static_cast<uint32_t>(result.int64(row, 14));
  booking.last_error = result.text(row, 15);
  return booking;
}

std::vector<Booking> read_bookings(const PgResult& result) {
  std::vector<Booking> bookings;
  bookings.reserve(static_cast<size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) bookings.push_back(read_booking(result, row));
  return bookings;
}

std::optional<Booking> select_one_booking(PgConnection& connection, const PgQuery& query,
                                          const std::string& key) {
  const PgResult result = connection.query(query, key);
  if (result.rows() == 0) return std::nullopt;
  return read_booking(result, 0);
}

}  // namespace

// --- PostgresBookingStore ----------------------------------------------------------------------

template <class Body>
auto PostgresBookingStore::with_retry(Body&& body) {
  for (int attempt = 1;; ++attempt) {
    try {
      auto connection = pool_.acquire();
      return body(*connection);
    } catch (const PgRetryable&) {
      if (attempt >= attempts_max) throw;
      // The winner of the conflict is about to commit; a short, growing pause lets it.
      std::this_thread::sleep_for(std::chrono::milliseconds{attempt * attempt});
    }
  }
}

PostgresBookingStore::PostgresBookingStore(const std::string& url,
                                           const PostgresStoreOptions& options)
    : pool_(url, options.connections, options.acquire_timeout),
      group_commit_max_(std::clamp<size_t>(options.group_commit_max, 1,
                                           PostgresStoreOptions::group_commit_max_limit)),
      group_commit_batches_max_(std::clamp<size_t>(options.group_commit_batches_max, 1,
                                                   std::max<size_t>(pool_.size() / 2, 1))),
      acquire_timeout_(options.acquire_timeout) {
  auto connection = pool_.acquire();
  if (options.migrate) {
    migrate_postgres(*connection);
  } else {
    check_postgres_schema(*connection);
  }
}

PostgresBookingStore::PostgresBookingStore(const std::string& url, size_t connections,
                                           Millis acquire_timeout)
    : PostgresBookingStore(url, PostgresStoreOptions{.connections = connections,
                                                     .acquire_timeout = acquire_timeout}) {}

PostgresBookingStore::~PostgresBookingStore() = default;

Status PostgresBookingStore::create_event(const Event& event) {
  const std::string body = encode_event(event);
  return with_retry([&](PgConnection& connection) -> Status {
    PgTransaction tx(connection);
    try {
      connection.query(kInsertEvent, event.id, to_unix_ms(event.starts_at), body,
                       to_unix_ms(event.created_at));
    } catch (const PgUniqueViolation&) {
      return make_error(Errc::conflict, "an event with id \"" + event.id + "\" already exists");
    }
    for (const auto& section : event.sections) {
      connection.query(kInsertSection, event.id, section.id, to_string(section.kind),
                       section.capacity);
    }
    tx.commit();
    return Ok{};
  });
}

std::optional<Event> PostgresBookingStore::get_event(const std::string& event_id) {
  auto connection = pool_.acquire();
  const PgResult result = connection->query(kSelectEvent, event_id);
  if (result.rows() == 0) return std::nullopt;
  return decode_event(result.text(0, 0));
}

std::vector<Event> PostgresBookingStore::list_events() {
  auto connection = pool_.acquire();
  const PgResult result = connection->query(kListEvents);
  std::vector<Event> events;
  events.reserve(static_cast<size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) events.push_back(decode_event(result.text(row, 0)));
  return events;
}

// --- checkout and group commit -----------------------------------------------------------------

// A caller's checkout while it waits for, and rides in, a batch. It lives on the caller's stack;
// the leader of its batch sets `result` or `error`, then `done` under queue_mutex_, and does not
// touch it after that.
struct PostgresBookingStore::QueuedCheckout {
  explicit QueuedCheckout(const CheckoutRequest& checkout) : request(&checkout) {}

  const CheckoutRequest* request;
  std::condition_variable wake;  // answered, or a batch slot may be free for this caller to lead
  bool done = false;
  std::optional<Result<Booking>> result;
  std::exception_ptr error;
  int attempts = 0;  // transactions it took part in, for the bound on retries after a deadlock
};

namespace {

// The call of boxoffice_checkout for one checkout.
PgStatement checkout_statement(const CheckoutRequest& request) {
  const Hold& hold = request.hold;
  // check_hold_shape stays the one judge of a hold's shape: the function is told which kind of
  // section the shape fits (at most one: a general hold names no seats, a reserved one names as
  // many as its quantity, at least one) and refuses the hold in a section of another kind.
  const SectionKind likely = hold.seats.empty() ? SectionKind::general : SectionKind::reserved;
  const char* shape_fits = !check_hold_shape(hold, likely)
                               ? (likely == SectionKind::reserved ? "reserved" : "general")
                               : "";
  return PgStatement(kCheckout, request.booking_id, hold.event_id, hold.id, hold.buyer,
                     hold.section, hold.quantity, hold.amount, hold.currency,
                     request.payment_method, static_cast<int64_t>(hold.fence),
                     encode_seats(hold.seats), to_unix_ms(request.now), to_unix_ms(hold.created_at),
                     to_unix_ms(hold.expires_at), shape_fits);
}

// What boxoffice_checkout answered: the booking, a refusal, or (thrown) the error it reported.
Result<Booking> checkout_answer(const CheckoutRequest& request, const PgResult& result) {
  const Hold& hold = request.hold;
  if (result.rows() != 1) {
    throw StorageError("postgres: " + std::string(kCheckout.name) + " returned " +
                       std::to_string(result.rows()) + " rows");
  }
  const std::string outcome = result.text(0, kCheckoutOutcomeColumn);
  const std::string detail = result.text(0, kCheckoutDetailColumn);

  if (outcome == "booked") return pending_booking(request);
  // A retried checkout, or one that raced a checkout of the same hold: that hold's booking.
  if (outcome == "existing") return read_booking(result, 0);
  if (outcome == "hold_expired") {
    return make_error(Errc::hold_expired, "the hold expired at " + format_rfc3339(hold.expires_at));
  }
  if (outcome == "not_found") {
    return make_error(Errc::not_found,
                      "no section \"" + hold.section + "\" in event \"" + hold.event_id + "\"");
  }
  if (outcome == "invalid_request") {
    const SectionKind kind =
        detail == to_string(SectionKind::reserved) ? SectionKind::reserved : SectionKind::general;
    if (auto error = check_hold_shape(hold, kind)) return *std::move(error);
  } else if (outcome == "conflict") {
    return make_error(Errc::conflict,
                      "a booking with id \"" + request.booking_id + "\" already exists");
  } else if (outcome == "sold_out") {
    return make_error(Errc::sold_out, "section \"" + hold.section + "\" is sold out");
  } else if (outcome == "fenced_out") {
    return make_error(Errc::hold_expired,
                      "the hold was fenced out: seat " + detail + " was booked by a newer hold");
  } else if (outcome == "seats_unavailable") {
    Error error = make_error(Errc::seats_unavailable, "some seats are already booked");
    error.unavailable = decode_seats(detail);
    return error;
  } else if (outcome == "error") {
    // Raised as the failed statement would have been (pg_connection.h): a deadlock or a
    // serialization failure is retried by commit_batch.
    throw_pg_error(kCheckout.name, detail.size() > 6 ? detail.substr(6) : detail,
                   detail.substr(0, 5));
  }
  throw StorageError("postgres: " + std::string(kCheckout.name) + " answered \"" + outcome +
                     "\" (" + detail + ") for hold " + hold.id);
}

}  // namespace

void PostgresBookingStore::commit_batch(std::vector<QueuedCheckout*> batch) noexcept {
  // One lock order for every batch (see the header). Stable: arrival order among equals.
  static const std::string kNoSeat;
  const auto lock_order = [](const QueuedCheckout* checkout) {
    const Hold& hold = checkout->request->hold;
    return std::tie(hold.event_id, hold.section, hold.seats.empty() ? kNoSeat : hold.seats[0]);
  };
  std::stable_sort(batch.begin(), batch.end(),
                   [&](const QueuedCheckout* a, const QueuedCheckout* b) {
                     return lock_order(a) < lock_order(b);
                   });

  struct Outcome {
    std::optional<Result<Booking>> result;
    std::exception_ptr error;
    bool again = false;  // lost a deadlock or serialization failure: run it in a new transaction
  };
  for (int round = 1; !batch.empty(); ++round) {
    std::vector<Outcome> outcomes(batch.size());
    try {
      auto connection = pool_.acquire();
      // A checkout the function refused, or that failed there, wrote nothing: it is answered
      // alone, and the other checkouts of the batch keep their writes.
      const auto answer = [&](size_t i, const PgResult& result) {
        try {
          outcomes[i].result = checkout_answer(*batch[i]->request, result);
        } catch (const PgRetryable&) {
          // Lost a deadlock: run again in the next transaction, after this one has committed
          // what the lock holders may be waiting for.
          outcomes[i] = Outcome{std::nullopt, std::current_exception(), true};
        } catch (const StorageError&) {
          // Any other failure (a timeout, say) fails this checkout only.
          outcomes[i] = Outcome{std::nullopt, std::current_exception(), false};
        }
      };
      if (batch.size() == 1) {
        // A lone checkout is one statement in a transaction of its own (autocommit).
        answer(0, connection->run(checkout_statement(*batch[0]->request)));
      } else {
        // BEGIN, every checkout, COMMIT: one flight, one round trip. The server runs them in
        // order, as if sent one by one; the answers are read after COMMIT's.
        std::vector<PgStatement> statements;
        statements.reserve(batch.size() + 2);
        statements.emplace_back(kBatchBegin);
        for (const QueuedCheckout* checkout : batch) {
          statements.push_back(checkout_statement(*checkout->request));
        }
        statements.emplace_back(kBatchCommit);
        const std::vector<PgAnswer> answers = connection->pipeline(statements);
        // A statement that failed outright (the function reports its failures, so this is
        // rare: a missing function, say) aborted the transaction and COMMIT did not run. The
        // batch fails as a whole, with that statement's error (retried when retryable).
        for (const PgAnswer& reply : answers) {
          if (!reply.error) continue;
          if (connection->in_transaction()) connection->query(kBatchRollback);
          std::rethrow_exception(reply.error);
        }
        for (size_t i = 0; i < batch.size(); ++i) answer(i, *answers[i + 1].result);
      }
    } catch (const PgRetryable&) {
      // The transaction failed as a whole and committed nothing: all of it runs again.
      for (auto& outcome : outcomes)
        outcome = Outcome{std::nullopt, std::current_exception(), true};
    } catch (...) {
      // Committed or not, we cannot tell (a broken connection, a COMMIT without an answer): a
      // StorageError for every caller, whose retry is safe since checkout is idempotent per hold.
      for (auto& outcome : outcomes)
        outcome = Outcome{std::nullopt, std::current_exception(), false};
    }

    transactions_run_.fetch_add(1, std::memory_order_relaxed);
    std::vector<QueuedCheckout*> again;
    {
      std::lock_guard lock(queue_mutex_);
      for (size_t i = 0; i < batch.size(); ++i) {
        QueuedCheckout& checkout = *batch[i];
        Outcome& outcome = outcomes[i];
        if (outcome.again && ++checkout.attempts < attempts_max) {
          again.push_back(&checkout);
          continue;
        }
        checkouts_answered_.fetch_add(1, std::memory_order_relaxed);
        checkout.result = std::move(outcome.result);
        checkout.error = outcome.error;
        checkout.done = true;
        // Under the lock: once it is released, the caller may return and destroy `checkout`.
        checkout.wake.notify_one();
      }
    }
    batch = std::move(again);
    // The winner of the conflict is about to commit; a short, growing pause lets it.
    if (!batch.empty()) std::this_thread::sleep_for(std::chrono::milliseconds{round * round});
  }
}

PostgresBookingStore::GroupCommitCounters PostgresBookingStore::group_commit_counters() const {
  return {transactions_run_.load(std::memory_order_relaxed),
          checkouts_answered_.load(std::memory_order_relaxed)};
}

Result<Booking> PostgresBookingStore::create_booking(const CheckoutRequest& request) {
  QueuedCheckout mine(request);
  const auto answer = [&mine]() -> Result<Booking> {
    if (mine.error) std::rethrow_exception(mine.error);
    return *std::move(mine.result);
  };
  if (group_commit_max_ == 1) {
    commit_batch({&mine});
    return answer();
  }

  std::unique_lock lock(queue_mutex_);
  if (!queue_has_room_.wait_for(lock, acquire_timeout_,
                                [this] { return queue_.size() < checkouts_queued_max; })) {
    throw StorageError("postgres: " + std::to_string(checkouts_queued_max) +
                       " checkouts are already waiting to be committed");
  }
  queue_.push_back(&mine);
  // Wakes the oldest waiter other than this caller when a batch slot is free, to lead the next
  // batch (this caller leads by itself when it loops).
  const auto wake_next_leader = [&] {
    if (batches_in_flight_ == group_commit_batches_max_) return;
    for (QueuedCheckout* queued : queue_) {
      if (queued != &mine) {
        queued->wake.notify_one();
        return;
      }
    }
  };
  while (!mine.done) {
    if (batches_in_flight_ == group_commit_batches_max_ || queue_.empty()) {
      mine.wake.wait(lock);
      continue;
    }
    // Lead: commit the oldest queued checkouts, which may or may not include this caller's.
    const auto taken = static_cast<std::ptrdiff_t>(std::min(queue_.size(), group_commit_max_));
    std::vector<QueuedCheckout*> batch(queue_.begin(), queue_.begin() + taken);
    queue_.erase(queue_.begin(), queue_.begin() + taken);
    ++batches_in_flight_;
    queue_has_room_.notify_all();
    wake_next_leader();
    lock.unlock();
    commit_batch(std::move(batch));
    lock.lock();
    --batches_in_flight_;
    wake_next_leader();
  }
  lock.unlock();
  return answer();
}

std::optional<Booking> PostgresBookingStore::get_booking(const std::string& booking_id) {
  auto connection = pool_.acquire();
  return select_one_booking(*connection, kSelectBooking, booking_id);
}

std::optional<Booking> PostgresBookingStore::find_booking_by_hold(const std::string& hold_id) {
  auto connection = pool_.acquire();
  return select_one_booking(*connection, kSelectBookingByHold, hold_id);
}

std::vector<Booking> PostgresBookingStore::list_bookings(const std::string& buyer, size_t limit) {
  auto connection = pool_.acquire();
  return read_bookings(connection->query(kListBookingsOfBuyer, buyer, to_sql_limit(limit)));
}

Result<Booking> PostgresBookingStore::transition(const std::string& booking_id, BookingStatus from,
                                                 BookingStatus to, Timestamp now,
                                                 const std::string& last_error) {
  if (!can_transition(from, to)) {
    return make_error(Errc::invalid_state, "a booking cannot go from " +
                                               std::string(to_string(from)) + " to " +
                                               std::string(to_string(to)));
  }
  return with_retry([&](PgConnection& connection) -> Result<Booking> {
    PgTransaction tx(connection);
    const PgResult updated = connection.query(kUpdateStatus, booking_id, to_string(from),
                                              to_string(to), to_unix_ms(now), last_error);
    if (updated.rows() == 0) {
      auto booking = select_one_booking(connection, kSelectBooking, booking_id);
      if (!booking) return make_error(Errc::not_found, "no booking \"" + booking_id + "\"");
      return make_error(Errc::invalid_state, "the booking is " +
                                                 std::string(to_string(booking->status)) +
                                                 ", not " + std::string(to_string(from)));
    }
    Booking booking = read_booking(updated, 0);
    if (holds_seats(from) && !holds_seats(to)) {
      connection.query(kReleaseSeats, booking_id);
      connection.query(kGiveBackCapacity, booking.event_id, booking.section, booking.quantity);
    }
    if (to == BookingStatus::cancelled) {
      connection.query(kInsertOutbox, "refund", booking_id, to_unix_ms(now));
    }
    tx.commit();
    return booking;
  });
}

std::vector<RestoredClaim> PostgresBookingStore::live_claims(const std::string& event_id) {
  auto connection = pool_.acquire();
  const PgResult result = connection->query(kLiveClaims, event_id);
  std::vector<RestoredClaim> claims;
  claims.reserve(static_cast<size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) {
    const BookingStatus status = decode_status(result.text(row, 5));
    if (!holds_seats(status)) {
      throw StorageError("postgres: bookings.live_claims returned a " +
                         std::string(to_string(status)) + " booking");
    }
    RestoredClaim claim;
    claim.hold_id = result.text(row, 0);
    claim.buyer = result.text(row, 1);
    claim.section = result.text(row, 2);
    claim.seats = decode_seats(result.text(row, 3));
    claim.quantity = static_cast<uint32_t>(result.int64(row, 4));
    claim.sold = status != BookingStatus::pending_payment;
    claim.hold_created_at = from_unix_ms(result.int64(row, 6));
    claim.hold_expires_at = from_unix_ms(result.int64(row, 7));
    claims.push_back(std::move(claim));
  }
  return claims;
}

uint64_t PostgresBookingStore::max_fence() {
  auto connection = pool_.acquire();
  return static_cast<uint64_t>(connection->query(kMaxFence).int64(0, 0));
}

BookingCounts PostgresBookingStore::counts(const std::string& event_id) {
  auto connection = pool_.acquire();
  const PgResult result = connection->query(kCounts, event_id);
  BookingCounts counts;
  for (int row = 0; row < result.rows(); ++row) {
    const auto count = static_cast<uint32_t>(result.int64(row, 1));
    const int64_t amount = result.int64(row, 2);
    counts.payment_attempts += static_cast<uint64_t>(result.int64(row, 3));
    counts.dead_lettered += static_cast<uint32_t>(result.int64(row, 4));
    switch (decode_status(result.text(row, 0))) {
      case BookingStatus::pending_payment:
        counts.pending_payment = count;
        break;
      case BookingStatus::confirmed:
        counts.confirmed = count;
        counts.revenue += amount;
        break;
      case BookingStatus::payment_failed:
        counts.payment_failed = count;
        break;
      case BookingStatus::cancelled:
        counts.cancelled = count;
        counts.revenue += amount;
        break;
      case BookingStatus::refunded:
        counts.refunded = count;
        break;
    }
  }
  return counts;
}

std::vector<OutboxJob> PostgresBookingStore::pending_outbox(size_t limit) {
  auto connection = pool_.acquire();
  const PgResult result = connection->query(kPendingOutbox, to_sql_limit(limit));
  std::vector<OutboxJob> jobs;
  jobs.reserve(static_cast<size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) {
    jobs.push_back(OutboxJob{result.int64(row, 0), result.text(row, 1), result.text(row, 2),
                             from_unix_ms(result.int64(row, 3))});
  }
  return jobs;
}

void PostgresBookingStore::mark_outbox_published(const std::vector<int64_t>& sequences) {
  if (sequences.empty()) return;
  std::string array = "{";
  for (const int64_t sequence : sequences) {
    if (array.size() > 1) array += ',';
    array += std::to_string(sequence);
  }
  array += '}';
  auto connection = pool_.acquire();
  connection->query(kDeleteOutbox, array);
}

Status PostgresBookingStore::record_payment_attempt(const std::string& booking_id,
                                                    const std::string& error, Timestamp now) {
  auto connection = pool_.acquire();
  if (connection->query(kRecordPaymentAttempt, booking_id, error, to_unix_ms(now)).affected() ==
      0) {
    return make_error(Errc::not_found, "no booking \"" + booking_id + "\"");
  }
  return Ok{};
}

void PostgresBookingStore::mark_dead_lettered(const std::string& booking_id) {
  auto connection = pool_.acquire();
  connection->query(kMarkDeadLettered, booking_id);
}

std::vector<Booking> PostgresBookingStore::stale_bookings(BookingStatus status, Timestamp before,
                                                          size_t limit) {
  auto connection = pool_.acquire();
  return read_bookings(connection->query(kStaleBookings, to_string(status), to_unix_ms(before),
                                         to_sql_limit(limit)));
}

// --- IdempotencyStore --------------------------------------------------------------------------

IdempotencyOutcome PostgresBookingStore::begin(const std::string& buyer, const std::string& key,
                                               const std::string& fingerprint, Timestamp now,
                                               Millis lease) {
  auto connection = pool_.acquire();
  for (int attempt = 1; attempt <= kBeginAttemptsMax; ++attempt) {
    // A record whose lease ran out is taken over: its first request's process is taken to have
    // died.
    if (connection
            ->query(kBeginIdempotency, buyer, key, fingerprint, to_unix_ms(now),
                    to_unix_ms(now - lease))
            .rows() > 0) {
      return IdempotencyStarted{};
    }
    const PgResult record = connection->query(kSelectIdempotency, buyer, key);
    if (record.rows() == 0) continue;  // deleted since the insert was refused
    if (record.text(0, 0) != fingerprint) return IdempotencyMismatch{};
    if (record.text(0, 1) == "done") {
      return StoredResponse{static_cast<int>(record.int64(0, 2)), record.text(0, 3),
                            record.bytes(0, 4)};
    }
    return IdempotencyInFlight{};
  }
  throw StorageError("postgres: idempotency record of " + buyer + " kept vanishing");
}

void PostgresBookingStore::complete(const std::string& buyer, const std::string& key,
                                    const StoredResponse& response, Timestamp now) {
  auto connection = pool_.acquire();
  connection->query(kCompleteIdempotency, buyer, key, response.status, response.content_type,
                    PgBytes{response.body}, to_unix_ms(now));
}

void PostgresBookingStore::abandon(const std::string& buyer, const std::string& key) {
  auto connection = pool_.acquire();
  connection->query(kAbandonIdempotency, buyer, key);
}

size_t PostgresBookingStore::purge(Timestamp now, Millis retention) {
  const int64_t cutoff_ms = to_unix_ms(now - retention);
  auto connection = pool_.acquire();
  size_t purged = 0;
  for (;;) {
    const int64_t deleted =
        connection->query(kPurgeIdempotency, cutoff_ms, kPurgeBatchRows).affected();
    purged += static_cast<size_t>(deleted);
    if (deleted < kPurgeBatchRows) return purged;
  }
}

}  // namespace boxoffice

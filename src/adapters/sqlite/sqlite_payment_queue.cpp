#include "adapters/sqlite/sqlite_payment_queue.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string_view>

#include "adapters/sqlite/sqlite_schema.h"

namespace boxoffice {

namespace {

// A receipt names one delivery of one job: the job id, the delivery number and the enqueue time,
// which tells a job republished after an ack from the one that was acked. A dead letter belongs
// to the reconciler: no receipt touches it.
#define RECEIPT_MATCHES "id = ?1 AND deliveries = ?2 AND enqueued_at_ms = ?3"

constexpr SqlQuery kPublish{
    "payment_jobs.publish",
    "INSERT INTO payment_jobs (id, kind, booking_id, enqueued_at_ms, state, visible_at_ms, "
    "deliveries) VALUES (?1, ?2, ?3, ?4, 'waiting', ?4, 0) ON CONFLICT (id) DO NOTHING"};
// `state <> 'dead'` is spelled as in the partial index payment_jobs_due, so the index serves it.
constexpr SqlQuery kDue{"payment_jobs.due",
                        "SELECT sequence, id, kind, booking_id, enqueued_at_ms, deliveries "
                        "FROM payment_jobs WHERE state <> 'dead' AND visible_at_ms <= ?1 "
                        "ORDER BY visible_at_ms, sequence LIMIT ?2"};
constexpr SqlQuery kLease{"payment_jobs.lease",
                          "UPDATE payment_jobs SET state = 'leased', deliveries = deliveries + 1, "
                          "visible_at_ms = ?2 WHERE sequence = ?1"};
constexpr SqlQuery kBury{"payment_jobs.bury",
                         "UPDATE payment_jobs SET state = 'dead' WHERE sequence = ?1"};
constexpr SqlQuery kAck{"payment_jobs.ack",
                        "DELETE FROM payment_jobs WHERE " RECEIPT_MATCHES " AND state <> 'dead'"};
constexpr SqlQuery kRetryLater{
    "payment_jobs.retry_later",
    "UPDATE payment_jobs SET state = 'waiting', visible_at_ms = ?4 WHERE " RECEIPT_MATCHES
    " AND state <> 'dead'"};
// Only a leased job is extended: after retry_later it is no longer the worker's to keep.
constexpr SqlQuery kExtend{"payment_jobs.extend",
                           "UPDATE payment_jobs SET visible_at_ms = ?4 WHERE " RECEIPT_MATCHES
                           " AND state = 'leased'"};
constexpr SqlQuery kDeadLetters{
    "payment_jobs.dead_letters",
    "SELECT id, kind, booking_id, enqueued_at_ms, deliveries "
    "FROM payment_jobs WHERE state = 'dead' ORDER BY sequence LIMIT ?1"};
constexpr SqlQuery kRemoveDeadLetter{"payment_jobs.remove_dead_letter",
                                     "DELETE FROM payment_jobs WHERE id = ?1 AND state = 'dead'"};
// A lease whose visibility has lapsed is ready again, as receive() sees it.
constexpr SqlQuery kCounts{
    "payment_jobs.counts",
    "SELECT "
    "COALESCE(SUM(state = 'waiting' OR (state = 'leased' AND visible_at_ms <= ?1)), 0), "
    "COALESCE(SUM(state = 'leased' AND visible_at_ms > ?1), 0), "
    "COALESCE(SUM(state = 'dead'), 0) FROM payment_jobs"};

#undef RECEIPT_MATCHES

int64_t to_sql_limit(size_t limit) {
  return static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

// `now + by` in Unix milliseconds, saturating instead of overflowing on absurd delays.
int64_t later_ms(Timestamp now, Millis by) {
  const int64_t start = to_unix_ms(now);
  const int64_t delay = std::max<int64_t>(by.count(), 0);
  return delay > std::numeric_limits<int64_t>::max() - start ? std::numeric_limits<int64_t>::max()
                                                             : start + delay;
}

PaymentJobKind decode_kind(const std::string& text) {
  if (text == to_string(PaymentJobKind::charge)) return PaymentJobKind::charge;
  if (text == to_string(PaymentJobKind::refund)) return PaymentJobKind::refund;
  throw StorageError("sqlite: corrupt payment job: kind \"" + text + "\"");
}

// Reads id, kind, booking_id, enqueued_at_ms, deliveries from `first` on.
Delivery read_delivery(const SqliteStatement& row, int first) {
  Delivery delivery;
  delivery.job.id = row.column_text(first);
  delivery.job.kind = decode_kind(row.column_text(first + 1));
  delivery.job.booking_id = row.column_text(first + 2);
  delivery.first_enqueued_at = from_unix_ms(row.column_int64(first + 3));
  delivery.delivery = static_cast<uint32_t>(row.column_int64(first + 4));
  return delivery;
}

QueuePolicy checked(QueuePolicy policy) {
  if (policy.max_deliveries == 0) {
    throw std::invalid_argument("payment queue: max_deliveries must be at least 1");
  }
  if (policy.visibility_timeout <= Millis::zero()) {
    throw std::invalid_argument("payment queue: the visibility timeout must be positive");
  }
  return policy;
}

}  // namespace

SqlitePaymentQueue::SqlitePaymentQueue(const std::string& path, const Clock& clock,
                                       QueuePolicy policy, size_t connections, Millis busy_timeout)
    : clock_(clock), policy_(checked(policy)), pool_(path, connections, busy_timeout) {
  auto connection = pool_.acquire();
  migrate_bookings_file(*connection);
}

SqlitePaymentQueue::~SqlitePaymentQueue() = default;

void SqlitePaymentQueue::publish(const PaymentJob& job) {
  if (job.id.empty()) throw std::invalid_argument("payment queue: a job needs an id");
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  const int64_t now_ms = to_unix_ms(clock_.now());
  connection->query(kPublish, job.id, to_string(job.kind), job.booking_id, now_ms).execute();
  tx.commit();
}

std::vector<Delivery> SqlitePaymentQueue::receive(size_t max) {
  std::vector<Delivery> deliveries;
  if (max == 0) return deliveries;
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  // Read under the write lock, so no other receiver can lease the same rows in between.
  const Timestamp now = clock_.now();
  const int64_t now_ms = to_unix_ms(now);
  const int64_t lease_until_ms = later_ms(now, policy_.visibility_timeout);

  struct Due {
    int64_t sequence;
    Delivery delivery;
  };
  std::vector<Due> due;
  // Burying a spent job does not use up the batch, so a run of dead jobs cannot hide live ones.
  // Each pass either fills the batch or buries at least one job, so the loop ends.
  for (;;) {
    const size_t wanted = max - deliveries.size();
    due.clear();
    {
      auto statement = connection->query(kDue, now_ms, to_sql_limit(wanted));
      while (statement.step()) {
        due.push_back(Due{statement.column_int64(0), read_delivery(statement, 1)});
      }
    }
    bool buried = false;
    for (auto& [sequence, delivery] : due) {
      if (delivery.delivery >= policy_.max_deliveries) {
        connection->query(kBury, sequence).execute();
        buried = true;
        continue;
      }
      connection->query(kLease, sequence, lease_until_ms).execute();
      delivery.delivery += 1;
      deliveries.push_back(std::move(delivery));
    }
    if (due.size() < wanted || !buried) break;
  }
  tx.commit();
  return deliveries;
}

void SqlitePaymentQueue::ack(const Delivery& delivery) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  connection
      ->query(kAck, delivery.job.id, int64_t{delivery.delivery},
              to_unix_ms(delivery.first_enqueued_at))
      .execute();
  tx.commit();
}

void SqlitePaymentQueue::retry_later(const Delivery& delivery, Millis delay) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  const int64_t visible_at_ms = later_ms(clock_.now(), delay);
  connection
      ->query(kRetryLater, delivery.job.id, int64_t{delivery.delivery},
              to_unix_ms(delivery.first_enqueued_at), visible_at_ms)
      .execute();
  tx.commit();
}

void SqlitePaymentQueue::extend(const Delivery& delivery) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  const int64_t visible_at_ms = later_ms(clock_.now(), policy_.visibility_timeout);
  connection
      ->query(kExtend, delivery.job.id, int64_t{delivery.delivery},
              to_unix_ms(delivery.first_enqueued_at), visible_at_ms)
      .execute();
  tx.commit();
}

std::vector<Delivery> SqlitePaymentQueue::dead_letters(size_t max) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kDeadLetters, to_sql_limit(max));
  std::vector<Delivery> dead;
  while (statement.step()) dead.push_back(read_delivery(statement, 0));
  return dead;
}

void SqlitePaymentQueue::remove_dead_letter(const std::string& job_id) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  connection->query(kRemoveDeadLetter, job_id).execute();
  tx.commit();
}

QueueCounts SqlitePaymentQueue::counts() {
  const int64_t now_ms = to_unix_ms(clock_.now());
  auto connection = pool_.acquire();
  auto statement = connection->query(kCounts, now_ms);
  QueueCounts counts;
  if (statement.step()) {
    counts.ready = static_cast<uint64_t>(statement.column_int64(0));
    counts.in_flight = static_cast<uint64_t>(statement.column_int64(1));
    counts.dead = static_cast<uint64_t>(statement.column_int64(2));
  }
  return counts;
}

}  // namespace boxoffice

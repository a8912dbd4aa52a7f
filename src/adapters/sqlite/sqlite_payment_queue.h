#pragma once
// The embedded Payment Queue: a table in the bookings file (the same file as SqliteBookingStore,
// created by the same migrations), so a laptop needs no broker and a job is as durable as the
// booking it pays for.
//
// Every job is one row. receive() leases due rows in one write transaction, so threads and
// processes sharing the file never get the same delivery; a lease is just a visibility time,
// so a worker that dies loses nothing: its job becomes visible again. Receipts are checked by
// delivery number, which makes a late worker's ack, retry or extend a no-op once the job has been
// delivered again. All times come from the injected Clock, never from SQLite.

#include <cstddef>
#include <string>
#include <vector>

#include "adapters/sqlite/sqlite_connection.h"
#include "ports/clock.h"
#include "ports/payment_queue.h"

namespace boxoffice {

class SqlitePaymentQueue final : public PaymentQueue {
 public:
  static constexpr Millis busy_timeout_default{5'000};

  // Opens (creating if needed) the bookings file at `path`, whose directory must exist, and
  // brings its schema up to date. `clock` must outlive the queue. Throws std::invalid_argument for
  // a policy without deliveries or visibility timeout, and StorageError when the file cannot be
  // used. Every call waits at most `busy_timeout` for a connection and for SQLite's locks.
  // Publishing a job without an id is a bug of the caller: std::invalid_argument.
  SqlitePaymentQueue(const std::string& path, const Clock& clock, QueuePolicy policy,
                     size_t connections, Millis busy_timeout = busy_timeout_default);
  ~SqlitePaymentQueue() override;

  void publish(const PaymentJob& job) override;
  std::vector<Delivery> receive(size_t max) override;
  void ack(const Delivery& delivery) override;
  void retry_later(const Delivery& delivery, Millis delay) override;
  void extend(const Delivery& delivery) override;
  std::vector<Delivery> dead_letters(size_t max) override;
  void remove_dead_letter(const std::string& job_id) override;
  QueueCounts counts() override;

  // The reconciler's retry window is derived from it.
  const QueuePolicy& policy() const { return policy_; }

 private:
  const Clock& clock_;
  const QueuePolicy policy_;
  SqlitePool pool_;
};

}  // namespace boxoffice

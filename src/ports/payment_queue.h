#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "domain/time.h"

namespace boxoffice {

enum class PaymentJobKind { charge, refund };
std::string_view to_string(PaymentJobKind kind);

struct PaymentJob {
  /// De-duplication id: publishing a job whose id the queue still knows is a no-op.
  std::string id;
  PaymentJobKind kind = PaymentJobKind::charge;
  std::string booking_id;
};

/// One delivery of a job. `delivery` counts from 1; a receipt from an older delivery of the same
/// job (its visibility lapsed and it was delivered again) no longer acks or retries anything.
struct Delivery {
  PaymentJob job;
  uint32_t delivery = 0;
  Timestamp first_enqueued_at{};
};

struct QueueCounts {
  uint64_t ready = 0;      // waiting to be delivered (including those waiting out a backoff)
  uint64_t in_flight = 0;  // delivered, not yet acked, visibility not lapsed
  uint64_t dead = 0;       // delivered max_deliveries times without an ack
};

/// Policy of a managed queue (JetStream: AckWait, MaxDeliver, BackOff).
struct QueuePolicy {
  /// Unacked deliveries become visible again after this.
  Millis visibility_timeout{std::chrono::seconds{30}};
  /// After this many deliveries without an ack, the job goes to the dead letters.
  uint32_t max_deliveries = 5;
};

/// Payment Queue: durable jobs, delivered at least once. Time comes from the adapter's Clock.
/// Thread-safe; engine failures are thrown as StorageError.
class PaymentQueue {
 public:
  virtual ~PaymentQueue() = default;

  /// Durable when it returns. A job id the queue still holds (ready, in flight or dead) is not
  /// added twice.
  virtual void publish(const PaymentJob& job) = 0;

  /// Up to `max` visible jobs, oldest first; each becomes invisible for the visibility timeout.
  /// A job that would exceed max_deliveries is moved to the dead letters instead.
  virtual std::vector<Delivery> receive(size_t max) = 0;

  /// Done: the job is removed.
  virtual void ack(const Delivery& delivery) = 0;

  /// Not done: deliver again after `delay` (the caller's backoff).
  virtual void retry_later(const Delivery& delivery, Millis delay) = 0;

  /// Still working: the job stays invisible for another visibility timeout.
  virtual void extend(const Delivery& delivery) = 0;

  /// Jobs that exhausted their deliveries, oldest first, for reconciliation.
  virtual std::vector<Delivery> dead_letters(size_t max) = 0;
  /// Removes a dead letter once it has been reconciled.
  virtual void remove_dead_letter(const std::string& job_id) = 0;

  virtual QueueCounts counts() = 0;
};

}  // namespace boxoffice

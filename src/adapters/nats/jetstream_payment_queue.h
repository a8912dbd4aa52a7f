#pragma once
// The production Payment Queue: NATS JetStream (libnats).
//
// Jobs live in a work-queue stream (file storage), one subject per job id
// ("<prefix>.jobs.<id>") with at most one message per subject and DiscardNewPerSubject: the
// server itself refuses a second job under an id it still holds, ready or in flight, and frees the
// id when the job is acked. Every publish also carries a Nats-Msg-Id, so a publish retried after a
// lost PubAck (a server restart) is not stored twice within the stream's Duplicates window.
//
// One durable pull consumer with explicit acks serves every worker: AckWait is the visibility
// timeout. ack, retry_later (NAK with delay), extend (in progress) and burial (TERM) are requests
// to the delivery's ack subject, answered once the server has applied them, so a receive that
// follows sees their effect. The consumer's MaxDeliver leaves a few deliveries beyond
// max_deliveries: such a delivery is never handed out but buried — copied to the dead-letter
// stream (limits retention, file storage, "<prefix>.dead.<id>") and only then terminated, so a
// crash in between leaves the job in both places, never in neither.
//
// What JetStream decides, and this adapter therefore differs in from the embedded queue:
// - Visibility timeouts and delays run on the server's clock, not on the injected Clock (which
//   only stamps first_enqueued_at).
// - Receipts live in the adapter that received them: a receipt of another instance (or of one
//   that crashed) acks nothing; its job comes back when its visibility lapses. Across processes
//   JetStream does not know which delivery an ack came from: a late ack by a worker whose lease
//   lapsed, after another process got the job again, still acks it. Within one instance a
//   receipt of an older delivery is a no-op, as the port says.
// - A lease that lapsed cannot be extended: the server has already queued the job again.
// - Redeliveries are served before never-delivered jobs (each group in stream order), not strictly
//   by visibility time.
// - counts(): the server knows how many deliveries are unacked but not which of them lapsed or
//   wait out a retry delay; those of this instance are counted as ready, those of other processes
//   as in flight until they are acked or delivered again. ready + in_flight is exact.
// - publish() is a no-op for a dead job id only as far as a check just before it can tell: a
//   publish racing the burial of the same id may enqueue it again (a duplicate delivery of an
//   idempotent job, never a lost one).

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ports/clock.h"
#include "ports/payment_queue.h"

namespace boxoffice {

struct JetStreamQueueOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::string stream = "BO_PAYMENTS";
  std::string dead_letter_stream = "BO_PAYMENTS_DLQ";
  // Jobs are published on "<subject_prefix>.jobs.<id>", dead letters on
  // "<subject_prefix>.dead.<id>".
  std::string subject_prefix = "bo.payments";
  std::string consumer = "bo_payment_workers";
  // Each JetStream API call, publish and acknowledgement waits at most this long for the server.
  Millis request_timeout{5'000};
  // How long receive() waits for a job when none is visible.
  Millis receive_wait{20};
  // Retried publishes with the same Nats-Msg-Id within this window are stored once.
  Millis duplicates_window{std::chrono::minutes{2}};
  // Between attempts to reconnect to a server that went away (attempts never stop).
  Millis reconnect_wait{250};
  // dead_letters() reads at most this many dead letters to sort them oldest first.
  size_t dead_letters_scan_max = 10'000;
};

class JetStreamPaymentQueue final : public PaymentQueue {
 public:
  // Deliveries beyond max_deliveries that the consumer still makes, each one an attempt to bury
  // the job; after the last the server stops delivering it.
  static constexpr uint32_t burial_deliveries_max = 3;

  // Connects (reconnecting by itself for as long as the queue lives) and creates or updates the
  // streams and the durable consumer. `clock` must outlive the queue. Throws std::invalid_argument
  // for a policy without deliveries or visibility timeout, and StorageError when the server cannot
  // be reached or refuses the configuration. Publishing a job without an id is a bug of the
  // caller: std::invalid_argument.
  JetStreamPaymentQueue(JetStreamQueueOptions options, const Clock& clock, QueuePolicy policy);
  // Closes the connection without settling anything: deliveries in flight come back when their
  // visibility lapses.
  ~JetStreamPaymentQueue() override;
  JetStreamPaymentQueue(const JetStreamPaymentQueue&) = delete;
  JetStreamPaymentQueue& operator=(const JetStreamPaymentQueue&) = delete;

  void publish(const PaymentJob& job) override;
  std::vector<Delivery> receive(size_t max) override;
  void ack(const Delivery& delivery) override;
  void retry_later(const Delivery& delivery, Millis delay) override;
  void extend(const Delivery& delivery) override;
  std::vector<Delivery> dead_letters(size_t max) override;
  void remove_dead_letter(const std::string& job_id) override;
  QueueCounts counts() override;

  const QueuePolicy& policy() const;

 private:
  struct Engine;
  std::unique_ptr<Engine> engine_;
};

}  // namespace boxoffice

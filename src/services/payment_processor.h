#pragma once
// The Payment Processor (the `payments` role): moves committed payment jobs from the outbox to the
// Payment Queue, charges or refunds through the Payment Provider with bounded concurrency, and
// drives each booking to its final status. Every step checks the booking's current status, so a
// job delivered twice, or re-enqueued by the reconciler, takes effect once.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "ports/booking_store.h"
#include "ports/clock.h"
#include "ports/payment_provider.h"
#include "ports/payment_queue.h"
#include "ports/seat_lock_store.h"

namespace boxoffice {

struct PaymentProcessorOptions {
  /// Charges or refunds in flight at once (each blocks a thread on the provider).
  size_t concurrency = 8;
  /// Delay before delivery n+1 after a transient failure of delivery n (last one repeats).
  std::vector<Millis> backoff{std::chrono::milliseconds{500}, std::chrono::seconds{1},
                              std::chrono::seconds{2}, std::chrono::seconds{4}};
  /// How long the pump sleeps when there is nothing to do (a checkout wakes it at once).
  Millis idle_poll{std::chrono::milliseconds{100}};
  /// How often the relay's backstop, dead letters and the reconciler run.
  Millis maintenance_interval{std::chrono::seconds{1}};
  /// A booking still pending_payment (or cancelled, awaiting its refund) this long after its last
  /// change gets its job enqueued again: longer than the queue's whole retry window.
  Millis reconcile_after{std::chrono::minutes{2}};
  /// At most this much time per pass settling dead letters (provider calls block).
  Millis maintenance_budget{std::chrono::seconds{5}};
  size_t relay_batch_max = 256;
  size_t reconcile_batch_max = 100;
};

struct PaymentOutcomeCounts {
  uint64_t approved = 0;
  uint64_t declined = 0;
  uint64_t transient_failures = 0;
  uint64_t refunded = 0;
  uint64_t reconciled = 0;  // dead letters settled by asking the provider
};

class PaymentProcessor {
 public:
  PaymentProcessor(const Clock& clock, BookingStore& bookings, PaymentQueue& queue,
                   PaymentProvider& provider, SeatLockStore& locks,
                   PaymentProcessorOptions options = {});
  ~PaymentProcessor();

  /// Starts the pump and the workers. stop() (or the destructor) finishes the jobs in flight.
  void start();
  void stop();
  /// A job was just committed: relay and process without waiting for the next poll.
  void wake();
  /// Called when a booking's seats are released (payment failed, refunded). Set before start().
  void on_seats_released(
      std::function<void(const std::string& event_id, const std::string& section)> callback) {
    seats_released_ = std::move(callback);
  }

  // The steps the pump runs, public so tests can drive them one at a time.
  /// Outbox → queue; returns how many jobs were published.
  size_t relay_outbox();
  /// Settles dead letters by asking the provider what really happened; returns how many.
  size_t reconcile_dead_letters();
  /// Re-enqueues jobs of bookings stuck past reconcile_after; returns how many.
  size_t requeue_stale();
  /// Handles one delivery: charge or refund, then ack or retry later.
  void process(const Delivery& delivery);

  PaymentOutcomeCounts outcomes() const;

 private:
  void pump();
  void work();
  void charge(const Delivery& delivery, const Booking& booking);
  void refund(const Delivery& delivery, const Booking& booking);
  void confirm(const Booking& booking);
  /// Refunds an approved charge of a failed booking, if the provider has one. False when the
  /// provider did not answer (try again later).
  bool refund_orphan_charge(const Booking& booking);
  void fail(const Booking& booking, const std::string& reason);
  /// Applies the seat side of a booking that is already final (a redelivered job).
  void settle_seats(const Booking& booking);
  Millis backoff_for(uint32_t delivery) const;

  const Clock& clock_;
  BookingStore& bookings_;
  PaymentQueue& queue_;
  PaymentProvider& provider_;
  SeatLockStore& locks_;
  const PaymentProcessorOptions options_;
  std::function<void(const std::string&, const std::string&)> seats_released_;

  std::mutex mutex_;
  std::condition_variable wake_pump_;
  std::condition_variable wake_workers_;
  std::deque<Delivery> work_;
  size_t in_flight_ = 0;  // received and not yet processed
  bool stopping_ = false;
  bool woken_ = false;
  std::thread pump_;
  std::vector<std::thread> workers_;

  std::atomic<uint64_t> approved_{0}, declined_{0}, transient_{0}, refunded_{0}, reconciled_{0};
};

}  // namespace boxoffice

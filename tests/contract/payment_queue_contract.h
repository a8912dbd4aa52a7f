#pragma once
// The PaymentQueue contract, written once against the port. An adapter's test file runs it with
//   INSTANTIATE_TEST_SUITE_P(Sqlite, PaymentQueueContract,
//                            ::testing::Values(PaymentQueueAdapter{"sqlite", make_storage}),
//                            payment_queue_test_name);
// Time is a ManualClock the suite moves, so visibility timeouts and delays are checked to the
// millisecond without sleeping. An engine that keeps its own time (JetStream's AckWait runs on the
// server) says so in its traits: the suite then also lets that much real time pass, with a short
// visibility timeout, and tells "not yet" from "now" by its resolution instead of by 1 ms.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "ports/clock.h"
#include "ports/payment_queue.h"

namespace boxoffice::testing {

// What an engine decides for itself, which the suite follows. The defaults are the port's
// strictest reading; every other value is a documented difference of that adapter.
struct PaymentQueueTraits {
  // Visibility timeouts and delays run on the engine's own clock, not on the one the suite moves.
  bool real_time = false;
  // The visibility timeout the suite's policy uses.
  Millis visibility{30'000};
  // The margin by which the suite checks "just before" a deadline (1 ms on a manual clock; round
  // trips and the server's timers on a real one).
  Millis resolution{1};
  // Real time only: added to every advance, so the engine's timers have fired when the suite
  // looks ("just after" a deadline). Must stay well below the resolution.
  Millis settle{0};
  // A receipt still acks, retries and extends through a queue opened again over the storage.
  bool receipts_outlive_the_queue = true;
  // A receipt whose visibility lapsed, while nobody received the job again, can still extend it.
  bool lapsed_receipts_extend = true;
  // receive() orders strictly by visibility time, then enqueue order (JetStream serves jobs due
  // again before never-delivered ones).
  bool orders_by_visibility_time = true;
};

// The storage behind one test. Unlike StorageUnderTest, it opens queues over a clock and a policy,
// which the suite chooses.
class PaymentQueueStorage {
 public:
  virtual ~PaymentQueueStorage() = default;
  virtual std::unique_ptr<PaymentQueue> open(const Clock& clock, const QueuePolicy& policy) = 0;
  // Whether a queue opened again sees what an earlier one held (false for in-memory queues).
  virtual bool durable() const = 0;
  virtual PaymentQueueTraits traits() const { return {}; }
};

struct PaymentQueueAdapter {
  std::string name;  // becomes part of the test names: [A-Za-z0-9_] only
  std::function<std::unique_ptr<PaymentQueueStorage>()> make_storage;
};

inline void PrintTo(const PaymentQueueAdapter& adapter, std::ostream* out) { *out << adapter.name; }

inline std::string payment_queue_test_name(
    const ::testing::TestParamInfo<PaymentQueueAdapter>& info) {
  return info.param.name;
}

class PaymentQueueContract : public ::testing::TestWithParam<PaymentQueueAdapter> {
 protected:
  static constexpr uint32_t kMaxDeliveries = 3;

  void SetUp() override;
  void TearDown() override;

  PaymentQueue& queue() { return *queue_; }
  ManualClock& clock() { return clock_; }
  bool durable() const { return storage_->durable(); }
  const PaymentQueueTraits& traits() const { return traits_; }
  Millis visibility() const { return traits_.visibility; }
  QueuePolicy policy() const { return QueuePolicy{traits_.visibility, kMaxDeliveries}; }
  // The gap between "just before" a deadline and the deadline.
  Millis resolution() const { return traits_.resolution; }
  // Lets `by` pass: on the suite's clock, and for a real-time engine in real time too.
  void advance(Millis by);
  // `visibilities` timeouts, for "nothing comes back by itself": capped at two on a real-time
  // engine, where each one is test time, and two already show it.
  Millis long_while(int visibilities) const;
  // Drops the queue without acking or closing anything first, as a crash would, and opens
  // another over the same storage.
  void reopen();

 private:
  ManualClock clock_{from_unix_ms(1'800'000'000'000)};
  std::unique_ptr<PaymentQueueStorage> storage_;
  PaymentQueueTraits traits_;
  std::unique_ptr<PaymentQueue> queue_;
};

}  // namespace boxoffice::testing

#pragma once
// The PaymentQueue contract, written once against the port. An adapter's test file runs it with
//   INSTANTIATE_TEST_SUITE_P(Sqlite, PaymentQueueContract,
//                            ::testing::Values(PaymentQueueAdapter{"sqlite", make_storage}),
//                            payment_queue_test_name);
// Time is a ManualClock the suite moves, so visibility timeouts and delays are checked to the
// millisecond without sleeping.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "ports/clock.h"
#include "ports/payment_queue.h"

namespace boxoffice::testing {

// The storage behind one test. Unlike StorageUnderTest, it opens queues over a clock and a policy,
// which the suite chooses.
class PaymentQueueStorage {
 public:
  virtual ~PaymentQueueStorage() = default;
  virtual std::unique_ptr<PaymentQueue> open(const Clock& clock, const QueuePolicy& policy) = 0;
  // Whether a queue opened again sees what an earlier one held (false for in-memory queues).
  virtual bool durable() const = 0;
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
  static constexpr Millis kVisibility{30'000};
  static constexpr uint32_t kMaxDeliveries = 3;
  static constexpr QueuePolicy kPolicy{kVisibility, kMaxDeliveries};

  void SetUp() override;
  void TearDown() override;

  PaymentQueue& queue() { return *queue_; }
  ManualClock& clock() { return clock_; }
  bool durable() const { return storage_->durable(); }
  // Drops the queue without acking or closing anything first, as a crash would, and opens
  // another over the same storage.
  void reopen();

 private:
  ManualClock clock_{from_unix_ms(1'800'000'000'000)};
  std::unique_ptr<PaymentQueueStorage> storage_;
  std::unique_ptr<PaymentQueue> queue_;
};

}  // namespace boxoffice::testing

// The PaymentQueue contract against NATS JetStream, each test with its own nats-server, and what
// only JetStream can be asked: its streams as an operator sees them, a server restart, the
// de-duplication window, the dead-letter stream.

#include "adapters/nats/jetstream_payment_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "contract/payment_queue_contract.h"
#include "domain/error.h"
#include "support/nats_server.h"

namespace boxoffice::testing {
namespace {

using std::chrono::milliseconds;

JetStreamQueueOptions options_for(const NatsServer& server) {
  JetStreamQueueOptions options;
  options.url = server.url();
  options.request_timeout = milliseconds{2'000};
  options.reconnect_wait = milliseconds{50};
  return options;
}

class JetStreamQueueStorage final : public PaymentQueueStorage {
 public:
  std::unique_ptr<PaymentQueue> open(const Clock& clock, const QueuePolicy& policy) override {
    return std::make_unique<JetStreamPaymentQueue>(options_for(server_), clock, policy);
  }
  bool durable() const override { return true; }
  PaymentQueueTraits traits() const override {
    PaymentQueueTraits traits;
    // AckWait and NAK delays run on the server's clock. Two seconds keep each test short while
    // leaving room for round trips and for the server's timers, which fire over 100 ms late on a
    // loaded machine (2 cores, sanitizers, parallel builds). The resolution must exceed twice the
    // settling time (see ExtendKeepsTheJobInvisibleForAnotherTimeout).
    traits.real_time = true;
    traits.visibility = milliseconds{2'000};
    traits.resolution = milliseconds{800};
    traits.settle = milliseconds{250};
    traits.receipts_outlive_the_queue = false;
    traits.lapsed_receipts_extend = false;
    traits.orders_by_visibility_time = false;
    return traits;
  }

 private:
  NatsServer server_;
};

INSTANTIATE_TEST_SUITE_P(JetStream, PaymentQueueContract,
                         ::testing::Values(PaymentQueueAdapter{
                             "jetstream",
                             [] { return std::make_unique<JetStreamQueueStorage>(); }}),
                         payment_queue_test_name);

// --- a raw client, to look at the streams as an operator would --------------------------------

class RawJetStream {
 public:
  explicit RawJetStream(const std::string& url) {
    if (natsConnection_ConnectTo(&connection_, url.c_str()) != NATS_OK ||
        natsConnection_JetStream(&js_, connection_, nullptr) != NATS_OK) {
      throw std::runtime_error(std::string("raw nats client: ") + nats_GetLastError(nullptr));
    }
  }
  ~RawJetStream() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(connection_);
  }
  RawJetStream(const RawJetStream&) = delete;
  RawJetStream& operator=(const RawJetStream&) = delete;

  struct StreamSummary {
    jsRetentionPolicy retention;
    jsStorageType storage;
    int64_t duplicates_ns;
    int64_t max_msgs_per_subject;
    uint64_t messages;
  };
  StreamSummary stream(const std::string& name) {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code) != NATS_OK) {
      throw std::runtime_error("stream info " + name + ": " + nats_GetLastError(nullptr));
    }
    const StreamSummary summary{info->Config->Retention, info->Config->Storage,
                                info->Config->Duplicates, info->Config->MaxMsgsPerSubject,
                                info->State.Msgs};
    jsStreamInfo_Destroy(info);
    return summary;
  }

  // The PubAck's "duplicate" flag of a publish with this Nats-Msg-Id.
  bool publish_is_duplicate(const std::string& subject, const std::string& msg_id,
                            const PaymentJob& job) {
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, subject.c_str(), nullptr, nullptr, 0);
    natsMsgHeader_Set(msg, "Bo-Job-Id", job.id.c_str());
    natsMsgHeader_Set(msg, "Bo-Job-Kind", "charge");
    natsMsgHeader_Set(msg, "Bo-Booking-Id", job.booking_id.c_str());
    natsMsgHeader_Set(msg, "Bo-Enqueued-At-Ms", "1000");
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MsgId = msg_id.c_str();
    jsPubAck* ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus status = js_PublishMsg(&ack, js_, msg, &options, &code);
    natsMsg_Destroy(msg);
    if (status != NATS_OK) {
      throw std::runtime_error(std::string("publish: ") + nats_GetLastError(nullptr));
    }
    const bool duplicate = ack->Duplicate;
    jsPubAck_Destroy(ack);
    return duplicate;
  }

  // The header of the last message on `subject` of `stream` ("" when there is none).
  std::string last_header(const std::string& stream, const std::string& subject, const char* key) {
    natsMsg* msg = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetLastMsg(&msg, js_, stream.c_str(), subject.c_str(), nullptr, &code) != NATS_OK) {
      return "";
    }
    const char* value = nullptr;
    std::string text;
    if (natsMsgHeader_Get(msg, key, &value) == NATS_OK && value != nullptr) text = value;
    natsMsg_Destroy(msg);
    return text;
  }

 private:
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
};

std::vector<std::string> ids_of(const std::vector<Delivery>& deliveries) {
  std::vector<std::string> ids;
  for (const auto& delivery : deliveries) ids.push_back(delivery.job.id);
  return ids;
}

PaymentJob charge(const std::string& booking_id) {
  return PaymentJob{"charge:" + booking_id, PaymentJobKind::charge, booking_id};
}

class JetStreamPaymentQueueTest : public ::testing::Test {
 protected:
  NatsServer server_;
  ManualClock clock_{from_unix_ms(1'800'000'000'000)};
};

TEST_F(JetStreamPaymentQueueTest, TheStreamsAreAFileBackedWorkQueueAndADeadLetterLog) {
  JetStreamPaymentQueue queue(options_for(server_), clock_, QueuePolicy{});
  JetStreamPaymentQueue again(options_for(server_), clock_, QueuePolicy{});  // idempotent setup
  RawJetStream raw(server_.url());
  const auto jobs = raw.stream("BO_PAYMENTS");
  EXPECT_EQ(jobs.retention, js_WorkQueuePolicy);
  EXPECT_EQ(jobs.storage, js_FileStorage);
  EXPECT_EQ(jobs.duplicates_ns, int64_t{120} * 1'000'000'000);
  EXPECT_EQ(jobs.max_msgs_per_subject, 1);
  const auto dead = raw.stream("BO_PAYMENTS_DLQ");
  EXPECT_EQ(dead.retention, js_LimitsPolicy);
  EXPECT_EQ(dead.storage, js_FileStorage);

  // A changed policy updates the consumer in place instead of failing.
  JetStreamPaymentQueue changed(options_for(server_), clock_, QueuePolicy{milliseconds{5'000}, 7});
  changed.publish(charge("bkg_1"));
  EXPECT_EQ(queue.counts().ready, 1u);
}

TEST_F(JetStreamPaymentQueueTest, NoJobIsLostWhenTheServerIsKilledAndTheClientReconnectsByItself) {
  const QueuePolicy policy{milliseconds{1'000}, 5};
  JetStreamPaymentQueue queue(options_for(server_), clock_, policy);
  std::set<std::string> published;
  for (int i = 0; i < 20; ++i) {
    const PaymentJob job = charge("bkg_" + std::to_string(i));
    queue.publish(job);
    published.insert(job.id);
  }
  ASSERT_EQ(queue.receive(5).size(), 5u);  // in flight when the server dies

  server_.kill9();
  EXPECT_THROW(queue.counts(), StorageError);
  server_.restart();

  std::set<std::string> acked;
  // The same queue object, without being told: the client reconnects to the restarted server.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  bool published_after = false;
  while (acked.size() < published.size() + 1 && std::chrono::steady_clock::now() < deadline) {
    try {
      if (!published_after) {
        queue.publish(charge("bkg_after"));
        published_after = true;
      }
      for (const Delivery& delivery : queue.receive(10)) {
        queue.ack(delivery);
        acked.insert(delivery.job.id);
      }
    } catch (const StorageError&) {
      std::this_thread::sleep_for(milliseconds{50});  // still reconnecting
    }
  }
  published.insert("charge:bkg_after");
  EXPECT_EQ(acked, published) << server_.log();
  const QueueCounts counts = queue.counts();
  EXPECT_EQ(counts.ready + counts.in_flight + counts.dead, 0u);
}

TEST_F(JetStreamPaymentQueueTest, ARetriedPublishIsStoredOnceByItsMsgIdEvenAfterTheJobWasDone) {
  JetStreamPaymentQueue queue(options_for(server_), clock_, QueuePolicy{});
  RawJetStream raw(server_.url());
  const PaymentJob job = charge("bkg_1");
  // A publisher whose PubAck was lost sends the same message again with the same Nats-Msg-Id...
  EXPECT_FALSE(raw.publish_is_duplicate("bo.payments.jobs.charge:bkg_1", "attempt-1", job));
  const auto got = queue.receive(10);
  ASSERT_THAT(ids_of(got), ::testing::ElementsAre("charge:bkg_1"));
  queue.ack(got[0]);
  // ...after a worker already did the job: within the Duplicates window it is not stored again.
  EXPECT_TRUE(raw.publish_is_duplicate("bo.payments.jobs.charge:bkg_1", "attempt-1", job));
  EXPECT_THAT(queue.receive(10), ::testing::IsEmpty());
  // A new publish of the id (a reconciler's) is a new job.
  queue.publish(job);
  EXPECT_THAT(ids_of(queue.receive(10)), ::testing::ElementsAre("charge:bkg_1"));
}

TEST_F(JetStreamPaymentQueueTest, AJobDeliveredMaxDeliveriesTimesMovesToTheDeadLetterStream) {
  const QueuePolicy policy{milliseconds{300}, 2};
  JetStreamPaymentQueue queue(options_for(server_), clock_, policy);
  RawJetStream raw(server_.url());
  queue.publish(PaymentJob{"refund:bkg_9", PaymentJobKind::refund, "bkg_9"});
  for (uint32_t n = 1; n <= 2; ++n) {
    const auto got = queue.receive(10);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].delivery, n);
    std::this_thread::sleep_for(milliseconds{400});
  }
  EXPECT_THAT(queue.receive(10), ::testing::IsEmpty());

  EXPECT_EQ(raw.stream("BO_PAYMENTS").messages, 0u);  // terminated: gone from the work queue
  EXPECT_EQ(raw.stream("BO_PAYMENTS_DLQ").messages, 1u);
  EXPECT_EQ(raw.last_header("BO_PAYMENTS_DLQ", "bo.payments.dead.refund:bkg_9", "Bo-Booking-Id"),
            "bkg_9");
  EXPECT_EQ(raw.last_header("BO_PAYMENTS_DLQ", "bo.payments.dead.refund:bkg_9", "Bo-Deliveries"),
            "2");
  const auto dead = queue.dead_letters(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].job.kind, PaymentJobKind::refund);
  EXPECT_EQ(dead[0].delivery, 2u);

  queue.remove_dead_letter("refund:bkg_9");
  EXPECT_EQ(raw.stream("BO_PAYMENTS_DLQ").messages, 0u);
}

TEST_F(JetStreamPaymentQueueTest, IdsThatAreNotSubjectTokensTravelIntact) {
  JetStreamPaymentQueue queue(options_for(server_), clock_, QueuePolicy{});
  const std::vector<std::string> ids = {"charge:bkg.1", "charge:bkg *>", "charge:bkg%2E1"};
  for (const auto& id : ids) queue.publish(PaymentJob{id, PaymentJobKind::charge, "bkg_1"});
  queue.publish(PaymentJob{"charge:bkg.1", PaymentJobKind::charge, "bkg_1"});  // held: no-op
  EXPECT_THAT(ids_of(queue.receive(10)), ::testing::ElementsAreArray(ids));
}

TEST_F(JetStreamPaymentQueueTest, AServerThatIsNotThereIsAStorageError) {
  JetStreamQueueOptions options = options_for(server_);
  server_.stop();
  options.request_timeout = milliseconds{500};
  EXPECT_THROW(JetStreamPaymentQueue(options, clock_, QueuePolicy{}), StorageError);
}

TEST_F(JetStreamPaymentQueueTest, APolicyWithoutDeliveriesOrTimeoutIsRefused) {
  EXPECT_THROW(JetStreamPaymentQueue(options_for(server_), clock_, QueuePolicy{milliseconds{1}, 0}),
               std::invalid_argument);
  EXPECT_THROW(JetStreamPaymentQueue(options_for(server_), clock_, QueuePolicy{Millis::zero(), 3}),
               std::invalid_argument);
}

}  // namespace
}  // namespace boxoffice::testing

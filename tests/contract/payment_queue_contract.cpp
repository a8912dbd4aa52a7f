#include "contract/payment_queue_contract.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace boxoffice::testing {

void PaymentQueueContract::SetUp() {
  storage_ = GetParam().make_storage();
  traits_ = storage_->traits();
  queue_ = storage_->open(clock_, policy());
}

void PaymentQueueContract::TearDown() {
  queue_.reset();  // before the storage it lives in
  storage_.reset();
}

void PaymentQueueContract::reopen() {
  queue_.reset();
  queue_ = storage_->open(clock_, policy());
}

void PaymentQueueContract::advance(Millis by) {
  clock_.advance(by);
  if (traits_.real_time) std::this_thread::sleep_for(by + traits_.settle);
}

Millis PaymentQueueContract::long_while(int visibilities) const {
  return visibility() * (traits_.real_time ? std::min(visibilities, 2) : visibilities);
}

namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr Millis kOneMs{1};

PaymentJob charge(const std::string& id, const std::string& booking_id = "bkg_1") {
  return PaymentJob{id, PaymentJobKind::charge, booking_id};
}

std::vector<std::string> ids_of(const std::vector<Delivery>& deliveries) {
  std::vector<std::string> ids;
  for (const auto& delivery : deliveries) ids.push_back(delivery.job.id);
  return ids;
}

// Comparable in one expectation, and readable when it fails.
std::string show(const QueueCounts& counts) {
  return "ready=" + std::to_string(counts.ready) +
         " in_flight=" + std::to_string(counts.in_flight) + " dead=" + std::to_string(counts.dead);
}

// The one job a receive must return; fails the test (not just the expectation) otherwise.
Delivery only(const std::vector<Delivery>& deliveries) {
  if (deliveries.size() != 1) {
    ADD_FAILURE() << "expected one delivery, got " << deliveries.size();
    return Delivery{};
  }
  return deliveries.front();
}

// --- the life of one job -----------------------------------------------------------------------

TEST_P(PaymentQueueContract, PublishedJobIsDeliveredAndAckRemovesIt) {
  const Timestamp t0 = clock().now();
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
  EXPECT_THAT(queue().receive(10), IsEmpty());

  queue().publish(charge("pay_1", "bkg_1"));
  queue().publish(PaymentJob{"pay_2", PaymentJobKind::refund, "bkg_2"});
  EXPECT_EQ(show(queue().counts()), "ready=2 in_flight=0 dead=0");

  advance(milliseconds{5});
  const auto got = queue().receive(10);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].job.id, "pay_1");
  EXPECT_EQ(got[0].job.kind, PaymentJobKind::charge);
  EXPECT_EQ(got[0].job.booking_id, "bkg_1");
  EXPECT_EQ(got[0].delivery, 1u);
  EXPECT_EQ(got[0].first_enqueued_at, t0);
  EXPECT_EQ(got[1].job.id, "pay_2");
  EXPECT_EQ(got[1].job.kind, PaymentJobKind::refund);
  EXPECT_EQ(got[1].job.booking_id, "bkg_2");
  EXPECT_EQ(got[1].delivery, 1u);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=2 dead=0");
  EXPECT_THAT(queue().receive(10), IsEmpty());  // in flight: invisible

  queue().ack(got[0]);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");
  queue().ack(got[1]);
  queue().ack(got[1]);  // acking twice is harmless
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
  advance(long_while(3));
  EXPECT_THAT(queue().receive(10), IsEmpty());  // acked jobs never come back
  EXPECT_THAT(queue().dead_letters(10), IsEmpty());
}

TEST_P(PaymentQueueContract, PublishingAnIdTheQueueHoldsIsANoOp) {
  const Timestamp t0 = clock().now();
  queue().publish(charge("pay_1", "bkg_1"));
  queue().publish(PaymentJob{"pay_1", PaymentJobKind::refund, "bkg_other"});  // ready: no-op
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=0 dead=0");

  const Delivery first = only(queue().receive(10));
  EXPECT_EQ(first.job.booking_id, "bkg_1");
  EXPECT_EQ(first.job.kind, PaymentJobKind::charge);
  queue().publish(charge("pay_1", "bkg_1"));  // in flight: no-op
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");
  EXPECT_THAT(queue().receive(10), IsEmpty());

  queue().ack(first);
  advance(kOneMs);
  // Once acked the id is free: the same id is a new job, delivered from its first delivery.
  queue().publish(charge("pay_1", "bkg_1"));
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=0 dead=0");
  const Delivery again = only(queue().receive(10));
  EXPECT_EQ(again.job.id, "pay_1");
  EXPECT_EQ(again.delivery, 1u);
  EXPECT_EQ(again.first_enqueued_at, t0 + kOneMs);
}

TEST_P(PaymentQueueContract, UnackedJobComesBackAfterTheVisibilityTimeoutAndNotBefore) {
  const Timestamp t0 = clock().now();
  queue().publish(charge("pay_1"));
  const Delivery first = only(queue().receive(10));
  EXPECT_EQ(first.delivery, 1u);

  advance(visibility() - resolution());
  EXPECT_THAT(queue().receive(10), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");

  advance(resolution());
  // The lapsed lease is ready again before anybody receives it.
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=0 dead=0");
  const Delivery second = only(queue().receive(10));
  EXPECT_EQ(second.job.id, "pay_1");
  EXPECT_EQ(second.delivery, 2u);
  EXPECT_EQ(second.first_enqueued_at, t0);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");

  queue().ack(second);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
}

TEST_P(PaymentQueueContract, RetryLaterDelaysTheJobExactlyWithoutCountingADelivery) {
  queue().publish(charge("pay_1"));
  const Delivery first = only(queue().receive(10));
  advance(milliseconds{100});

  queue().retry_later(first, milliseconds{2'000});
  // Waiting out a backoff is ready, not in flight.
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=0 dead=0");
  advance(milliseconds{2'000} - resolution());
  EXPECT_THAT(queue().receive(10), IsEmpty());
  advance(resolution());
  const Delivery second = only(queue().receive(10));
  EXPECT_EQ(second.job.id, "pay_1");
  EXPECT_EQ(second.delivery, 2u);

  // A delay shorter than the visibility timeout brings it back sooner; zero at once.
  queue().retry_later(second, Millis::zero());
  const Delivery third = only(queue().receive(10));
  EXPECT_EQ(third.delivery, 3u);
  queue().ack(third);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
}

TEST_P(PaymentQueueContract, ExtendKeepsTheJobInvisibleForAnotherTimeout) {
  queue().publish(charge("pay_1"));
  const Delivery first = only(queue().receive(10));

  advance(visibility() - resolution());
  queue().extend(first);  // now invisible until 2 * visibility - resolution
  advance(resolution());
  EXPECT_THAT(queue().receive(10), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");
  advance(visibility() - resolution() * 2);
  EXPECT_THAT(queue().receive(10), IsEmpty());

  advance(resolution());
  const Delivery second = only(queue().receive(10));
  EXPECT_EQ(second.delivery, 2u);
  queue().ack(second);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
}

TEST_P(PaymentQueueContract, AStaleReceiptAcksRetriesAndExtendsNothing) {
  const Timestamp t0 = clock().now();
  queue().publish(charge("pay_1"));
  const Delivery first = only(queue().receive(10));
  advance(visibility());
  const Delivery second = only(queue().receive(10));
  ASSERT_EQ(second.delivery, 2u);

  queue().ack(first);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");
  queue().retry_later(first, Millis::zero());
  EXPECT_THAT(queue().receive(10), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");
  advance(visibility() - resolution());
  queue().extend(first);
  advance(resolution());
  // The second delivery lapsed on time: the stale extend did not move it.
  const Delivery third = only(queue().receive(10));
  EXPECT_EQ(third.delivery, 3u);
  EXPECT_EQ(third.first_enqueued_at, t0);

  queue().ack(third);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");

  // Nor does a receipt of an acked job touch the job later published under the same id.
  advance(kOneMs);
  queue().publish(charge("pay_1"));
  const Delivery reborn = only(queue().receive(10));
  ASSERT_EQ(reborn.delivery, first.delivery);
  queue().ack(first);
  queue().retry_later(first, Millis::zero());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");
  EXPECT_THAT(queue().receive(10), IsEmpty());
  queue().ack(reborn);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
}

// --- dead letters ------------------------------------------------------------------------------

TEST_P(PaymentQueueContract, AJobDeliveredMaxDeliveriesTimesBecomesADeadLetter) {
  const Timestamp t0 = clock().now();
  queue().publish(charge("pay_1", "bkg_7"));
  Delivery last;
  for (uint32_t n = 1; n <= kMaxDeliveries; ++n) {
    last = only(queue().receive(10));
    EXPECT_EQ(last.delivery, n);
    advance(visibility());
  }
  // Visible again, but spent: the next receive buries it instead of delivering it.
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=0 dead=0");
  EXPECT_THAT(queue().receive(10), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=1");

  const auto dead = queue().dead_letters(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].job.id, "pay_1");
  EXPECT_EQ(dead[0].job.kind, PaymentJobKind::charge);
  EXPECT_EQ(dead[0].job.booking_id, "bkg_7");
  EXPECT_EQ(dead[0].delivery, kMaxDeliveries);
  EXPECT_EQ(dead[0].first_enqueued_at, t0);

  // Never delivered again: not with time, not by publishing it again, not by its last receipt.
  advance(long_while(10));
  EXPECT_THAT(queue().receive(10), IsEmpty());
  queue().publish(charge("pay_1", "bkg_7"));
  queue().ack(last);
  queue().retry_later(last, Millis::zero());
  EXPECT_THAT(queue().receive(10), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=1");
  EXPECT_EQ(queue().dead_letters(10).size(), 1u);

  queue().remove_dead_letter("pay_1");
  queue().remove_dead_letter("pay_unknown");
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
  EXPECT_THAT(queue().dead_letters(10), IsEmpty());
  // Reconciled and removed, the id may be published again.
  queue().publish(charge("pay_1", "bkg_7"));
  EXPECT_EQ(only(queue().receive(10)).delivery, 1u);
}

TEST_P(PaymentQueueContract, RetriedDeliveriesCountTowardsTheDeadLetter) {
  queue().publish(charge("pay_1"));
  for (uint32_t n = 1; n <= kMaxDeliveries; ++n) {
    const Delivery delivery = only(queue().receive(10));
    EXPECT_EQ(delivery.delivery, n);
    queue().retry_later(delivery, milliseconds{10});
    advance(milliseconds{10});
  }
  EXPECT_THAT(queue().receive(10), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=1");
}

TEST_P(PaymentQueueContract, ARemovedReadyJobIsNotADeadLetter) {
  queue().publish(charge("pay_1"));
  queue().remove_dead_letter("pay_1");  // only dead letters are removed this way
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=0 dead=0");
  const Delivery delivery = only(queue().receive(10));
  queue().remove_dead_letter("pay_1");
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=0");
  queue().ack(delivery);
}

TEST_P(PaymentQueueContract, SpentJobsDoNotUseUpAReceiveBatch) {
  queue().publish(charge("pay_spent"));
  for (uint32_t n = 1; n <= kMaxDeliveries; ++n) {
    ASSERT_EQ(only(queue().receive(1)).job.id, "pay_spent");
    advance(visibility());
  }
  advance(kOneMs);
  queue().publish(charge("pay_fresh"));  // behind the spent one in visibility order

  EXPECT_THAT(ids_of(queue().receive(1)), ElementsAre("pay_fresh"));
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=1 dead=1");
}

TEST_P(PaymentQueueContract, DeadLettersAreListedOldestFirstAtMostMax) {
  for (const char* id : {"pay_a", "pay_b", "pay_c"}) {
    queue().publish(charge(id));
    advance(kOneMs);
  }
  for (uint32_t n = 1; n < kMaxDeliveries; ++n) {
    ASSERT_EQ(queue().receive(10).size(), 3u);
    advance(visibility());
  }
  const auto last = queue().receive(10);
  ASSERT_EQ(last.size(), 3u);
  // Visible again, and so buried, in the reverse of their enqueue order: "oldest first" must not
  // mean "buried first".
  queue().retry_later(last[0], milliseconds{3});
  queue().retry_later(last[1], milliseconds{2});
  queue().retry_later(last[2], milliseconds{1});
  advance(milliseconds{3});
  EXPECT_THAT(queue().receive(10), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=3");
  EXPECT_THAT(ids_of(queue().dead_letters(10)), ElementsAre("pay_a", "pay_b", "pay_c"));
  EXPECT_THAT(ids_of(queue().dead_letters(2)), ElementsAre("pay_a", "pay_b"));
  EXPECT_THAT(queue().dead_letters(0), IsEmpty());
  queue().remove_dead_letter("pay_b");
  EXPECT_THAT(ids_of(queue().dead_letters(10)), ElementsAre("pay_a", "pay_c"));
}

// --- batches and order -------------------------------------------------------------------------

TEST_P(PaymentQueueContract, ReceiveTakesAtMostMaxOldestFirst) {
  for (const char* id : {"pay_1", "pay_2", "pay_3", "pay_4", "pay_5"}) {
    queue().publish(charge(id));
    advance(kOneMs);
  }
  EXPECT_THAT(queue().receive(0), IsEmpty());
  EXPECT_EQ(show(queue().counts()), "ready=5 in_flight=0 dead=0");
  EXPECT_THAT(ids_of(queue().receive(2)), ElementsAre("pay_1", "pay_2"));
  EXPECT_EQ(show(queue().counts()), "ready=3 in_flight=2 dead=0");
  EXPECT_THAT(ids_of(queue().receive(2)), ElementsAre("pay_3", "pay_4"));
  EXPECT_THAT(ids_of(queue().receive(10)), ElementsAre("pay_5"));
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=5 dead=0");
}

TEST_P(PaymentQueueContract, OrderIsByVisibilityTimeThenEnqueueOrder) {
  // Published in the same millisecond: the enqueue order decides.
  for (const char* id : {"pay_a", "pay_b", "pay_c"}) queue().publish(charge(id));
  const Delivery a = only(queue().receive(1));
  ASSERT_EQ(a.job.id, "pay_a");
  advance(kOneMs);
  queue().retry_later(a, Millis::zero());  // visible again, but later than b and c
  auto all = queue().receive(10);
  ASSERT_EQ(all.size(), 3u);
  if (traits().orders_by_visibility_time) {
    EXPECT_THAT(ids_of(all), ElementsAre("pay_b", "pay_c", "pay_a"));
  } else {
    // Due again before never delivered: the engine's order, not the port's.
    EXPECT_THAT(ids_of(all), ElementsAre("pay_a", "pay_b", "pay_c"));
  }

  std::map<std::string, Delivery> by_id;
  for (const Delivery& delivery : all) by_id[delivery.job.id] = delivery;
  queue().retry_later(by_id["pay_b"], milliseconds{5});
  queue().retry_later(by_id["pay_c"], milliseconds{3});
  queue().retry_later(by_id["pay_a"], milliseconds{4});
  advance(milliseconds{5});
  if (traits().orders_by_visibility_time) {
    EXPECT_THAT(ids_of(queue().receive(10)), ElementsAre("pay_c", "pay_a", "pay_b"));
  } else {
    EXPECT_THAT(ids_of(queue().receive(10)), UnorderedElementsAre("pay_a", "pay_b", "pay_c"));
  }
}

TEST_P(PaymentQueueContract, CountsFollowEveryStage) {
  for (const char* id : {"pay_1", "pay_2", "pay_3", "pay_4"}) queue().publish(charge(id));
  EXPECT_EQ(show(queue().counts()), "ready=4 in_flight=0 dead=0");
  auto got = queue().receive(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=3 dead=0");
  queue().retry_later(got[0], visibility() * 2);
  EXPECT_EQ(show(queue().counts()), "ready=2 in_flight=2 dead=0");
  queue().ack(got[1]);
  EXPECT_EQ(show(queue().counts()), "ready=2 in_flight=1 dead=0");
  advance(visibility());  // got[2]'s lease lapses; got[0] still backs off
  EXPECT_EQ(show(queue().counts()), "ready=3 in_flight=0 dead=0");
  queue().extend(got[2]);  // its receipt is still the current one
  if (traits().lapsed_receipts_extend) {
    EXPECT_EQ(show(queue().counts()), "ready=2 in_flight=1 dead=0");
  } else {
    // Too late: the engine has queued it again.
    EXPECT_EQ(show(queue().counts()), "ready=3 in_flight=0 dead=0");
  }
  advance(visibility());  // got[0]'s backoff is over: it, too, is simply ready
  EXPECT_EQ(show(queue().counts()), "ready=3 in_flight=0 dead=0");
  EXPECT_EQ(queue().receive(10).size(), 3u);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=3 dead=0");
}

// --- concurrency -------------------------------------------------------------------------------

TEST_P(PaymentQueueContract, ConcurrentReceiversNeverShareADeliveryAndEveryJobIsAckedOnce) {
  constexpr int kProducers = 2;
  constexpr int kJobsPerProducer = 60;
  constexpr int kJobs = kProducers * kJobsPerProducer;
  constexpr int kConsumers = 4;
  // The clock stands still, so no lease lapses: a job is in one worker's hands until it lets go.
  std::mutex mutex;
  std::set<std::string> in_hand;
  std::set<std::pair<std::string, uint32_t>> handed_out;
  std::map<std::string, int> acks;
  std::vector<std::string> violations;
  std::atomic<int> acked{0};
  std::atomic<bool> stop{false};
  auto report = [&](std::string violation) {
    stop = true;
    std::lock_guard lock(mutex);
    violations.push_back(std::move(violation));
  };

  auto take = [&](const Delivery& delivery) {
    std::lock_guard lock(mutex);
    if (!in_hand.insert(delivery.job.id).second) {
      violations.push_back(delivery.job.id + " delivered while in flight");
    }
    if (!handed_out.emplace(delivery.job.id, delivery.delivery).second) {
      violations.push_back(delivery.job.id + " delivery " + std::to_string(delivery.delivery) +
                           " handed out twice");
    }
  };
  auto let_go = [&](const Delivery& delivery) {
    std::lock_guard lock(mutex);
    in_hand.erase(delivery.job.id);
  };
  auto consume = [&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    try {
      while (acked.load() < kJobs && !stop.load()) {
        if (std::chrono::steady_clock::now() > deadline) {
          return report("timed out with " + std::to_string(acked.load()) + " jobs acked");
        }
        const auto got = queue().receive(3);
        if (got.empty()) std::this_thread::yield();
        for (const Delivery& delivery : got) {
          take(delivery);
          // A third of the jobs are put back once, so redeliveries race with first deliveries.
          if (delivery.delivery == 1 && std::hash<std::string>{}(delivery.job.id) % 3 == 0) {
            let_go(delivery);  // before: once put back, another worker may take it at once
            queue().retry_later(delivery, Millis::zero());
            continue;
          }
          queue().ack(delivery);
          let_go(delivery);
          std::lock_guard lock(mutex);
          ++acks[delivery.job.id];
          ++acked;
        }
      }
    } catch (const std::exception& e) {
      report(std::string("consumer: ") + e.what());
    }
  };
  auto produce = [&](int producer) {
    try {
      for (int i = 0; i < kJobsPerProducer; ++i) {
        queue().publish(charge("pay_" + std::to_string(producer) + "_" + std::to_string(i)));
      }
    } catch (const std::exception& e) {
      report(std::string("producer: ") + e.what());
    }
  };

  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c) threads.emplace_back(consume);
  for (int p = 0; p < kProducers; ++p) threads.emplace_back(produce, p);
  for (auto& thread : threads) thread.join();

  EXPECT_THAT(violations, IsEmpty());
  EXPECT_EQ(acks.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, count] : acks) EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
  advance(long_while(2));
  EXPECT_THAT(queue().receive(10), IsEmpty());
}

// --- durability --------------------------------------------------------------------------------

TEST_P(PaymentQueueContract, NothingIsLostWhenTheQueueCrashes) {
  if (!durable()) GTEST_SKIP() << "this adapter keeps nothing across instances";
  const Timestamp t0 = clock().now();
  for (const char* id : {"pay_a", "pay_b", "pay_c", "pay_d"}) queue().publish(charge(id));
  auto got = queue().receive(3);
  ASSERT_THAT(ids_of(got), ElementsAre("pay_a", "pay_b", "pay_c"));
  queue().ack(got[0]);
  advance(kOneMs);

  reopen();

  // a stays acked; b and c are still in flight with their leases; d is ready.
  EXPECT_EQ(show(queue().counts()), "ready=1 in_flight=2 dead=0");
  queue().publish(charge("pay_b"));  // still known: not enqueued twice
  EXPECT_THAT(ids_of(queue().receive(10)), ElementsAre("pay_d"));
  queue().ack(got[2]);
  if (traits().receipts_outlive_the_queue) {
    // A receipt from before the crash is still current, since nothing redelivered the job.
    EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=2 dead=0");
    advance(visibility() - kOneMs);
    const Delivery b = only(queue().receive(10));
    EXPECT_EQ(b.job.id, "pay_b");
    EXPECT_EQ(b.delivery, 2u);
    EXPECT_EQ(b.first_enqueued_at, t0);
    queue().ack(b);
  } else {
    // The receipt died with the queue that handed it out: it acks nothing, and c comes back
    // with b once their visibility lapses. Nothing is lost either way.
    EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=3 dead=0");
    advance(visibility() - kOneMs);
    // At most two: on a real clock d, received a moment later, may be due by now as well.
    const auto again = queue().receive(2);
    ASSERT_THAT(ids_of(again), ElementsAre("pay_b", "pay_c"));
    for (const Delivery& delivery : again) {
      EXPECT_EQ(delivery.delivery, 2u);
      EXPECT_EQ(delivery.first_enqueued_at, t0);
      queue().ack(delivery);
    }
  }

  reopen();
  advance(visibility());
  const Delivery d = only(queue().receive(10));
  EXPECT_EQ(d.job.id, "pay_d");
  EXPECT_EQ(d.delivery, 2u);
  queue().ack(d);
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=0");
}

TEST_P(PaymentQueueContract, DeadLettersSurviveACrash) {
  if (!durable()) GTEST_SKIP() << "this adapter keeps nothing across instances";
  queue().publish(charge("pay_1", "bkg_9"));
  for (uint32_t n = 1; n <= kMaxDeliveries; ++n) {
    ASSERT_EQ(only(queue().receive(10)).delivery, n);
    advance(visibility());
  }
  EXPECT_THAT(queue().receive(10), IsEmpty());

  reopen();
  EXPECT_EQ(show(queue().counts()), "ready=0 in_flight=0 dead=1");
  const auto dead = queue().dead_letters(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].job.booking_id, "bkg_9");
  EXPECT_EQ(dead[0].delivery, kMaxDeliveries);
  EXPECT_THAT(queue().receive(10), IsEmpty());
}

}  // namespace
}  // namespace boxoffice::testing

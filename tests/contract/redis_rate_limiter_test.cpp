// The RateLimiter contract, run against the memory limiter and the Redis one (a server of its own
// per test, and the shared 3-master Cluster: one ctest entry, contract_tests.redis_cluster), with
// the same expectations. Time is the caller's, so every case uses explicit timestamps; intervals
// are whole seconds so that Redis's real-time key expiry (TTL = until the TAT passes) never runs
// out while a case is still looking at a key. Then what only Redis can be asked: two gateways
// sharing one limit, the TTL of a key, a server that does not answer.

#include "adapters/redis/redis_rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "contract/adapter_under_test.h"
#include "http/rate_limit.h"
#include "support/redis_server.h"

namespace boxoffice::testing {
namespace {

using http::RateLimit;
using http::RateLimiter;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Timestamp kStart = from_unix_ms(1'800'000'000'000);

std::shared_ptr<redis::Client> client_for(const std::string& url,
                                          milliseconds timeout = milliseconds{2000}) {
  redis::ClientOptions options;
  options.url = url;
  options.connect_timeout = timeout;
  options.command_timeout = timeout;
  return std::make_shared<redis::Client>(options);
}

class MemoryLimiterStorage final : public StorageUnderTest<RateLimiter> {
 public:
  std::unique_ptr<RateLimiter> open() override {
    return std::make_unique<http::MemoryRateLimiter>();
  }
  bool durable() const override { return false; }
};

class RedisLimiterStorage final : public StorageUnderTest<RateLimiter> {
 public:
  std::unique_ptr<RateLimiter> open() override {
    return std::make_unique<RedisRateLimiter>(client_for(server_.url()));
  }
  bool durable() const override { return true; }

 private:
  RedisServer server_;
};

class RedisClusterLimiterStorage final : public StorageUnderTest<RateLimiter> {
 public:
  RedisClusterLimiterStorage() { RedisCluster::shared().flush_all(); }
  std::unique_ptr<RateLimiter> open() override {
    return std::make_unique<RedisRateLimiter>(client_for(RedisCluster::shared().url()));
  }
  bool durable() const override { return true; }
};

class RateLimiterContract : public ::testing::TestWithParam<AdapterUnderTest<RateLimiter>> {
 protected:
  void SetUp() override {
    storage_ = GetParam().make_storage();
    limiter_ = storage_->open();
  }
  RateLimiter& limiter() { return *limiter_; }

  std::unique_ptr<StorageUnderTest<RateLimiter>> storage_;
  std::unique_ptr<RateLimiter> limiter_;
};

TEST_P(RateLimiterContract, AllowsTheBurstThenRefusesWithTheExactWait) {
  const auto limit = RateLimit::per(1, seconds{1}, 3);  // T = 1 s, 3 at once
  for (int64_t i = 0; i < 3; ++i) {
    const auto d = limiter().check("holds:b:alice", limit, kStart);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 2 - i) << i;
    EXPECT_EQ(d.retry_after, http::Micros{0});
  }
  const auto refused = limiter().check("holds:b:alice", limit, kStart);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds{1});
  EXPECT_EQ(refused.remaining, 0);
  // Refusals are not counted.
  const auto later = limiter().check("holds:b:alice", limit, kStart + milliseconds{300});
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.retry_after, milliseconds{700});
}

TEST_P(RateLimiterContract, RecoversOneRequestPerInterval) {
  const auto limit = RateLimit::per(1, seconds{1}, 2);
  ASSERT_TRUE(limiter().check("k", limit, kStart).allowed);
  ASSERT_TRUE(limiter().check("k", limit, kStart).allowed);
  EXPECT_FALSE(limiter().check("k", limit, kStart + milliseconds{999}).allowed);
  const auto after = limiter().check("k", limit, kStart + seconds{1});
  EXPECT_TRUE(after.allowed);
  EXPECT_EQ(after.remaining, 0);
  EXPECT_FALSE(limiter().check("k", limit, kStart + seconds{1}).allowed);
  EXPECT_TRUE(limiter().check("k", limit, kStart + seconds{2}).allowed);
}

TEST_P(RateLimiterContract, KeysAreIndependent) {
  const auto limit = RateLimit::per(1, seconds{1}, 1);
  ASSERT_TRUE(limiter().check("holds:b:alice", limit, kStart).allowed);
  EXPECT_FALSE(limiter().check("holds:b:alice", limit, kStart).allowed);
  EXPECT_TRUE(limiter().check("holds:b:bob", limit, kStart).allowed);
  EXPECT_TRUE(limiter().check("holds:a:alice", limit, kStart).allowed);
  EXPECT_TRUE(limiter().check("reads:b:alice", limit, kStart).allowed);
  // Odd characters, braces included, are just part of the key.
  EXPECT_TRUE(limiter().check("holds:b:{x}:y z", limit, kStart).allowed);
  EXPECT_FALSE(limiter().check("holds:b:{x}:y z", limit, kStart).allowed);
}

TEST_P(RateLimiterContract, ConcurrentChecksNeverAllowMoreThanTheBurst) {
  constexpr int kThreads = 8;
  constexpr int kChecksPerThread = 40;
  const auto limit = RateLimit::per(1, seconds{60}, 25);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kChecksPerThread; ++i) {
        if (limiter().check("hot", limit, kStart).allowed) ++allowed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 25);
}

TEST_P(RateLimiterContract, AsyncChecksCountLikeChecksAndAnswerOnceEach) {
  const auto limit = RateLimit::per(1, seconds{60}, 5);
  constexpr int kChecks = 40;
  std::mutex mutex;
  std::condition_variable changed;
  int answered = 0;
  int allowed = 0;
  for (int i = 0; i < kChecks; ++i) {
    limiter().async_check("async", limit, kStart,
                          [&](std::exception_ptr error, http::RateDecision decision) {
                            std::lock_guard lock(mutex);
                            EXPECT_FALSE(error);
                            ++answered;
                            if (decision.allowed) ++allowed;
                            changed.notify_all();
                          });
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(
      changed.wait_for(lock, std::chrono::seconds{10}, [&] { return answered == kChecks; }));
  EXPECT_EQ(allowed, 5);
  lock.unlock();
  // The same key, blocking: the async checks counted.
  EXPECT_FALSE(limiter().check("async", limit, kStart).allowed);
}

INSTANTIATE_TEST_SUITE_P(Memory, RateLimiterContract,
                         ::testing::Values(AdapterUnderTest<RateLimiter>{
                             "memory", [] { return std::make_unique<MemoryLimiterStorage>(); }}),
                         adapter_test_name<RateLimiter>);
INSTANTIATE_TEST_SUITE_P(Redis, RateLimiterContract,
                         ::testing::Values(AdapterUnderTest<RateLimiter>{
                             "redis", [] { return std::make_unique<RedisLimiterStorage>(); }}),
                         adapter_test_name<RateLimiter>);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RateLimiterContract,
                         ::testing::Values(AdapterUnderTest<RateLimiter>{
                             "redis_cluster",
                             [] { return std::make_unique<RedisClusterLimiterStorage>(); }}),
                         adapter_test_name<RateLimiter>);

// --- Redis only -------------------------------------------------------------------------------

TEST(RedisRateLimiter, TwoGatewaysShareOneLimit) {
  RedisServer server;
  RedisRateLimiter first(client_for(server.url()));
  RedisRateLimiter second(client_for(server.url()));
  const auto limit = RateLimit::per(1, seconds{1}, 4);
  int allowed = 0;
  for (int i = 0; i < 6; ++i) {
    allowed += first.check("holds:b:alice", limit, kStart).allowed;
    allowed += second.check("holds:b:alice", limit, kStart).allowed;
  }
  EXPECT_EQ(allowed, 4);
  const auto refused = second.check("holds:b:alice", limit, kStart + milliseconds{200});
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, milliseconds{800});
}

TEST(RedisRateLimiter, AKeyLivesUntilItsTatPassesUnderItsOwnHashTag) {
  RedisServer server;
  RedisRateLimiter limiter(client_for(server.url()));
  const auto limit = RateLimit::per(1, seconds{10}, 2);
  limiter.check("holds:b:alice", limit, kStart);
  limiter.check("holds:b:alice", limit, kStart);
  const auto key = limiter.redis_key("holds:b:alice");
  EXPECT_EQ(key, "bo:rl:{holds:b:alice}");
  EXPECT_EQ(server.command({"GET", key}).as_string(),
            std::to_string((to_unix_ms(kStart) + 20'000) * 1000));
  const auto ttl_ms = server.command({"PTTL", key}).as_integer();
  EXPECT_GT(ttl_ms, 15'000);
  EXPECT_LE(ttl_ms, 20'000);
  // A refusal writes nothing.
  EXPECT_FALSE(limiter.check("holds:b:alice", limit, kStart).allowed);
  EXPECT_EQ(server.command({"DBSIZE"}).as_integer(), 1);
}

TEST(RedisRateLimiter, AServerThatDoesNotAnswerIsAStorageError) {
  RedisServer server;
  RedisRateLimiter limiter(client_for(server.url(), milliseconds{300}));
  const auto limit = RateLimit::per(1, seconds{1}, 1);
  ASSERT_TRUE(limiter.check("k", limit, kStart).allowed);
  server.stop();
  EXPECT_THROW(limiter.check("k", limit, kStart + seconds{5}), StorageError);
}

}  // namespace
}  // namespace boxoffice::testing

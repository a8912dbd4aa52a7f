#include "contract/idempotency_store_contract.h"

#include <atomic>
#include <thread>
#include <vector>

namespace boxoffice::testing {

void IdempotencyStoreContract::SetUp() {
  storage_ = GetParam().make_storage();
  store_ = storage_->open();
}

void IdempotencyStoreContract::TearDown() {
  store_.reset();  // before the storage it lives in
  storage_.reset();
}

void IdempotencyStoreContract::reopen() {
  store_.reset();
  store_ = storage_->open();
}

namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const Timestamp kT0 = from_unix_ms(1'800'000'000'000);
constexpr Millis kLease{30'000};
const std::string kFingerprint = "POST /v1/events/ev1/holds\n{\"seats\":[\"orch:A:1\"]}";

bool started(const IdempotencyOutcome& outcome) {
  return std::holds_alternative<IdempotencyStarted>(outcome);
}
bool in_flight(const IdempotencyOutcome& outcome) {
  return std::holds_alternative<IdempotencyInFlight>(outcome);
}
bool mismatch(const IdempotencyOutcome& outcome) {
  return std::holds_alternative<IdempotencyMismatch>(outcome);
}

// Bytes a text column could mangle: a NUL, invalid UTF-8, and a line break.
StoredResponse created_response() {
  return StoredResponse{201, "application/json", std::string("{\"id\":\"hld_1\"}\0\xff\r\n", 18)};
}

void expect_replay(const IdempotencyOutcome& outcome, const StoredResponse& expected) {
  const auto* stored = std::get_if<StoredResponse>(&outcome);
  ASSERT_NE(stored, nullptr) << "expected a stored response, got alternative " << outcome.index();
  EXPECT_EQ(stored->status, expected.status);
  EXPECT_EQ(stored->content_type, expected.content_type);
  EXPECT_EQ(stored->body, expected.body);
}

TEST_P(IdempotencyStoreContract, FirstUseStartsAndASecondUseWaitsForIt) {
  EXPECT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0, kLease)));
  EXPECT_TRUE(in_flight(store().begin("alice", "k1", kFingerprint, kT0 + seconds{1}, kLease)));
  EXPECT_TRUE(in_flight(store().begin("alice", "k1", kFingerprint, kT0 + seconds{2}, kLease)));
}

TEST_P(IdempotencyStoreContract, CompletedResponseIsReplayedExactly) {
  ASSERT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0, kLease)));
  store().complete("alice", "k1", created_response(), kT0 + seconds{1});

  expect_replay(store().begin("alice", "k1", kFingerprint, kT0 + seconds{2}, kLease),
                created_response());
  // Long after any lease: a completed key is answered, never started again.
  expect_replay(store().begin("alice", "k1", kFingerprint, kT0 + hours{23}, kLease),
                created_response());
}

TEST_P(IdempotencyStoreContract, EmptyBodyIsReplayedAsEmpty) {
  ASSERT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0, kLease)));
  store().complete("alice", "k1", StoredResponse{204, "", ""}, kT0 + seconds{1});
  expect_replay(store().begin("alice", "k1", kFingerprint, kT0 + seconds{2}, kLease),
                StoredResponse{204, "", ""});
}

TEST_P(IdempotencyStoreContract, AnotherRequestWithTheSameKeyIsAMismatch) {
  ASSERT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0, kLease)));
  EXPECT_TRUE(mismatch(store().begin("alice", "k1", "other", kT0 + seconds{1}, kLease)));

  store().complete("alice", "k1", created_response(), kT0 + seconds{2});
  EXPECT_TRUE(mismatch(store().begin("alice", "k1", "other", kT0 + seconds{3}, kLease)));
  // The mismatch changed nothing.
  expect_replay(store().begin("alice", "k1", kFingerprint, kT0 + seconds{4}, kLease),
                created_response());
}

TEST_P(IdempotencyStoreContract, KeysBelongToOneBuyer) {
  ASSERT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0, kLease)));
  ASSERT_TRUE(started(store().begin("bob", "k1", "bob's request", kT0, kLease)));
  store().complete("bob", "k1", StoredResponse{409, "application/problem+json", "{}"}, kT0);

  EXPECT_TRUE(in_flight(store().begin("alice", "k1", kFingerprint, kT0 + seconds{1}, kLease)));
  expect_replay(store().begin("bob", "k1", "bob's request", kT0 + seconds{1}, kLease),
                StoredResponse{409, "application/problem+json", "{}"});
}

TEST_P(IdempotencyStoreContract, AnExpiredLeaseIsTakenOver) {
  ASSERT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0, kLease)));
  EXPECT_TRUE(in_flight(
      store().begin("alice", "k1", kFingerprint, kT0 + kLease - milliseconds{1}, kLease)));
  EXPECT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0 + kLease, kLease)));
  // The new holder has a fresh lease of its own.
  EXPECT_TRUE(
      in_flight(store().begin("alice", "k1", kFingerprint, kT0 + kLease + seconds{1}, kLease)));

  store().complete("alice", "k1", created_response(), kT0 + kLease + seconds{2});
  expect_replay(store().begin("alice", "k1", kFingerprint, kT0 + kLease + seconds{3}, kLease),
                created_response());
}

TEST_P(IdempotencyStoreContract, AnAbandonedKeyStartsAgain) {
  ASSERT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0, kLease)));
  store().abandon("alice", "k1");
  EXPECT_TRUE(started(store().begin("alice", "k1", kFingerprint, kT0 + seconds{1}, kLease)));
  store().abandon("alice", "k1");
  // Abandoned, the key may even carry another request.
  EXPECT_TRUE(started(store().begin("alice", "k1", "other", kT0 + seconds{2}, kLease)));
}

TEST_P(IdempotencyStoreContract, PurgeDeletesOnlyRecordsOlderThanTheRetention) {
  const Millis retention = hours{24};
  ASSERT_TRUE(started(store().begin("alice", "old", kFingerprint, kT0, kLease)));
  store().complete("alice", "old", created_response(), kT0 + seconds{1});
  ASSERT_TRUE(started(store().begin("bob", "abandoned", kFingerprint, kT0, kLease)));
  ASSERT_TRUE(started(store().begin("alice", "young", kFingerprint, kT0 + minutes{10}, kLease)));
  store().complete("alice", "young", created_response(), kT0 + minutes{10});

  const Timestamp now = kT0 + retention + minutes{5};
  EXPECT_EQ(store().purge(now, retention), 2u);
  EXPECT_EQ(store().purge(now, retention), 0u);

  EXPECT_TRUE(started(store().begin("alice", "old", "a new request", now, kLease)));
  EXPECT_TRUE(started(store().begin("bob", "abandoned", kFingerprint, now, kLease)));
  expect_replay(store().begin("alice", "young", kFingerprint, now, kLease), created_response());
}

TEST_P(IdempotencyStoreContract, ConcurrentFirstUsesStartExactlyOnce) {
  constexpr int kThreads = 16;
  std::atomic<int> starts{0};
  std::atomic<int> waits{0};
  std::atomic<int> others{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      try {
        const auto outcome = store().begin("alice", "k1", kFingerprint, kT0, kLease);
        if (started(outcome)) {
          ++starts;
        } else if (in_flight(outcome)) {
          ++waits;
        } else {
          ++others;
        }
      } catch (const std::exception&) {
        ++others;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(starts.load(), 1);
  EXPECT_EQ(waits.load(), kThreads - 1);
  EXPECT_EQ(others.load(), 0);
}

TEST_P(IdempotencyStoreContract, RecordsSurviveReopening) {
  if (!durable()) GTEST_SKIP() << "this adapter keeps nothing across instances";
  ASSERT_TRUE(started(store().begin("alice", "done", kFingerprint, kT0, kLease)));
  store().complete("alice", "done", created_response(), kT0 + seconds{1});
  ASSERT_TRUE(started(store().begin("alice", "running", kFingerprint, kT0, kLease)));

  reopen();

  expect_replay(store().begin("alice", "done", kFingerprint, kT0 + seconds{2}, kLease),
                created_response());
  EXPECT_TRUE(in_flight(store().begin("alice", "running", kFingerprint, kT0 + seconds{2}, kLease)));
}

}  // namespace
}  // namespace boxoffice::testing

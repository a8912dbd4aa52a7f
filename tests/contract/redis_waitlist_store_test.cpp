// The WaitlistStore contract against the Redis store: on a server of its own per test (AOF on, and
// every reopen restarts redis-server, so "survives reopening" means "survives a restart"), and on
// the shared 3-master Cluster (one ctest entry, contract_tests.redis_cluster). Then what only
// Redis can be asked: kill -9 with AOF, its indexes after a crash half-way, its key layout, the
// cost of first_fitting, an engine that stops answering.

#include "adapters/redis/redis_waitlist_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "contract/waitlist_store_contract.h"
#include "support/redis_server.h"

namespace boxoffice::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using S = WaitlistStatus;

std::shared_ptr<redis::Client> client_for(const std::string& url,
                                          milliseconds timeout = milliseconds{2000}) {
  redis::ClientOptions options;
  options.url = url;
  options.connect_timeout = timeout;
  options.command_timeout = timeout;
  return std::make_shared<redis::Client>(options);
}

// Waits (bounded) until the client's connections are back after a restart.
void wait_until_reachable(redis::Client& client) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (!client.ping()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "redis did not come back";
    std::this_thread::sleep_for(milliseconds{20});
  }
}

// appendfsync always: every acknowledged write is on disk.
RedisServerOptions with_aof() {
  RedisServerOptions options;
  options.append_only = true;
  return options;
}

class RedisWaitlistStorage final : public StorageUnderTest<WaitlistStore> {
 public:
  std::unique_ptr<WaitlistStore> open() override {
    // Every store after the first meets a server that has just been restarted from its AOF.
    if (opened_++ > 0) server_.restart(RedisServer::Data::keep);
    return std::make_unique<RedisWaitlistStore>(client_for(server_.url()));
  }
  bool durable() const override { return true; }

 private:
  RedisServer server_{with_aof()};
  int opened_ = 0;
};

class RedisClusterWaitlistStorage final : public StorageUnderTest<WaitlistStore> {
 public:
  RedisClusterWaitlistStorage() { RedisCluster::shared().flush_all(); }
  std::unique_ptr<WaitlistStore> open() override {
    return std::make_unique<RedisWaitlistStore>(client_for(RedisCluster::shared().url()));
  }
  bool durable() const override { return true; }
};

INSTANTIATE_TEST_SUITE_P(Redis, WaitlistStoreContract,
                         ::testing::Values(WaitlistStoreAdapter{
                             "redis", [] { return std::make_unique<RedisWaitlistStorage>(); }}),
                         adapter_test_name<WaitlistStore>);

INSTANTIATE_TEST_SUITE_P(RedisCluster, WaitlistStoreContract,
                         ::testing::Values(WaitlistStoreAdapter{
                             "RedisCluster",
                             [] { return std::make_unique<RedisClusterWaitlistStorage>(); }}),
                         adapter_test_name<WaitlistStore>);

// --- what only Redis can be asked --------------------------------------------------------------

const Timestamp kT0 = from_unix_ms(1'800'000'000'000);

WaitlistEntry floor_entry(const std::string& id, const std::string& buyer, uint32_t quantity = 1) {
  WaitlistEntry entry;
  entry.id = id;
  entry.event_id = "ev_1";
  entry.section = "floor";
  entry.buyer = buyer;
  entry.quantity = quantity;
  entry.created_at = kT0;
  return entry;
}

std::string positions(WaitlistStore& store, const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) {
    const auto found = store.get(id);
    text += (text.empty() ? "" : " ") + id + ':' +
            (!found            ? "?"
             : found->position ? std::to_string(*found->position)
                               : "-");
  }
  return text;
}

class RedisWaitlistStoreTest : public ::testing::Test {
 protected:
  RedisServer server_{with_aof()};
};

TEST_F(RedisWaitlistStoreTest, OrderPositionsAndOffersSurviveKillNineWithAof) {
  auto client = client_for(server_.url());
  RedisWaitlistStore store(client);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(store
                    .join(floor_entry("wl_" + std::to_string(i), "buyer" + std::to_string(i),
                                      i % 2 == 0 ? 4 : 1))
                    .ok());
  }
  ASSERT_TRUE(store
                  .transition("wl_1", S::waiting, S::offered, kT0,
                              WaitlistOffer{"hld_1", kT0 + minutes{10}})
                  .ok());
  ASSERT_TRUE(store.transition("wl_2", S::waiting, S::left, kT0).ok());
  const std::vector<std::string> ids = {"wl_0", "wl_1", "wl_2", "wl_3", "wl_4", "wl_5"};
  ASSERT_EQ(positions(store, ids), "wl_0:1 wl_1:- wl_2:- wl_3:2 wl_4:3 wl_5:4");

  // appendfsync always: what was acknowledged is on disk, whatever happens to the process. The
  // same store goes on once its connection is back (and its scripts are sent again: NOSCRIPT).
  server_.kill9();
  EXPECT_THROW((void)store.get("wl_0"), StorageError);
  server_.restart(RedisServer::Data::keep);
  wait_until_reachable(*client);

  EXPECT_EQ(positions(store, ids), "wl_0:1 wl_1:- wl_2:- wl_3:2 wl_4:3 wl_5:4");
  const auto offered = store.find_by_offer("hld_1");
  ASSERT_TRUE(offered.has_value());
  EXPECT_EQ(offered->id, "wl_1");
  EXPECT_EQ(offered->offer->expires_at, kT0 + minutes{10});
  EXPECT_EQ(store.first_fitting("ev_1", "floor", 1).value_or(WaitlistEntry{}).id, "wl_3");
  EXPECT_EQ(store.lapsed_offers(kT0 + minutes{10}, 10).size(), 1u);
  EXPECT_EQ(store.waiting_count("ev_1", "floor"), 4u);
  // The sequence counter came back too: a new joiner goes to the back, after every old one.
  auto late = store.join(floor_entry("wl_late", "late"));
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->position, 5u);
  EXPECT_EQ(late->sequence, 7);
  EXPECT_EQ(store.join(floor_entry("wl_dup", "buyer3")).error().code, Errc::conflict);
}

// A join or an offer writes its index, then dies before its section script: the index points at
// nothing, and everything reads it as nothing.
TEST_F(RedisWaitlistStoreTest, AnIndexLeftByACrashHalfWayIsReadAsNothing) {
  RedisWaitlistStore store(client_for(server_.url()));
  ASSERT_TRUE(store.join(floor_entry("wl_1", "alice")).ok());
  ASSERT_EQ(server_.command({"SET", "{w-id:wl_ghost}", "ev_1:floor:0123456789abcdef"}).str, "OK");
  ASSERT_EQ(server_.command({"SET", "{w-id:wl_elsewhere}", "ev_1:balcony:0123456789abcdef"}).str,
            "OK");
  ASSERT_EQ(server_.command({"SET", "{w-hold:hld_ghost}", "ev_1:floor:wl_1"}).str, "OK");
  ASSERT_EQ(server_.command({"ZADD", "{w-active}", "1", "ev_9:nowhere"}).type,
            redis::Reply::Type::integer);

  EXPECT_FALSE(store.get("wl_ghost").has_value());
  EXPECT_EQ(store.transition("wl_ghost", S::waiting, S::left, kT0).error().code, Errc::not_found);
  EXPECT_FALSE(store.find_by_offer("hld_ghost").has_value());  // wl_1 holds no such offer
  ASSERT_EQ(store.active_sections().size(), 1u);
  EXPECT_EQ(store.active_sections()[0].section, "floor");

  // The id is still free in the section its index names: the retried join gets in and owns it.
  auto retried = store.join(floor_entry("wl_ghost", "bob"));
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->position, 2u);
  EXPECT_EQ(store.get("wl_ghost").value_or(WaitlistEntry{}).buyer, "bob");
  // Filed elsewhere, the id is taken: it could still be a join in flight there.
  EXPECT_EQ(store.join(floor_entry("wl_elsewhere", "carol")).error().code, Errc::conflict);
  // A refused join leaves no index behind.
  EXPECT_EQ(store.join(floor_entry("wl_again", "alice")).error().code, Errc::conflict);
  EXPECT_TRUE(server_.command({"GET", "{w-id:wl_again}"}).is_nil());
}

TEST_F(RedisWaitlistStoreTest, ASectionLeavesTheActiveIndexOnlyAfterTheGrace) {
  auto client = client_for(server_.url());
  auto active_index_size = [&] { return server_.command({"ZCARD", "{w-active}"}).integer; };
  {
    RedisWaitlistStore store(client);  // the default grace: minutes
    ASSERT_TRUE(store.join(floor_entry("wl_1", "alice")).ok());
    ASSERT_TRUE(store.transition("wl_1", S::waiting, S::left, kT0).ok());
    EXPECT_TRUE(store.active_sections().empty());
    EXPECT_EQ(active_index_size(), 1);  // empty, merely skipped
  }
  RedisWaitlistStore store(client, RedisWaitlistStoreOptions{.active_section_grace = {}});
  EXPECT_TRUE(store.active_sections().empty());
  EXPECT_EQ(active_index_size(), 0);
  ASSERT_TRUE(store.join(floor_entry("wl_2", "alice")).ok());
  EXPECT_EQ(active_index_size(), 1);
  ASSERT_EQ(store.active_sections().size(), 1u);  // live: never pruned, whatever the grace
  EXPECT_EQ(active_index_size(), 1);
}

TEST_F(RedisWaitlistStoreTest, AllKeysOfASectionShareOneSlotAndNamesCannotMoveTheTag) {
  RedisWaitlistStore store(client_for(server_.url()));
  WaitlistEntry odd = floor_entry("wl_1", "alice", 2);
  odd.event_id = "ev}{:1";
  odd.section = "a:b}";
  ASSERT_TRUE(store.join(odd).ok());
  ASSERT_TRUE(
      store
          .transition("wl_1", S::waiting, S::offered, kT0, WaitlistOffer{"hld_1", kT0 + minutes{1}})
          .ok());
  ASSERT_TRUE(store.join(floor_entry("wl_2", "bob")).ok());

  // Section keys by their slot: one slot per section, whatever its name holds.
  std::map<std::string, std::vector<uint16_t>> slots;
  for (const auto& key : server_.command({"KEYS", "{w:*"}).elements) {
    const std::string& name = key.as_string();
    slots[name.substr(0, name.rfind(':'))].push_back(redis::key_slot(name));
  }
  ASSERT_EQ(slots.size(), 2u);
  for (const auto& [section, of_section] : slots) {
    EXPECT_GE(of_section.size(), 4u) << section;  // Redis drops a ZSET once it is empty
    for (const uint16_t slot : of_section) EXPECT_EQ(slot, of_section.front()) << section;
  }
  EXPECT_TRUE(slots.contains("{w:ev%7D%7B%3A1:a%3Ab%7D}")) << ::testing::PrintToString(slots);
  const auto active = store.active_sections();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].event_id, "ev_1");
  EXPECT_EQ(active[1].event_id, "ev}{:1");
  EXPECT_EQ(active[1].section, "a:b}");
  EXPECT_EQ(store.counts("ev}{:1").offered, 1u);
}

// The head answers at once; behind a head that wants too many seats, one lookup per quantity
// waiting (never a walk down the line). Counted by the server itself.
TEST_F(RedisWaitlistStoreTest, FirstFittingReadsOneEntryPerQuantityNotTheLine) {
  auto client = client_for(server_.url());
  RedisWaitlistStore store(client);
  constexpr int kLarge = 500;
  for (int i = 0; i < kLarge; ++i) {
    ASSERT_TRUE(
        store.join(floor_entry("wl_big" + std::to_string(i), "b" + std::to_string(i), 6 + i % 3))
            .ok());
  }
  ASSERT_TRUE(store.join(floor_entry("wl_two", "two", 2)).ok());
  ASSERT_TRUE(store.join(floor_entry("wl_one", "one", 1)).ok());

  auto calls_of = [&](const std::string& command) -> int64_t {
    const std::string info = server_.command({"INFO", "commandstats"}).as_string();
    const std::string tag = "cmdstat_" + command + ":calls=";
    const size_t at = info.find(tag);
    return at == std::string::npos ? 0 : std::stoll(info.substr(at + tag.size()));
  };
  ASSERT_EQ(server_.command({"CONFIG", "RESETSTAT"}).str, "OK");
  const auto found = store.first_fitting("ev_1", "floor", 2);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, "wl_two");
  EXPECT_EQ(found->position, static_cast<uint64_t>(kLarge + 1));
  EXPECT_LE(calls_of("hget"), 2);           // the head, then the answer
  EXPECT_LE(calls_of("zrangebyscore"), 3);  // quantities 1 and 2, then none left
  ASSERT_EQ(server_.command({"CONFIG", "RESETSTAT"}).str, "OK");
  EXPECT_EQ(store.first_fitting("ev_1", "floor", 8).value_or(WaitlistEntry{}).id, "wl_big0");
  EXPECT_EQ(calls_of("zrangebyscore"), 0);
}

TEST_F(RedisWaitlistStoreTest, AServerThatIsGoneIsAStorageErrorWithinTheTimeout) {
  RedisWaitlistStore store(client_for(server_.url(), milliseconds{300}));
  ASSERT_TRUE(store.join(floor_entry("wl_1", "alice")).ok());
  server_.stop();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)store.join(floor_entry("wl_2", "bob")), StorageError);
  EXPECT_THROW((void)store.get("wl_1"), StorageError);
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::left, kT0), StorageError);
  EXPECT_THROW((void)store.active_sections(), StorageError);
  EXPECT_THROW((void)store.counts("ev_1"), StorageError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{5});
}

TEST_F(RedisWaitlistStoreTest, BugsOfTheCallerAreRefusedLoudlyAndChangeNothing) {
  RedisWaitlistStore store(client_for(server_.url()));
  EXPECT_THROW((void)store.join(floor_entry("", "alice")), std::invalid_argument);
  EXPECT_THROW((void)store.join(floor_entry("wl_0", "alice", 0)), std::invalid_argument);
  EXPECT_THROW((void)store.join(floor_entry("wl_0", "alice", RedisWaitlistStore::quantity_max + 1)),
               std::invalid_argument);
  ASSERT_TRUE(store.join(floor_entry("wl_1", "alice", RedisWaitlistStore::quantity_max)).ok());
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::converted, kT0),
               std::invalid_argument);
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::offered, kT0), std::invalid_argument);
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::offered, kT0, WaitlistOffer{"", kT0}),
               std::invalid_argument);
  EXPECT_EQ(store.get("wl_1").value_or(WaitlistEntry{}).status, S::waiting);
  EXPECT_EQ(store.first_fitting("ev_1", "floor", 4'000'000'000u).value_or(WaitlistEntry{}).id,
            "wl_1");
}

}  // namespace
}  // namespace boxoffice::testing

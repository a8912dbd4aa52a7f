// Every SeatLockStore adapter runs the same contract suite: in memory, on one Redis server (a
// fresh one per test: it starts in milliseconds), and on a 3-master Redis Cluster shared by the
// process (flushed per test; its tests have RedisCluster in their names and run as one ctest
// entry).
#include "adapters/memory/memory_seat_lock_store.h"
#include "adapters/redis/redis_seat_lock_store.h"
#include "contract/seat_lock_store_contract.h"
#include "support/redis_server.h"

namespace boxoffice::testing {
namespace {

redis::ClientOptions client_options(std::string url) {
  redis::ClientOptions options;
  options.url = std::move(url);
  return options;
}

class MemoryUnderTest final : public SeatLockStoreUnderTest {
 public:
  SeatLockStore& store() override { return store_; }

 private:
  MemorySeatLockStore store_;
};

class RedisUnderTest final : public SeatLockStoreUnderTest {
 public:
  SeatLockStore& store() override { return store_; }
  bool can_wipe_engine() const override { return true; }
  // FLUSHALL and SCRIPT FLUSH: what a restart without persistence forgets (a real restart is in
  // redis_seat_lock_store_test.cpp).
  void wipe_engine() override {
    ASSERT_FALSE(server_.command({"FLUSHALL"}).is_error());
    ASSERT_FALSE(server_.command({"SCRIPT", "FLUSH"}).is_error());
  }

 private:
  RedisServer server_;
  redis::Client client_{client_options(server_.url())};
  RedisSeatLockStore store_{client_};
};

class RedisClusterUnderTest final : public SeatLockStoreUnderTest {
 public:
  RedisClusterUnderTest() { cluster_.flush_all(); }
  SeatLockStore& store() override { return store_; }
  bool can_wipe_engine() const override { return true; }
  void wipe_engine() override { cluster_.flush_all(); }

 private:
  RedisCluster& cluster_ = RedisCluster::shared();
  redis::Client client_{client_options(cluster_.url())};
  RedisSeatLockStore store_{client_};
};

template <class UnderTest>
SeatLockStoreFactory factory(std::string name) {
  return {std::move(name), [] { return std::make_unique<UnderTest>(); }};
}

INSTANTIATE_TEST_SUITE_P(Adapters, SeatLockStoreContract,
                         ::testing::Values(factory<MemoryUnderTest>("memory"),
                                           factory<RedisUnderTest>("redis"),
                                           factory<RedisClusterUnderTest>("RedisCluster")),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace boxoffice::testing

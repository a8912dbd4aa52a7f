// Our Redis client against a real redis-server (one per test; they start in milliseconds) and a
// real 3-master Redis Cluster (one per process: the RedisCluster suites run in one ctest entry).

#include "adapters/redis/redis_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/free_port.h"
#include "support/redis_server.h"

namespace boxoffice::redis {
namespace {

using testing::RedisCluster;
using testing::RedisServer;
using testing::RedisServerOptions;
using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

ClientOptions options_for(const std::string& url) {
  ClientOptions options;
  options.url = url;
  options.connect_timeout = 1000ms;
  options.command_timeout = 1000ms;
  options.backoff_initial = 20ms;
  options.backoff_max = 200ms;
  return options;
}

Ms elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - start);
}

// Runs `check` until it returns true or `timeout` passes.
template <class Check>
bool eventually(Check check, Ms timeout = 10'000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (check()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// --- one server --------------------------------------------------------------------------------

TEST(RedisClient, SetThenGetReturnsTheValueAndAMissingKeyIsNil) {
  RedisServer server;
  Client client(options_for(server.url()));

  const Reply set = client.command({"SET", "greeting", std::string("hello\0world", 11)});
  EXPECT_EQ(set.type, Reply::Type::status);
  EXPECT_EQ(set.as_string(), "OK");

  const Reply get = client.command({"GET", "greeting"});
  EXPECT_EQ(get.type, Reply::Type::string);
  EXPECT_EQ(get.as_string(), std::string("hello\0world", 11));

  EXPECT_TRUE(client.command({"GET", "missing"}).is_nil());
  EXPECT_FALSE(client.cluster());
  EXPECT_TRUE(client.ping());
}

TEST(RedisClient, IntegerAndArrayReplies) {
  RedisServer server;
  Client client(options_for(server.url()));

  EXPECT_EQ(client.command({"INCRBY", "counter", "41"}).as_integer(), 41);
  EXPECT_EQ(client.command({"INCR", "counter"}).as_integer(), 42);

  client.command({"RPUSH", "list", "a", "b", "c"});
  const Reply range = client.command({"LRANGE", "list", "0", "-1"});
  ASSERT_EQ(range.type, Reply::Type::array);
  ASSERT_EQ(range.elements.size(), 3u);
  EXPECT_EQ(range.elements[0].as_string(), "a");
  EXPECT_EQ(range.elements[2].as_string(), "c");

  const Reply empty = client.command({"LRANGE", "nothing", "0", "-1"});
  EXPECT_EQ(empty.type, Reply::Type::array);
  EXPECT_TRUE(empty.elements.empty());

  // Asking a reply for the wrong type is a StorageError, not a crash or a silent zero.
  EXPECT_THROW(range.as_integer(), StorageError);
  EXPECT_THROW(client.command({"INCR", "counter"}).as_string(), StorageError);
}

TEST(RedisClient, AnErrorReplyIsAReplyNotAnException) {
  RedisServer server;
  Client client(options_for(server.url()));
  client.command({"SET", "text", "not a number"});

  const Reply incr = client.command({"INCR", "text"});
  EXPECT_TRUE(incr.is_error());
  EXPECT_NE(incr.str.find("not an integer"), std::string::npos) << incr.str;

  const Reply wrongtype = client.command({"LPUSH", "text", "x"});
  EXPECT_TRUE(wrongtype.is_error());
  EXPECT_EQ(wrongtype.str.rfind("WRONGTYPE", 0), 0u) << wrongtype.str;

  EXPECT_TRUE(client.command({"NO-SUCH-COMMAND"}).is_error());
  // The connection is still good afterwards.
  EXPECT_EQ(client.command({"GET", "text"}).as_string(), "not a number");
}

TEST(RedisClient, PipelineRepliesComeInTheOrderOfTheCommands) {
  RedisServer server;
  Client client(options_for(server.url()));

  std::vector<std::vector<std::string>> commands;
  for (int i = 0; i < 200; ++i) commands.push_back({"RPUSH", "seq", std::to_string(i)});
  commands.push_back({"LRANGE", "seq", "0", "-1"});
  commands.push_back({"INCR", "seq"});  // WRONGTYPE, in its place
  commands.push_back({"GET", "missing"});

  const std::vector<Reply> replies = client.pipeline(commands);
  ASSERT_EQ(replies.size(), commands.size());
  for (int i = 0; i < 200; ++i) EXPECT_EQ(replies[i].as_integer(), i + 1);
  ASSERT_EQ(replies[200].elements.size(), 200u);
  EXPECT_EQ(replies[200].elements[199].as_string(), "199");
  EXPECT_TRUE(replies[201].is_error());
  EXPECT_TRUE(replies[202].is_nil());
  EXPECT_TRUE(client.pipeline({}).empty());
}

TEST(RedisClient, ConcurrentCommandsFromManyThreadsEachGetTheirOwnReply) {
  RedisServer server;
  auto options = options_for(server.url());
  options.io_threads = 2;
  options.command_timeout = 10'000ms;  // sanitizers and a shared 2-core machine are slow
  Client client(options);

  constexpr int kThreads = 8;
  constexpr int kCommandsPerThread = 400;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Asynchronous commands, many in flight at once: each reply must be its own command's.
      std::mutex mutex;
      std::condition_variable done;
      int pending = kCommandsPerThread;
      for (int i = 0; i < kCommandsPerThread; ++i) {
        const std::string payload = "t" + std::to_string(t) + "-" + std::to_string(i);
        client.async_command({"ECHO", payload}, [&, payload](std::exception_ptr error, Reply r) {
          if (error) {
            ++failures;
          } else if (r.str != payload) {
            ++mismatches;
          }
          std::lock_guard lock(mutex);
          if (--pending == 0) done.notify_one();
        });
      }
      {
        std::unique_lock lock(mutex);
        done.wait(lock, [&] { return pending == 0; });
      }
      // Blocking commands and pipelines interleaved with the other threads'.
      for (int i = 0; i < 50; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i);
        const auto replies =
            client.pipeline({{"SET", key, key}, {"GET", key}, {"INCR", key + "n"}});
        if (replies[1].str != key || replies[2].integer != 1) ++mismatches;
        if (client.command({"GET", key}).str != key) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(client.command({"DBSIZE"}).as_integer(), kThreads * 50 * 2);
}

TEST(RedisClient, AsyncCommandsOfOneThreadRunInOrder) {
  RedisServer server;
  auto options = options_for(server.url());
  options.io_threads = 3;
  Client client(options);
  std::mutex mutex;
  std::condition_variable done;
  std::vector<int64_t> seen;
  constexpr int kCommands = 300;
  for (int i = 0; i < kCommands; ++i) {
    client.async_command({"INCR", "order"}, [&](std::exception_ptr, Reply reply) {
      std::lock_guard lock(mutex);
      seen.push_back(reply.integer);
      done.notify_one();
    });
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, 10s, [&] { return seen.size() == kCommands; }));
  for (int i = 0; i < kCommands; ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST(RedisClient, EvalRunsAScriptAndFallsBackToEvalAfterScriptFlush) {
  RedisServer server;
  Client client(options_for(server.url()));
  const Script script(
      "redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], redis.call('GET', KEYS[1])}");
  EXPECT_EQ(script.sha1().size(), 40u);

  Reply reply = client.eval(script, {"k1"}, {"v1"});
  ASSERT_EQ(reply.type, Reply::Type::array) << reply.str;
  EXPECT_EQ(reply.elements[0].as_string(), "k1");
  EXPECT_EQ(reply.elements[1].as_string(), "v1");

  // The server forgets every script (as after a restart): EVALSHA gets NOSCRIPT, EVAL follows.
  client.command({"SCRIPT", "FLUSH"});
  reply = client.eval(script, {"k2"}, {"v2"});
  ASSERT_EQ(reply.type, Reply::Type::array) << reply.str;
  EXPECT_EQ(reply.elements[1].as_string(), "v2");
  EXPECT_EQ(client.command({"GET", "k2"}).as_string(), "v2");

  // A script's own error comes back as an error reply.
  const Script failing("return redis.error_reply('SEATS_TAKEN')");
  const Reply error = client.eval(failing, {}, {});
  EXPECT_TRUE(error.is_error());
  EXPECT_NE(error.str.find("SEATS_TAKEN"), std::string::npos) << error.str;
}

// A promise of what an async call hands its handler, for the tests below.
struct AsyncOutcome {
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;
  std::exception_ptr error;
  std::vector<Reply> replies;

  void set(std::exception_ptr e, std::vector<Reply> r) {
    std::lock_guard lock(mutex);
    EXPECT_FALSE(done) << "a handler ran twice";
    error = e;
    replies = std::move(r);
    done = true;
    changed.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 10s, [&] { return done; });
  }
};

TEST(RedisClient, AsyncPipelineHandsAllRepliesInOrderOnceAndAHandlerMaySendMore) {
  RedisServer server;
  auto options = options_for(server.url());
  options.io_threads = 3;
  Client client(options);
  AsyncOutcome first, second;
  client.async_pipeline({{"SET", "a", "1"}, {"INCR", "a"}, {"GET", "a"}, {"LPUSH", "a", "x"}},
                        [&](std::exception_ptr error, std::vector<Reply> replies) {
                          // From the lane's own thread: the next step of a two-step call (as a
                          // hold's).
                          client.async_pipeline({{"INCR", "a"}},
                                                [&](std::exception_ptr e, std::vector<Reply> r) {
                                                  second.set(e, std::move(r));
                                                });
                          first.set(error, std::move(replies));
                        });
  ASSERT_TRUE(first.wait());
  ASSERT_FALSE(first.error);
  ASSERT_EQ(first.replies.size(), 4u);
  EXPECT_EQ(first.replies[0].as_string(), "OK");
  EXPECT_EQ(first.replies[1].as_integer(), 2);
  EXPECT_EQ(first.replies[2].as_string(), "2");
  EXPECT_TRUE(first.replies[3].is_error()) << "WRONGTYPE is a reply, not a failure";
  ASSERT_TRUE(second.wait());
  ASSERT_FALSE(second.error);
  EXPECT_EQ(second.replies.at(0).as_integer(), 3);

  AsyncOutcome empty;
  client.async_pipeline({{"PING"}, {}}, [&](std::exception_ptr e, std::vector<Reply> r) {
    empty.set(e, std::move(r));
  });
  ASSERT_TRUE(empty.wait());
  EXPECT_TRUE(empty.error) << "an empty command fails the pipeline";
}

TEST(RedisClient, AsyncEvalFallsBackToEvalAfterScriptFlushAndAsyncCallsFailWhenTheServerIsGone) {
  RedisServer server;
  Client client(options_for(server.url()));
  const Script script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  const auto eval = [&](const std::string& by) {
    auto outcome = std::make_shared<AsyncOutcome>();
    client.async_eval(script, {"n"}, {by}, [outcome](std::exception_ptr e, Reply reply) {
      outcome->set(e, {std::move(reply)});
    });
    EXPECT_TRUE(outcome->wait());
    return outcome;
  };
  EXPECT_EQ(eval("5")->replies.at(0).as_integer(), 5);
  client.command({"SCRIPT", "FLUSH"});  // as after a restart: EVALSHA gets NOSCRIPT
  EXPECT_EQ(eval("2")->replies.at(0).as_integer(), 7);

  server.stop();
  const auto failed = eval("1");
  EXPECT_TRUE(failed->error);
  AsyncOutcome pipeline;
  client.async_pipeline({{"GET", "n"}}, [&](std::exception_ptr e, std::vector<Reply> r) {
    pipeline.set(e, std::move(r));
  });
  ASSERT_TRUE(pipeline.wait());
  EXPECT_TRUE(pipeline.error);
}

TEST(RedisClient, ACommandWithoutAReplyInTimeFailsWithStorageErrorAndTheClientRecovers) {
  RedisServer server;
  auto options = options_for(server.url());
  options.command_timeout = 300ms;
  Client client(options);
  ASSERT_TRUE(client.ping());

  std::thread sleeper([&] { server.command({"DEBUG", "SLEEP", "1.5"}); });
  // Make sure the server is asleep before the command goes out.
  std::this_thread::sleep_for(200ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(client.command({"GET", "key"}), StorageError);
  const Ms waited = elapsed_since(start);
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 1100ms) << "the timeout is 300 ms";
  sleeper.join();

  EXPECT_TRUE(eventually([&] { return client.ping(); }, 5000ms));
  EXPECT_EQ(client.command({"SET", "key", "v"}).as_string(), "OK");
}

TEST(RedisClient, AKilledServerFailsCommandsWithStorageErrorAndARestartedOneIsUsedAgain) {
  RedisServer server({.append_only = true, .password = {}, .tls = false});
  Client client(options_for(server.url()));
  ASSERT_EQ(client.command({"SET", "durable", "yes"}).as_string(), "OK");

  server.kill9();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(client.command({"GET", "durable"}), StorageError);
  EXPECT_THROW(client.command({"GET", "durable"}), StorageError);
  EXPECT_LT(elapsed_since(start), 1000ms) << "an unreachable server fails commands at once";
  EXPECT_FALSE(client.ping());

  server.restart(RedisServer::Data::keep);
  // The client reconnects by itself (backoff capped at 200 ms here).
  EXPECT_TRUE(eventually([&] { return client.ping(); }, 5000ms));
  EXPECT_EQ(client.command({"GET", "durable"}).as_string(), "yes");
}

TEST(RedisClient, AServerShutdownFailsCommandsInFlightAndQueuedOnesWaitForTheRestart) {
  RedisServer server;
  Client client(options_for(server.url()));
  ASSERT_TRUE(client.ping());
  server.stop();
  EXPECT_THROW(client.command({"PING"}), StorageError);
  server.restart(RedisServer::Data::empty);
  EXPECT_TRUE(eventually([&] { return client.ping(); }, 5000ms));
}

TEST(RedisClient, AuthWithTheRightPasswordWorksAndAWrongOneIsAStorageError) {
  RedisServer server({.append_only = false, .password = "s3cret", .tls = false});
  {
    Client client(options_for(server.url()));
    EXPECT_TRUE(client.ping());
    EXPECT_EQ(client.command({"SET", "a", "1"}).as_string(), "OK");
  }
  {
    auto options = options_for(server.url());
    options.url = "redis://default:s3cret@127.0.0.1:" + std::to_string(server.port());
    Client client(options);
    EXPECT_EQ(client.command({"GET", "a"}).as_string(), "1");
  }
  {
    auto options = options_for(server.url());
    options.url = "redis://:wrong@127.0.0.1:" + std::to_string(server.port());
    Client client(options);
    try {
      client.command({"GET", "a"});
      ADD_FAILURE() << "a wrong password must fail";
    } catch (const StorageError& e) {
      EXPECT_NE(std::string(e.what()).find("AUTH"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("wrong"), std::string::npos) << "password leaked";
    }
    EXPECT_FALSE(client.ping());
  }
  {
    // No password at all: the server's NOAUTH is an error reply like any other.
    auto options = options_for("redis://127.0.0.1:" + std::to_string(server.port()));
    Client client(options);
    const Reply reply = client.command({"GET", "a"});
    EXPECT_TRUE(reply.is_error());
    EXPECT_EQ(reply.str.rfind("NOAUTH", 0), 0u) << reply.str;
  }
}

TEST(RedisClient, TheDatabaseOfTheUrlIsSelected) {
  RedisServer server;
  Client db3(options_for(server.url(3)));
  Client db0(options_for(server.url()));
  db3.command({"SET", "where", "three"});
  EXPECT_EQ(db3.command({"GET", "where"}).as_string(), "three");
  EXPECT_TRUE(db0.command({"GET", "where"}).is_nil());
}

TEST(RedisClient, TooManyQueuedCommandsFailWithOverloadedInsteadOfQueueingWithoutBound) {
  RedisServer server;
  auto options = options_for(server.url());
  options.queued_commands_max = 4;
  options.command_timeout = 5000ms;
  Client client(options);
  ASSERT_TRUE(client.ping());

  std::thread sleeper([&] { server.command({"DEBUG", "SLEEP", "0.5"}); });
  std::this_thread::sleep_for(100ms);
  std::mutex mutex;
  std::condition_variable done;
  int finished = 0;
  int overloaded = 0;
  int answered = 0;
  constexpr int kCommands = 20;
  for (int i = 0; i < kCommands; ++i) {
    client.async_command({"PING"}, [&](std::exception_ptr error, Reply) {
      std::lock_guard lock(mutex);
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const StorageError& e) {
          if (std::string(e.what()).find("overloaded") != std::string::npos) ++overloaded;
        }
      } else {
        ++answered;
      }
      ++finished;
      done.notify_one();
    });
  }
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(done.wait_for(lock, 10s, [&] { return finished == kCommands; }));
  }
  sleeper.join();
  EXPECT_EQ(answered, 4);
  EXPECT_EQ(overloaded, kCommands - 4);
}

TEST(RedisClient, ABadUrlIsAStorageErrorNamingTheProblem) {
  for (const std::string url :
       {"http://127.0.0.1:6379", "redis://127.0.0.1:99999", "redis://127.0.0.1:6379/x",
        "redis://a:1,b:2", "redis://user@127.0.0.1", "redis://127.0.0.1?color=blue",
        "redis+cluster://127.0.0.1:1/2", "redis://"}) {
    ClientOptions options;
    options.url = url;
    EXPECT_THROW(Client client(options), StorageError) << url;
  }
  try {
    ClientOptions options;
    options.url = "redis://:topsecret@127.0.0.1:0";
    Client client(options);
    ADD_FAILURE();
  } catch (const StorageError& e) {
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
  }
}

TEST(RedisClient, NothingListeningIsAStorageError) {
  ClientOptions options = options_for("redis://127.0.0.1:" + std::to_string(testing::free_port()));
  Client client(options);
  EXPECT_THROW(client.command({"PING"}), StorageError);
  EXPECT_FALSE(client.ping());
}

TEST(RedisClient, DestroyingTheClientFailsWhatIsPendingInsteadOfHanging) {
  RedisServer server;
  std::atomic<int> called{0};
  std::thread sleeper([&] { server.command({"DEBUG", "SLEEP", "0.5"}); });
  std::this_thread::sleep_for(100ms);
  {
    Client client(options_for(server.url()));
    for (int i = 0; i < 10; ++i) {
      client.async_command({"PING"}, [&](std::exception_ptr, Reply) { ++called; });
    }
  }
  EXPECT_EQ(called.load(), 10);
  sleeper.join();
}

TEST(RedisClient, TlsWithTheServersCertificate) {
  RedisServer server({.append_only = false, .password = {}, .tls = true});
  {
    Client client(options_for(server.url()));
    EXPECT_EQ(client.command({"SET", "secure", "yes"}).as_string(), "OK");
    EXPECT_EQ(client.command({"GET", "secure"}).as_string(), "yes");
    EXPECT_TRUE(client.ping());
  }
  const std::string base = "rediss://127.0.0.1:" + std::to_string(server.tls_port());
  {
    // A certificate nobody vouches for is refused...
    Client client(options_for(base));
    EXPECT_THROW(client.command({"PING"}), StorageError);
  }
  {
    // ...unless verification is off.
    Client client(options_for(base + "?insecure=1"));
    EXPECT_EQ(client.command({"GET", "secure"}).as_string(), "yes");
  }
  {
    // Plain RESP to the TLS port gets nothing usable back.
    auto options = options_for("redis://127.0.0.1:" + std::to_string(server.tls_port()));
    options.command_timeout = 300ms;
    Client client(options);
    EXPECT_THROW(client.command({"PING"}), StorageError);
  }
}

// --- Redis Cluster -----------------------------------------------------------------------------

class RedisClusterClient : public ::testing::Test {
 protected:
  void SetUp() override { cluster().flush_all(); }
  static RedisCluster& cluster() { return RedisCluster::shared(); }

  // A key whose slot node `node` serves.
  static std::string key_on_node(size_t node, const std::string& prefix = "key") {
    for (int i = 0;; ++i) {
      std::string key = prefix + std::to_string(i);
      if (cluster().node_of_slot(key_slot(key)) == node) return key;
    }
  }
};

TEST_F(RedisClusterClient, KeysSpreadOverAllThreeMastersAreWrittenAndRead) {
  Client client(options_for(cluster().url()));
  EXPECT_TRUE(client.cluster());
  EXPECT_TRUE(client.ping());

  constexpr int kKeys = 300;
  std::vector<std::vector<std::string>> sets;
  for (int i = 0; i < kKeys; ++i)
    sets.push_back({"SET", "k" + std::to_string(i), std::to_string(i)});
  for (const Reply& reply : client.pipeline(sets)) EXPECT_EQ(reply.str, "OK") << reply.str;
  for (int i = 0; i < kKeys; i += 7) {
    EXPECT_EQ(client.command({"GET", "k" + std::to_string(i)}).as_string(), std::to_string(i));
  }
  for (size_t node = 0; node < RedisCluster::kNodes; ++node) {
    EXPECT_GT(cluster().command(node, {"DBSIZE"}).integer, 50) << "node " << node;
  }
  const auto sizes = client.on_every_master({"DBSIZE"});
  ASSERT_EQ(sizes.size(), RedisCluster::kNodes);
  int64_t total = 0;
  for (const Reply& size : sizes) total += size.as_integer();
  EXPECT_EQ(total, kKeys);
}

TEST_F(RedisClusterClient, KeySlotAgreesWithTheServer) {
  for (const std::string key : {"foo", "hello", "", "{user1000}.following", "foo{}{bar}",
                                "foo{{bar}}zap", "{unclosed", "seat:{ev42}:A-12", "\xff\x01"}) {
    EXPECT_EQ(key_slot(key), cluster().command(0, {"CLUSTER", "KEYSLOT", key}).integer) << key;
  }
}

TEST_F(RedisClusterClient, EvalWithHashTaggedKeysRunsOnTheirNode) {
  Client client(options_for(cluster().url()));
  const Script script(
      "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); "
      "return redis.call('MGET', KEYS[1], KEYS[2])");
  for (const std::string tag : {"{user1000}", "{event7}", "{x}"}) {
    const Reply reply = client.eval(script, {tag + ".a", tag + ".b"}, {"v" + tag});
    ASSERT_EQ(reply.type, Reply::Type::array) << reply.str;
    EXPECT_EQ(reply.elements[1].as_string(), "v" + tag);
  }
  // After SCRIPT FLUSH on every node the NOSCRIPT fallback works on whichever node it hits.
  client.on_every_master({"SCRIPT", "FLUSH"});
  EXPECT_EQ(client.eval(script, {"{user1000}.a", "{user1000}.b"}, {"again"}).elements[0].str,
            "again");
  // Keys of different slots: the server's CROSSSLOT error comes back as a reply.
  EXPECT_TRUE(client.eval(script, {"a", "b"}, {"v"}).is_error());
}

TEST_F(RedisClusterClient, AMovedSlotIsFollowedAndTheSlotMapRefreshed) {
  Client client(options_for(cluster().url()));
  const std::string key = key_on_node(0);
  ASSERT_EQ(client.command({"SET", key, "before"}).as_string(), "OK");

  const uint16_t slot = key_slot(key);
  cluster().move_slot(slot, 1);
  ASSERT_EQ(cluster().node_of_slot(slot), 1u);
  // The client still thinks node 0 has it: node 0 answers MOVED, the client follows.
  EXPECT_EQ(client.command({"GET", key}).as_string(), "before");
  EXPECT_EQ(client.command({"SET", key, "after"}).as_string(), "OK");
  EXPECT_EQ(cluster().command(1, {"GET", key}).str, "after");
  // Other threads' connections (another lane) learn it too.
  std::thread other([&] { EXPECT_EQ(client.command({"GET", key}).str, "after"); });
  other.join();
}

TEST_F(RedisClusterClient, AskDuringAMigrationIsFollowedWithAsking) {
  Client client(options_for(cluster().url()));
  const std::string moved_key = "{mig}moved";
  const std::string tag_key = "{mig}stays";
  const uint16_t slot = key_slot("mig");
  const size_t from = cluster().node_of_slot(slot);
  const size_t to = (from + 1) % RedisCluster::kNodes;
  ASSERT_EQ(client.command({"SET", moved_key, "1"}).as_string(), "OK");
  ASSERT_EQ(client.command({"SET", tag_key, "2"}).as_string(), "OK");

  cluster().begin_slot_move(slot, to);
  cluster().migrate_slot_keys(slot, to);
  // The keys are on `to` now but the slot still belongs to `from`: `from` answers ASK.
  EXPECT_EQ(cluster().command(from, {"GET", moved_key}).str.rfind("ASK", 0), 0u);
  EXPECT_EQ(client.command({"GET", moved_key}).as_string(), "1");
  EXPECT_EQ(client.command({"INCR", tag_key}).as_integer(), 3);
  // A new key of the migrating slot goes to the importing node.
  EXPECT_EQ(client.command({"SET", "{mig}new", "n"}).as_string(), "OK");

  cluster().finish_slot_move(slot, to);
  EXPECT_EQ(client.command({"GET", "{mig}new"}).as_string(), "n");
  EXPECT_EQ(client.command({"GET", tag_key}).as_string(), "3");
}

TEST_F(RedisClusterClient, RedirectsAreBounded) {
  auto options = options_for(cluster().url());
  options.redirects_max = 0;
  Client client(options);
  const std::string key = key_on_node(0, "bounded");
  ASSERT_EQ(client.command({"SET", key, "x"}).as_string(), "OK");
  cluster().move_slot(key_slot(key), 2);
  // With no redirect allowed, the MOVED is a StorageError; the refreshed map serves the next.
  EXPECT_THROW(client.command({"GET", key}), StorageError);
  EXPECT_TRUE(eventually([&] {
    try {
      return client.command({"GET", key}).str == "x";
    } catch (const StorageError&) {
      return false;
    }
  }));
}

TEST_F(RedisClusterClient, ConcurrentCommandsOverAllNodes) {
  auto options = options_for(cluster().url());
  options.io_threads = 2;
  options.command_timeout = 10'000ms;
  Client client(options);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const std::string key = "c" + std::to_string(t) + "-" + std::to_string(i);
        const auto replies = client.pipeline({{"SET", key, key}, {"GET", key}});
        if (replies[1].str != key) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(RedisClusterClientSeeds, AnUnreachableClusterIsAStorageError) {
  ClientOptions options =
      options_for("redis+cluster://127.0.0.1:" + std::to_string(testing::free_port()));
  Client client(options);
  EXPECT_THROW(client.command({"GET", "x"}), StorageError);
  EXPECT_FALSE(client.ping());
  EXPECT_THROW(client.on_every_master({"PING"}), StorageError);
}

}  // namespace
}  // namespace boxoffice::redis

#include "support/redis_server.h"

#include <hiredis/hiredis.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/free_port.h"

namespace boxoffice::testing {
namespace {

namespace fs = std::filesystem;

constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr auto kClusterCreateTimeout = std::chrono::seconds(60);
constexpr auto kClusterConsistentTimeout = std::chrono::seconds(30);
constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);
constexpr auto kAdminTimeout = std::chrono::seconds(10);
// Another process may take the free port before redis-server binds it.
constexpr int kStartAttemptsMax = 3;
constexpr size_t kSlotCount = 16384;
constexpr int kMigrateBatchKeys = 100;

redis::Reply to_reply(const redisReply& raw) {
  redis::Reply reply;
  switch (raw.type) {
    case REDIS_REPLY_STRING:
      reply.type = redis::Reply::Type::string;
      reply.str.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = redis::Reply::Type::status;
      reply.str.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = redis::Reply::Type::error;
      reply.str.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = redis::Reply::Type::integer;
      reply.integer = raw.integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = redis::Reply::Type::array;
      for (size_t i = 0; i < raw.elements; ++i) reply.elements.push_back(to_reply(*raw.element[i]));
      break;
    default:
      break;
  }
  return reply;
}

redis::Reply checked(uint16_t port, const std::vector<std::string>& args,
                     const std::string& password = {}) {
  redis::Reply reply = redis_admin_command(port, args, password);
  if (reply.is_error()) {
    std::string command;
    for (const auto& arg : args) command += arg + " ";
    throw std::runtime_error("redis :" + std::to_string(port) + " " + command + "-> " + reply.str);
  }
  return reply;
}

// PING answered (with the password when there is one): the server is ready.
bool answers_ping(uint16_t port, const std::string& password) {
  try {
    const redis::Reply reply = redis_admin_command(port, {"PING"}, password);
    return reply.type == redis::Reply::Type::status && reply.str == "PONG";
  } catch (const std::runtime_error&) {
    return false;
  }
}

void run_or_throw(std::vector<std::string> argv, const fs::path& log,
                  std::chrono::seconds timeout) {
  const std::string what = argv.front();
  ChildProcess process(std::move(argv), {}, log);
  const auto code = process.wait_exit(timeout);
  if (code != 0) throw std::runtime_error(what + " failed: " + process.log());
}

}  // namespace

redis::Reply redis_admin_command(uint16_t port, const std::vector<std::string>& args,
                                 const std::string& password) {
  const timeval timeout{static_cast<time_t>(kAdminTimeout.count()), 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, timeout);
  if (context == nullptr) throw std::runtime_error("redis: out of memory");
  std::unique_ptr<redisContext, void (*)(redisContext*)> owner(context, redisFree);
  if (context->err != 0) {
    throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port) + ": " + context->errstr);
  }
  redisSetTimeout(context, timeout);
  auto run = [&](const std::vector<std::string>& command) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& arg : command) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    void* raw =
        redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data());
    if (raw == nullptr) {
      throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port) + ": " + context->errstr);
    }
    redis::Reply reply = to_reply(*static_cast<redisReply*>(raw));
    freeReplyObject(raw);
    return reply;
  };
  if (!password.empty()) {
    const redis::Reply auth = run({"AUTH", password});
    if (auth.is_error()) return auth;
  }
  return run(args);
}

// --- RedisServer -------------------------------------------------------------------------------

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {
  if (options_.tls) {
    const fs::path dir = dir_.path();
    run_or_throw({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                  "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                  (dir / "server.key").string(), "-out", (dir / "server.crt").string()},
                 dir / "openssl.log", std::chrono::seconds(60));
  }
  start(true);
}

RedisServer::~RedisServer() {
  if (process_ != nullptr && process_->running()) {
    process_->kill(SIGTERM);
    (void)process_->wait_exit(kStopTimeout);
  }
  process_.reset();  // SIGKILLs what is left
}

std::vector<std::string> RedisServer::argv() const {
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_.path().string(),
                                   "--save",
                                   "",
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   "",
                                   "--enable-debug-command",
                                   "local"};
  if (options_.append_only) {
    argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", "always"});
  } else {
    argv.insert(argv.end(), {"--appendonly", "no"});
  }
  if (!options_.password.empty()) argv.insert(argv.end(), {"--requirepass", options_.password});
  if (options_.tls) {
    const fs::path dir = dir_.path();
    argv.insert(argv.end(),
                {"--tls-port", std::to_string(tls_port_), "--tls-cert-file",
                 (dir / "server.crt").string(), "--tls-key-file", (dir / "server.key").string(),
                 "--tls-ca-cert-file", (dir / "server.crt").string(), "--tls-auth-clients", "no"});
  }
  return argv;
}

void RedisServer::start(bool pick_ports) {
  for (int attempt = 1; attempt <= kStartAttemptsMax; ++attempt) {
    if (pick_ports) {
      port_ = free_port();
      if (options_.tls) tls_port_ = free_port();
    }
    process_ = std::make_unique<ChildProcess>(argv(), std::vector<std::string>{},
                                              dir_.path() / "redis.log");
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline && process_->running()) {
      if (answers_ping(port_, options_.password)) return;
      std::this_thread::sleep_for(kReadyPollInterval);
    }
    process_.reset();
    // A restart must keep its port; only a first start may try another.
    if (!pick_ports) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  throw std::runtime_error("redis-server did not start: " + log());
}

std::string RedisServer::url(int db) const {
  std::string url = options_.tls ? "rediss://" : "redis://";
  if (!options_.password.empty()) url += ":" + options_.password + "@";
  url += "127.0.0.1:" + std::to_string(options_.tls ? tls_port_ : port_);
  if (db != 0) url += "/" + std::to_string(db);
  if (options_.tls) url += "?ca=" + (dir_.path() / "server.crt").string();
  return url;
}

void RedisServer::stop() {
  if (process_ == nullptr || !process_->running()) return;
  try {
    (void)redis_admin_command(port_, {"SHUTDOWN", "NOSAVE"}, options_.password);
  } catch (const std::runtime_error&) {
    // SHUTDOWN closes the connection without a reply: that is the expected outcome.
  }
  if (!process_->wait_exit(kStopTimeout)) process_->kill(SIGKILL);
  (void)process_->wait_exit(kStopTimeout);
}

void RedisServer::kill9() {
  if (process_ == nullptr) return;
  process_->kill(SIGKILL);
  (void)process_->wait_exit(kStopTimeout);
}

void RedisServer::restart(Data data) {
  if (process_ != nullptr && process_->running()) {
    if (data == Data::keep && !options_.append_only) {
      try {
        (void)redis_admin_command(port_, {"SHUTDOWN", "SAVE"}, options_.password);
      } catch (const std::runtime_error&) {
      }
      (void)process_->wait_exit(kStopTimeout);
    }
    stop();
  }
  if (data == Data::empty) {
    std::error_code ignored;
    fs::remove(dir_.path() / "dump.rdb", ignored);
    fs::remove(dir_.path() / "appendonly.aof", ignored);
    fs::remove_all(dir_.path() / "appendonlydir", ignored);
  }
  start(false);
}

bool RedisServer::running() { return process_ != nullptr && process_->running(); }

redis::Reply RedisServer::command(const std::vector<std::string>& args) const {
  return redis_admin_command(port_, args, options_.password);
}

std::string RedisServer::log() const { return process_ != nullptr ? process_->log() : ""; }

// --- RedisCluster ------------------------------------------------------------------------------

RedisCluster::RedisCluster() {
  for (size_t i = 0; i < kNodes; ++i) {
    const fs::path dir = dir_.path() / ("node" + std::to_string(i));
    fs::create_directories(dir);
    bool started = false;
    for (int attempt = 1; attempt <= kStartAttemptsMax && !started; ++attempt) {
      const uint16_t port = free_port();
      auto node = std::make_unique<ChildProcess>(std::vector<std::string>{"redis-server",
                                                                          "--port",
                                                                          std::to_string(port),
                                                                          "--bind",
                                                                          "127.0.0.1",
                                                                          "--dir",
                                                                          dir.string(),
                                                                          "--save",
                                                                          "",
                                                                          "--appendonly",
                                                                          "no",
                                                                          "--daemonize",
                                                                          "no",
                                                                          "--logfile",
                                                                          "",
                                                                          "--cluster-enabled",
                                                                          "yes",
                                                                          "--cluster-config-file",
                                                                          "nodes.conf",
                                                                          "--cluster-node-timeout",
                                                                          "5000",
                                                                          "--enable-debug-command",
                                                                          "local"},
                                                 std::vector<std::string>{}, dir / "redis.log");
      const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
      while (std::chrono::steady_clock::now() < deadline && node->running()) {
        if (answers_ping(port, {})) {
          started = true;
          break;
        }
        std::this_thread::sleep_for(kReadyPollInterval);
      }
      if (started) {
        ports_.push_back(port);
        nodes_.push_back(std::move(node));
      }
    }
    if (!started) throw std::runtime_error("redis cluster node did not start: " + log());
  }
  std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
  for (const uint16_t port : ports_) create.push_back("127.0.0.1:" + std::to_string(port));
  create.insert(create.end(), {"--cluster-replicas", "0", "--cluster-yes"});
  run_or_throw(create, dir_.path() / "create.log", kClusterCreateTimeout);
  wait_until_consistent();
  initial_owner_.assign(kSlotCount, 0);
  for (size_t slot = 0; slot < kSlotCount; ++slot) {
    initial_owner_[slot] = node_of_slot(static_cast<uint16_t>(slot));
  }
}

RedisCluster::~RedisCluster() {
  for (auto& node : nodes_) {
    if (node->running()) node->kill(SIGTERM);
  }
  for (auto& node : nodes_) (void)node->wait_exit(kStopTimeout);
  nodes_.clear();  // SIGKILLs what is left
}

RedisCluster& RedisCluster::shared() {
  static RedisCluster cluster;
  return cluster;
}

std::string RedisCluster::url() const {
  std::string url = "redis+cluster://";
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (i > 0) url += ",";
    url += "127.0.0.1:" + std::to_string(ports_[i]);
  }
  return url;
}

redis::Reply RedisCluster::command(size_t index, const std::vector<std::string>& args) const {
  return redis_admin_command(ports_.at(index), args);
}

std::string RedisCluster::node_id(size_t index) const {
  return checked(ports_.at(index), {"CLUSTER", "MYID"}).str;
}

size_t RedisCluster::node_of_slot(uint16_t slot) const {
  const redis::Reply slots = checked(ports_.front(), {"CLUSTER", "SLOTS"});
  for (const auto& range : slots.elements) {
    if (range.elements.size() < 3) continue;
    if (slot < range.elements[0].integer || slot > range.elements[1].integer) continue;
    const auto port = static_cast<uint16_t>(range.elements[2].elements.at(1).integer);
    const auto it = std::find(ports_.begin(), ports_.end(), port);
    if (it == ports_.end()) break;
    return static_cast<size_t>(it - ports_.begin());
  }
  throw std::runtime_error("redis cluster: no node serves slot " + std::to_string(slot));
}

void RedisCluster::begin_slot_move(uint16_t slot, size_t to) {
  const size_t from = node_of_slot(slot);
  if (from == to) return;
  moved_slots_.push_back(slot);
  const std::string number = std::to_string(slot);
  checked(ports_.at(to), {"CLUSTER", "SETSLOT", number, "IMPORTING", node_id(from)});
  checked(ports_.at(from), {"CLUSTER", "SETSLOT", number, "MIGRATING", node_id(to)});
}

void RedisCluster::migrate_slot_keys(uint16_t slot, size_t to) {
  const size_t from = node_of_slot(slot);
  if (from == to) return;
  for (;;) {
    const redis::Reply keys = checked(
        ports_.at(from),
        {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), std::to_string(kMigrateBatchKeys)});
    if (keys.elements.empty()) return;
    std::vector<std::string> migrate = {
        "MIGRATE", "127.0.0.1", std::to_string(ports_.at(to)), "", "0", "5000", "KEYS"};
    for (const auto& key : keys.elements) migrate.push_back(key.str);
    checked(ports_.at(from), migrate);
  }
}

void RedisCluster::finish_slot_move(uint16_t slot, size_t to) {
  const std::string id = node_id(to);
  const std::string number = std::to_string(slot);
  // The new owner first (it bumps its epoch), then the old one, then the rest.
  checked(ports_.at(to), {"CLUSTER", "SETSLOT", number, "NODE", id});
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (i != to) checked(ports_[i], {"CLUSTER", "SETSLOT", number, "NODE", id});
  }
  wait_until_consistent();
}

void RedisCluster::move_slot(uint16_t slot, size_t to) {
  if (node_of_slot(slot) == to) return;
  begin_slot_move(slot, to);
  migrate_slot_keys(slot, to);
  finish_slot_move(slot, to);
}

void RedisCluster::flush_all() {
  for (const uint16_t port : ports_) checked(port, {"FLUSHALL"});
  const std::set<uint16_t> moved(moved_slots_.begin(), moved_slots_.end());
  moved_slots_.clear();
  for (const uint16_t slot : moved) {
    for (const uint16_t port : ports_) {
      checked(port, {"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"});
    }
    const size_t owner = initial_owner_.at(slot);
    if (node_of_slot(slot) != owner) finish_slot_move(slot, owner);
  }
  wait_until_consistent();
  moved_slots_.clear();
}

void RedisCluster::wait_until_consistent() const {
  // Every node says cluster_state:ok and every node gives the same slot map.
  const auto deadline = std::chrono::steady_clock::now() + kClusterConsistentTimeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    bool ok = true;
    std::vector<std::string> maps;
    for (const uint16_t port : ports_) {
      try {
        const redis::Reply info = redis_admin_command(port, {"CLUSTER", "INFO"});
        if (info.str.find("cluster_state:ok") == std::string::npos) {
          ok = false;
          last = "cluster_state not ok on :" + std::to_string(port);
          break;
        }
        const redis::Reply slots = redis_admin_command(port, {"CLUSTER", "SLOTS"});
        std::vector<std::string> ranges;
        for (const auto& range : slots.elements) {
          if (range.elements.size() < 3) continue;
          ranges.push_back(std::to_string(range.elements[0].integer) + "-" +
                           std::to_string(range.elements[1].integer) + ":" +
                           std::to_string(range.elements[2].elements.at(1).integer));
        }
        std::sort(ranges.begin(), ranges.end());
        std::string map;
        for (const auto& r : ranges) map += r + " ";
        maps.push_back(map);
      } catch (const std::exception& e) {
        ok = false;
        last = e.what();
        break;
      }
    }
    if (ok && std::all_of(maps.begin(), maps.end(), [&](const auto& m) { return m == maps[0]; })) {
      return;
    }
    if (ok) last = "the nodes disagree on the slot map";
    std::this_thread::sleep_for(kReadyPollInterval * 5);
  }
  throw std::runtime_error("redis cluster not consistent: " + last + "\n" + log());
}

std::string RedisCluster::log() const {
  std::string text;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    text += "--- node " + std::to_string(i) + "\n" + nodes_[i]->log();
  }
  return text;
}

}  // namespace boxoffice::testing

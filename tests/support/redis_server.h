#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "adapters/redis/redis_client.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {

/// Runs one command on 127.0.0.1:`port` over a connection of its own (hiredis, blocking), for
/// tests that look under the client or play another one. Throws std::runtime_error when the
/// server cannot be reached; an error reply comes back as a Reply of type error.
redis::Reply redis_admin_command(uint16_t port, const std::vector<std::string>& args,
                                 const std::string& password = {});

struct RedisServerOptions {
  /// `--appendonly yes --appendfsync always`: every acknowledged write survives kill -9.
  bool append_only = false;
  /// `--requirepass`: the URL carries it.
  std::string password;
  /// Also listen with TLS (a self-signed certificate for 127.0.0.1 made in the directory); url()
  /// is then rediss://...?ca=<that certificate>. The plain port stays open for admin commands.
  bool tls = false;
};

/// A real redis-server for tests, on a free port of 127.0.0.1, with its files in a fresh
/// temporary directory. It runs in the foreground as our ChildProcess, so a crashed test run
/// leaves no server behind; DEBUG is enabled (for DEBUG SLEEP). Not thread-safe.
class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// The plain (non-TLS) port.
  uint16_t port() const { return port_; }
  uint16_t tls_port() const { return tls_port_; }
  /// redis://[:password@]127.0.0.1:<port>[/db], or rediss://...:<tls_port>?ca=... with tls.
  std::string url(int db = 0) const;
  const std::filesystem::path& dir() const { return dir_.path(); }

  /// SHUTDOWN (NOSAVE) and waits for the process to end.
  void stop();
  /// SIGKILL: no chance to write anything more.
  void kill9();
  enum class Data { keep, empty };
  /// Stops the server if it runs, then starts it again on the same port(s). `keep`: what it had
  /// written to its directory (AOF, or an RDB saved at shutdown) is loaded again; `empty`: its
  /// files are removed first.
  void restart(Data data = Data::keep);
  bool running();

  /// redis_admin_command on this server's plain port, with its password.
  redis::Reply command(const std::vector<std::string>& args) const;

  /// What the server logged so far, for failure messages.
  std::string log() const;

 private:
  void start(bool pick_ports);
  std::vector<std::string> argv() const;

  RedisServerOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t tls_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

/// A Redis Cluster of three masters (no replicas) on 127.0.0.1, each node in its own directory
/// and port, created with `redis-cli --cluster create`. Not thread-safe.
class RedisCluster {
 public:
  static constexpr size_t kNodes = 3;

  RedisCluster();
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  /// The cluster shared by every test of this executable, started on first use (from the main
  /// thread: the servers live as long as the thread that started them) and stopped at exit.
  static RedisCluster& shared();

  /// "redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3".
  std::string url() const;
  const std::vector<uint16_t>& ports() const { return ports_; }

  /// FLUSHALL on every master, and puts every slot back on the node it started on (a test that
  /// moved slots leaves the next one a cluster as created).
  void flush_all();

  /// redis_admin_command on node `index`.
  redis::Reply command(size_t index, const std::vector<std::string>& args) const;
  /// The node index serving `slot`, as node 0 sees it.
  size_t node_of_slot(uint16_t slot) const;
  /// CLUSTER MYID of node `index`.
  std::string node_id(size_t index) const;
  /// Moves `slot` (and its keys) from its node to node `to`, the way `redis-cli --cluster
  /// reshard` does, in three steps a test may separate (to see ASK between the first and last):
  /// SETSLOT IMPORTING on `to` and MIGRATING on the owner; MIGRATE of the keys still on the
  /// owner; SETSLOT NODE on every node.
  void move_slot(uint16_t slot, size_t to);
  void begin_slot_move(uint16_t slot, size_t to);
  void migrate_slot_keys(uint16_t slot, size_t to);
  void finish_slot_move(uint16_t slot, size_t to);

  /// What the nodes logged, for failure messages.
  std::string log() const;

 private:
  void wait_until_consistent() const;

  TempDir dir_;
  std::vector<uint16_t> ports_;
  std::vector<std::unique_ptr<ChildProcess>> nodes_;
  std::vector<size_t> initial_owner_;  // per slot: the node serving it as created
  std::vector<uint16_t> moved_slots_;  // slots a test began to move, put back by flush_all
};

}  // namespace boxoffice::testing

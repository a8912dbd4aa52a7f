#pragma once
// Our Redis client: asynchronous on Asio, used by the Redis adapters (seat locks, waitlist).
//
// The transport is ours (Asio sockets, optional TLS); hiredis is used only for its RESP reply
// reader and its command formatter. One connection per I/O thread (per node in Cluster mode);
// commands issued concurrently from many threads are pipelined automatically: whatever is queued
// while a write is in flight goes out in the next single write. Replies are matched in order.
//
// URLs:
//   redis://[user:password@]host:port[/db]      one server
//   rediss://...                                 the same over TLS (server certificate verified
//                                                unless ?insecure=1; ?ca=/path/ca.pem)
//   redis+cluster://host:port[,host:port...]     Redis Cluster, seeded from these nodes; the slot
//                                                map comes from CLUSTER SLOTS, MOVED refreshes it,
//                                                ASK is followed with ASKING once. rediss+cluster
//                                                for TLS.
// A password given in the URL is sent with AUTH on every (re)connection.
//
// Failures: a connection that breaks fails the commands in flight on it and is re-established
// in the background with exponential backoff; a command that gets no reply within the command
// timeout fails. Both throw StorageError from the blocking calls (the caller's request becomes
// 503); nothing is retried silently, since a write may or may not have been applied. An error
// *reply* from Redis (WRONGTYPE, a script's error_reply...) is not an exception: it comes back as
// a Reply of type error for the caller to judge.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.h"

namespace boxoffice::redis {

/// One RESP2 reply.
struct Reply {
  enum class Type { string, status, error, integer, nil, array };
  Type type = Type::nil;
  std::string str;  // string, status and error replies
  int64_t integer = 0;
  std::vector<Reply> elements;  // array replies

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
  /// The integer of an integer reply; throws StorageError for any other type.
  int64_t as_integer() const;
  /// The text of a string or status reply; throws StorageError for any other type.
  const std::string& as_string() const;
};

/// A Lua script, its SHA1 computed once. Client::eval sends EVALSHA and, on NOSCRIPT (a server
/// that restarted or a node that never saw it), sends EVAL with the body once.
class Script {
 public:
  explicit Script(std::string body);
  const std::string& body() const { return body_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string body_;
  std::string sha1_;
};

struct ClientOptions {
  std::string url = "redis://127.0.0.1:6379";
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
  /// I/O threads, each with its own connection to each node. 0: one per core, at most 4.
  size_t io_threads = 1;
  /// Reconnect backoff: starts here, doubles per failed attempt, capped at backoff_max.
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  /// Commands queued or in flight on one connection at most; beyond it a command fails at once
  /// with StorageError ("overloaded") instead of growing the queue without bound.
  size_t queued_commands_max = 16384;
  /// MOVED/ASK redirections followed for one command before it fails with StorageError.
  int redirects_max = 5;
};

/// Thread-safe. Construction parses the URL (throws StorageError naming what is wrong with it)
/// and starts the I/O threads; connections are made on first use and re-made after failures.
class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  using Handler = std::function<void(std::exception_ptr error, Reply reply)>;

  /// Sends one command; `handler` runs on an I/O thread with the reply, or with a StorageError
  /// (connection failed, timeout). In Cluster mode the command goes to the node owning its key:
  /// args[1], or for EVAL/EVALSHA the first key (args[3]) when numkeys > 0; any node otherwise.
  /// The async commands of one calling thread go out in the order they were issued. `handler`
  /// must not block: calling the blocking forms from it throws StorageError (it would wait for
  /// the very thread it blocks); an exception it throws is swallowed.
  void async_command(std::vector<std::string> args, Handler handler);

  using PipelineHandler = std::function<void(std::exception_ptr error, std::vector<Reply> replies)>;
  /// Several commands sent together (one write per node); `handler` runs once, on an I/O thread,
  /// with every reply in order, or with the first failure (then `replies` is empty). Routed as
  /// async_command routes each command. A handler that issues more commands sends them from the
  /// same I/O thread: they go out without a hand-over to another thread.
  void async_pipeline(std::vector<std::vector<std::string>> commands, PipelineHandler handler);

  /// EVALSHA, and on NOSCRIPT the body once (as eval()), without blocking. `script` must outlive
  /// the call.
  void async_eval(const Script& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args, Handler handler);

  /// Blocking forms, for callers on worker threads (the ports are synchronous). They throw
  /// StorageError on a failed connection or a timeout.
  Reply command(std::vector<std::string> args);
  /// Several commands sent together; replies in the same order. In Cluster mode each command is
  /// routed on its own (so they may go to different nodes).
  std::vector<Reply> pipeline(std::vector<std::vector<std::string>> commands);
  /// EVALSHA with the NOSCRIPT fallback. All `keys` must hash to one slot in Cluster mode.
  Reply eval(const Script& script, const std::vector<std::string>& keys,
             const std::vector<std::string>& args);

  /// Whether every node answers PING now (readiness).
  bool ping();
  /// True for a redis+cluster:// URL.
  bool cluster() const;
  /// Runs `args` on every master (Cluster) or the one server: FLUSHALL in tests, SCRIPT LOAD.
  std::vector<Reply> on_every_master(std::vector<std::string> args);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The Cluster hash slot of a key (CRC16 of the key, or of its {hash tag}, mod 16384).
uint16_t key_slot(std::string_view key);

}  // namespace boxoffice::redis

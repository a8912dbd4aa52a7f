#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "support/child_process.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {

/// A real PostgreSQL server for tests: `initdb` in a fresh temporary directory, then `postgres`
/// on a free port of 127.0.0.1 (its Unix socket in that directory too). As root (CI), both run
/// as the `postgres` user, since initdb refuses root. Durability is traded for speed
/// (fsync=off) unless Options::fsync asks for a server that flushes like a production one.
///
/// The postmaster runs in the foreground as our ChildProcess rather than daemonized by
/// `pg_ctl start`, so a test run that crashes cannot leave a server behind (the child gets
/// SIGKILL when the thread that started it dies). It is stopped as `pg_ctl stop -m immediate`
/// does (SIGQUIT to the postmaster), and the directory is removed with it. Not thread-safe.
class PostgresServer {
 public:
  struct Options {
    /// Every commit waits for its WAL to reach the disk (fsync, synchronous_commit and
    /// full_page_writes on): for measuring what durability costs. Off: a test server never
    /// outlives a power cut.
    bool fsync = false;
  };

  PostgresServer();
  explicit PostgresServer(Options options);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// The server shared by every test of this executable, started on first use (from the main
  /// thread: the server lives as long as the thread that started it) and stopped at exit.
  static PostgresServer& shared();

  uint16_t port() const { return port_; }
  /// "postgresql://postgres@127.0.0.1:<port>/<database>".
  std::string url(const std::string& database = "postgres") const;

  /// A new, empty database with a name unique on this server; returns its name.
  std::string create_database();
  /// Drops it, disconnecting whoever is still connected.
  void drop_database(const std::string& database);

  struct SqlOutcome {
    std::string sqlstate;  // empty when the statement succeeded
    std::string value;     // the first column of the first row ("" when there is none)
  };
  /// Runs one SQL command on `database` over a connection of its own: for tests that look
  /// under a store or play another client.
  SqlOutcome execute(const std::string& database, const std::string& sql) const;

  /// What the server logged so far, for failure messages.
  std::string log() const;

  /// Stops the server as a crash would (immediate shutdown: clients are cut off, the WAL is
  /// replayed at the next start) and waits for it to exit.
  void crash();
  /// Starts it again after crash(), on the same port and data directory.
  void start_again();
  bool running() const;

 private:
  /// On a free port, or on the current one when `keep_port`.
  void start(bool keep_port = false);

  Options options_;
  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> postmaster_;
  int databases_created_ = 0;
};

}  // namespace boxoffice::testing

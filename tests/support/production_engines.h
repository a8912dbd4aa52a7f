#pragma once
// The production engines of one boxoffice deployment — Redis, PostgreSQL and NATS JetStream —
// started for real on loopback, in temporary directories, and stopped with this object. Used by
// the integration tests (ServerProcess in production mode), by `scripts/engines` (through the
// `boxoffice-engines` tool) and by the benchmarks, so all three start engines the same way.

#include <memory>
#include <string>
#include <vector>

#include "support/nats_server.h"
#include "support/postgres_server.h"
#include "support/redis_server.h"

namespace boxoffice::testing {

struct ProductionEnginesOptions {
  /// Redis with `appendfsync always`, so a Redis restart keeps the waitlist (and the locks).
  bool redis_append_only = false;
  /// A PostgreSQL server of its own that flushes every commit (fsync, synchronous_commit and
  /// full_page_writes on), as production would: for benchmarks. Off: a database on the process's
  /// shared test server, which does not flush.
  bool postgres_durable = false;
};

class ProductionEngines {
 public:
  /// Starts a Redis and a NATS server of their own, and a fresh database on the process's shared
  /// PostgreSQL server (PostgresServer::shared(): call this from the main thread first), or on a
  /// durable server of its own (options.postgres_durable).
  explicit ProductionEngines(ProductionEnginesOptions options = {});
  ~ProductionEngines();
  ProductionEngines(const ProductionEngines&) = delete;
  ProductionEngines& operator=(const ProductionEngines&) = delete;

  std::string redis_url() const { return redis_.url(); }
  std::string postgres_url() const;
  std::string nats_url() const { return nats_.url(); }
  /// --redis-url=…, --postgres-url=…, --nats-url=… for `boxoffice serve`.
  std::vector<std::string> serve_flags() const;

  RedisServer& redis() { return redis_; }
  NatsServer& nats() { return nats_; }
  PostgresServer& postgres() { return postgres_; }
  const std::string& database() const { return database_; }

 private:
  RedisServer redis_;
  NatsServer nats_;
  std::unique_ptr<PostgresServer> own_postgres_;  // only when durable
  PostgresServer& postgres_;
  std::string database_;
};

/// True when the test run asks for production engines: BOXOFFICE_TEST_ENGINES=production.
bool production_engines_requested();

}  // namespace boxoffice::testing

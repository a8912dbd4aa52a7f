#include "support/production_engines.h"

#include <cstdlib>
#include <string_view>

namespace boxoffice::testing {

namespace {
RedisServerOptions redis_options(const ProductionEnginesOptions& options) {
  RedisServerOptions redis;
  redis.append_only = options.redis_append_only;
  return redis;
}
}  // namespace

ProductionEngines::ProductionEngines(ProductionEnginesOptions options)
    : redis_(redis_options(options)),
      own_postgres_(options.postgres_durable
                        ? std::make_unique<PostgresServer>(PostgresServer::Options{.fsync = true})
                        : nullptr),
      postgres_(own_postgres_ ? *own_postgres_ : PostgresServer::shared()),
      database_(postgres_.create_database()) {}

ProductionEngines::~ProductionEngines() {
  try {
    postgres_.drop_database(database_);
  } catch (const std::exception&) {
    // The server may be gone already (the end of the process); the database goes with it.
  }
}

std::string ProductionEngines::postgres_url() const { return postgres_.url(database_); }

std::vector<std::string> ProductionEngines::serve_flags() const {
  return {"--redis-url=" + redis_url(), "--postgres-url=" + postgres_url(),
          "--nats-url=" + nats_url()};
}

bool production_engines_requested() {
  const char* value = std::getenv("BOXOFFICE_TEST_ENGINES");
  return value != nullptr && std::string_view{value} == "production";
}

}  // namespace boxoffice::testing

#pragma once
// Every setting has a flag, an environment variable and a config-file key; a flag beats a
// variable, a variable beats the file, the file beats the default. One table (config.cpp) defines
// them all, so the three sources cannot drift apart.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace boxoffice::app {

struct Config {
  std::string config_file;  // --config / BOXOFFICE_CONFIG: a TOML file of the keys below
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  std::string jwt_secret;  // empty: serve generates one and prints it
  std::string jwt_issuer = "boxoffice";
  std::string jwt_audience = "boxoffice";
  uint32_t jwt_leeway_seconds = 30;
  uint32_t io_threads = 0;      // 0: one per core
  uint32_t worker_threads = 0;  // 0: four per core, at least 8 (64 with remote engines)
  uint32_t worker_queue_max = 4096;
  uint32_t connections_max = 20'000;
  uint32_t request_timeout_seconds = 30;
  uint32_t drain_timeout_seconds = 15;
  std::string log_level = "info";

  // Payments.
  std::string payment_provider_url;  // empty: the simulator runs in this process
  uint32_t payment_attempt_timeout_ms = 2000;
  uint32_t payment_concurrency = 64;  // a slow provider answer holds one for seconds
  uint32_t payment_visibility_seconds = 30;
  uint32_t payment_max_deliveries = 5;
  uint32_t payment_reconcile_seconds = 120;

  // Waitlist.
  uint32_t waitlist_offer_seconds = 600;
  uint32_t availability_cache_ms = 0;  // 0: every read counts the seats afresh
  // Not a setting (no flag): the delay of every charge by the in-process simulator, which
  // `boxoffice demo` sets so that its payments take time as a real processor's do. A separate
  // simulator takes `payment-sim --latency-ms`.
  uint32_t sim_latency_ms = 0;

  // Production engines. Unset: embedded.
  std::string postgres_url;
  // 1: serve applies pending PostgreSQL migrations when it starts; 0: it refuses to start while
  // the schema is behind (`boxoffice migrate` applies them).
  uint32_t migrate_on_start = 1;

  std::string redis_url, nats_url;

  // Verification keys (a JWKS file or PEM files) and rate limits ("off" or overrides).
  std::string jwt_keys, rate_limits;
  // Roles run apart (README, "Roles and the split deployment"): which this process runs (empty:
  // all four), where a gateway forwards to the ones it does not run, and the secret they share.
  std::string roles, booking_url, waitlist_url, internal_secret;
};

/// Registers every setting's flag on a (sub)command. Values are kept until resolve().
class Settings {
 public:
  explicit Settings(Config& config);
  ~Settings();
  void add_flags(CLI::App& command);
  /// Applies flags, then environment, then the config file, then defaults. Returns an error
  /// message naming the setting and its source, or nullopt.
  std::optional<std::string> resolve();

 private:
  struct Entry;
  Config& config_;
  std::vector<Entry> entries_;
};

}  // namespace boxoffice::app

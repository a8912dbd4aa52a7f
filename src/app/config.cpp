#include "app/config.h"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>
#include <variant>

namespace boxoffice::app {

struct Settings::Entry {
  std::string
      key;  // config-file key; the flag is --key with '_' as '-'; the variable BOXOFFICE_KEY
  std::string help;
  std::variant<std::string*, uint32_t*> target;
  /// Set for settings whose engine is not built yet: using them is an error with this text.
  std::string not_yet;
  std::optional<std::string> flag_value;

  std::string flag() const {
    std::string f = "--" + key;
    for (auto& c : f) c = c == '_' ? '-' : c;
    return f;
  }
  std::string env() const {
    std::string e = "BOXOFFICE_" + key;
    for (auto& c : e) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return e;
  }
};

Settings::Settings(Config& c) : config_(c) {
  auto add = [this](std::string key, std::string help, std::variant<std::string*, uint32_t*> target,
                    std::string not_yet = {}) {
    entries_.push_back({std::move(key), std::move(help), target, std::move(not_yet), std::nullopt});
  };
  add("listen", "address:port of the public API", &c.listen);
  add("data_dir", "where embedded engines keep their files", &c.data_dir);
  add("jwt_secret", "HS256 secret; a random one is generated and printed when unset",
      &c.jwt_secret);
  add("jwt_issuer", "required iss claim", &c.jwt_issuer);
  add("jwt_audience", "required aud claim", &c.jwt_audience);
  add("jwt_leeway_seconds", "clock skew allowed on exp and nbf", &c.jwt_leeway_seconds);
  add("io_threads", "threads running the I/O loop (0: one per core)", &c.io_threads);
  add("worker_threads",
      "threads for blocking engine calls (0: four per core, at least 8, or 64 with Redis or "
      "PostgreSQL)",
      &c.worker_threads);
  add("worker_queue_max", "requests waiting for a worker before 503", &c.worker_queue_max);
  add("connections_max", "open client connections before new ones are refused", &c.connections_max);
  add("request_timeout_seconds",
      "a request must arrive within this; idle connections close after it",
      &c.request_timeout_seconds);
  add("drain_timeout_seconds", "on SIGTERM, how long requests in flight may still take",
      &c.drain_timeout_seconds);
  add("log_level", "trace, debug, info, warn, error", &c.log_level);
  add("availability_cache_ms",
      "answer GET availability from a count at most this old (0: count afresh every time); "
      "cached answers need no engine call",
      &c.availability_cache_ms);
  add("waitlist_offer_seconds", "how long a waiting buyer has to check out an offer",
      &c.waitlist_offer_seconds);
  add("redis_url",
      "seat locks and waitlist in Redis (redis://, rediss://, redis+cluster://host:port,...); "
      "unset: in memory and in the SQLite file",
      &c.redis_url);
  add("postgres_url",
      "bookings and idempotency keys in PostgreSQL (postgresql://...); unset: SQLite in data_dir",
      &c.postgres_url);
  add("migrate_on_start",
      "1: apply pending PostgreSQL migrations when serve starts; 0: refuse to start while the "
      "schema is behind (run `boxoffice migrate`)",
      &c.migrate_on_start);
  add("nats_url", "payment queue in JetStream (nats://host:port); unset: in the SQLite file",
      &c.nats_url);
  add("payment_provider_url", "the payment provider's base URL (unset: simulator in process)",
      &c.payment_provider_url);
  add("payment_attempt_timeout_ms", "one call to the provider gives up after this",
      &c.payment_attempt_timeout_ms);
  add("payment_concurrency", "charges and refunds in flight at once", &c.payment_concurrency);
  add("payment_visibility_seconds", "an unacknowledged payment job is delivered again after this",
      &c.payment_visibility_seconds);
  add("payment_max_deliveries", "deliveries of a payment job before it is dead-lettered",
      &c.payment_max_deliveries);
  add("payment_reconcile_seconds",
      "a booking pending this long without progress gets its payment job again",
      &c.payment_reconcile_seconds);
  add("jwt_keys",
      "verification keys: a JWKS file (kid and alg per key), or comma-separated PEM public key "
      "files (kid = file name without extension)",
      &c.jwt_keys);
  add("roles",
      "roles this process runs, comma-separated: gateway, booking, waitlist, payments (unset: all "
      "four)",
      &c.roles);
  add("booking_url",
      "http://host:port of the booking role, where a gateway without it forwards booking routes",
      &c.booking_url);
  add("waitlist_url",
      "http://host:port of the waitlist role, where a gateway without it forwards waitlist routes",
      &c.waitlist_url);
  add("internal_secret",
      "shared by a gateway and the roles behind it (16+ characters); a backend role trusts the "
      "identity a request carries only with it",
      &c.internal_secret);
  add("rate_limits",
      "off, or overrides of the default limits: <class>[.buyer|.address]=<n>/<s|m|h>[:burst=<n>] "
      "with class reads, holds, checkouts or waitlist; loopback=limited (see README)",
      &c.rate_limits);
}

Settings::~Settings() = default;

void Settings::add_flags(CLI::App& command) {
  command.add_option("--config", config_.config_file, "TOML file of settings (BOXOFFICE_CONFIG)");
  for (auto& entry : entries_) {
    command.add_option_function<std::string>(
        entry.flag(), [&entry](const std::string& v) { entry.flag_value = v; },
        entry.help + " (" + entry.env() + ")");
  }
}

namespace {

std::optional<std::string> assign(std::variant<std::string*, uint32_t*> target,
                                  const std::string& value) {
  if (auto* s = std::get_if<std::string*>(&target)) {
    **s = value;
    return std::nullopt;
  }
  uint32_t number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    return "must be a whole number from 0 to 4294967295, not \"" + value + "\"";
  }
  *std::get<uint32_t*>(target) = number;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> Settings::resolve() {
  if (config_.config_file.empty()) {
    if (const char* file = std::getenv("BOXOFFICE_CONFIG")) config_.config_file = file;
  }
  toml::table file;
  if (!config_.config_file.empty()) {
    try {
      file = toml::parse_file(config_.config_file);
    } catch (const toml::parse_error& e) {
      return "config file " + config_.config_file + ": " + std::string{e.description()} +
             " (line " + std::to_string(e.source().begin.line) + ")";
    }
    for (const auto& [key, value] : file) {
      bool known = false;
      for (const auto& entry : entries_) known = known || entry.key == key.str();
      if (!known)
        return "config file " + config_.config_file + ": unknown key \"" + std::string{key.str()} +
               "\"";
    }
  }
  for (auto& entry : entries_) {
    std::optional<std::string> value;
    std::string source;
    if (entry.flag_value) {
      value = entry.flag_value;
      source = entry.flag();
    } else if (const char* env = std::getenv(entry.env().c_str()); env && *env) {
      value = env;
      source = entry.env();
    } else if (auto node = file[entry.key]) {
      source = config_.config_file + ": " + entry.key;
      if (auto s = node.value<std::string>()) {
        value = *s;
      } else if (auto i = node.value<int64_t>()) {
        value = std::to_string(*i);
      } else {
        return source + " must be a string or an integer";
      }
    }
    if (!value) continue;
    if (!entry.not_yet.empty()) return source + ": " + entry.not_yet;
    if (auto error = assign(entry.target, *value)) return source + " " + *error;
  }
  return std::nullopt;
}

}  // namespace boxoffice::app

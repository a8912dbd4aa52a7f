#include "app/app.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "adapters/postgres/pg_schema.h"
#include "app/config.h"
#include "app/demo.h"
#include "app/system.h"
#include "http/jwt.h"
#include "loadgen/command.h"
#include "payment_sim/sim_server.h"
#include "ports/clock.h"

namespace boxoffice::app {

namespace {

constexpr int kExitConfig = 2;

// Each connection is a descriptor, and the soft limit is often 1024 under a far higher hard one:
// raise it, or accept fails (EMFILE) near a thousand connections whatever connections_max says.
void raise_descriptor_limit(uint32_t connections_max) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) getrlimit(RLIMIT_NOFILE, &limit);
  }
  const rlim_t wanted = rlim_t{connections_max} + 256;  // and the engines' files and sockets
  if (limit.rlim_cur < wanted) {
    spdlog::warn(
        "descriptor limit {} (RLIMIT_NOFILE, hard limit) is below connections_max {} + "
        "256: connections will be refused before that; raise it (ulimit -Hn, LimitNOFILE=)",
        limit.rlim_cur, connections_max);
  }
}

int serve(const Config& config) {
  raise_descriptor_limit(config.connections_max);
  try {
    System system(config);
    system.run();
  } catch (const ConfigError& e) {
    std::cerr << "boxoffice: " << e.what() << "\n";
    return kExitConfig;
  }
  spdlog::info("drained; bye");
  return 0;
}

// libpq's messages run over several lines ("...failed: Connection refused\n\tIs the server
// running..."); a command's error is one.
std::string one_line(const std::string& text) {
  std::string line;
  for (const char c : text) {
    const bool space = c == '\n' || c == '\t' || c == ' ';
    if (!space) {
      line += c;
    } else if (!line.empty() && line.back() != ' ') {
      line += ' ';
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// `migrate`: brings the PostgreSQL schema of the bookings database up to this build's version,
// printing each migration it applies; with --status, only says where it stands.
int migrate(const Config& config, bool status_only) {
  if (config.postgres_url.empty()) {
    std::cerr << "boxoffice: migrate needs the bookings database: pass --postgres-url or set "
                 "BOXOFFICE_POSTGRES_URL (the embedded SQLite file migrates itself)\n";
    return kExitConfig;
  }
  const int64_t needed = postgres_schema_version_needed();
  try {
    if (status_only) {
      const PgSchemaStatus status = postgres_schema_status(config.postgres_url);
      std::cout << "schema version " << status.version << ", this build needs " << needed << "\n";
      for (const auto& migration : status.pending) {
        std::cout << "pending migration " << migration.version << " " << migration.name << "\n";
      }
      return 0;
    }
    const std::vector<PgMigration> applied = migrate_postgres(config.postgres_url);
    for (const auto& migration : applied) {
      std::cout << "applied migration " << migration.version << " " << migration.name << "\n";
    }
    if (applied.empty()) {
      std::cout << "schema is up to date (version " << needed << ")\n";
    } else {
      std::cout << "schema is at version " << needed << "\n";
    }
    return 0;
  } catch (const StorageError& e) {
    std::cerr << "boxoffice: postgres_url: " << one_line(e.what()) << "\n";
    return kExitConfig;
  }
}

int token(const Config& config, const std::string& subject, const std::vector<std::string>& roles,
          uint32_t ttl_seconds) {
  if (config.jwt_secret.empty()) {
    std::cerr << "boxoffice: no JWT secret: pass --jwt-secret or set BOXOFFICE_JWT_SECRET to the "
                 "server's secret\n";
    return kExitConfig;
  }
  if (subject.empty()) {
    std::cerr << "boxoffice: --sub must not be empty\n";
    return kExitConfig;
  }
  jwt::MintOptions options{subject, roles, std::chrono::seconds{ttl_seconds}, config.jwt_issuer,
                           config.jwt_audience};
  std::cout << jwt::mint_hs256(config.jwt_secret, options, SystemClock{}.now()) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"boxoffice: sells tickets when everyone arrives at once"};
  cli.require_subcommand(1);
  Config config;
  Settings settings(config);

  auto* serve_cmd = cli.add_subcommand("serve", "run the HTTP API (embedded engines by default)");
  settings.add_flags(*serve_cmd);

  auto* migrate_cmd = cli.add_subcommand(
      "migrate", "apply pending PostgreSQL migrations to the bookings database (--postgres-url)");
  settings.add_flags(*migrate_cmd);
  bool migrate_status = false;
  migrate_cmd->add_flag("--status", migrate_status,
                        "only print the schema version and what is pending");

  auto* token_cmd = cli.add_subcommand("token", "print a token signed with the HS256 secret");
  settings.add_flags(*token_cmd);
  std::string subject;
  std::vector<std::string> roles;
  uint32_t ttl_seconds = 3600;
  token_cmd->add_option("--sub", subject, "buyer id (the sub claim)")->required();
  token_cmd->add_option("--role", roles, "a role, e.g. admin (repeatable)");
  token_cmd->add_option("--ttl", ttl_seconds, "seconds until the token expires")
      ->check(CLI::Range(1u, 31'536'000u));

  auto* sim_cmd = cli.add_subcommand(
      "payment-sim", "run the card-processor simulator (listens on --listen / BOXOFFICE_LISTEN)");
  settings.add_flags(*sim_cmd);
  payment_sim::SimulatorOptions sim;
  uint32_t sim_latency_ms = 0, sim_slow_delay_ms = 3000;
  uint64_t sim_seed = 0;
  sim_cmd->add_option("--latency-ms", sim_latency_ms, "delay of every charge");
  sim_cmd->add_option("--error-rate", sim.error_rate, "fraction of charges answered 503")
      ->check(CLI::Range(0.0, 1.0));
  sim_cmd
      ->add_option("--timeout-rate", sim.timeout_rate,
                   "fraction of charges made but answered only after --slow-delay-ms")
      ->check(CLI::Range(0.0, 1.0));
  sim_cmd->add_option("--slow-delay-ms", sim_slow_delay_ms,
                      "delay of pm_card_slow and of timed-out charges");
  auto* seed_option = sim_cmd->add_option("--seed", sim_seed, "seed of the injected failures");

  // `demo` runs its own System with settings of its own: it reads no flag, variable or file of
  // the settings table.
  auto* demo_cmd = cli.add_subcommand(
      "demo", "sell out an event to simulated buyers over real HTTP, then check the invariants");
  DemoOptions demo;
  uint64_t demo_seed = 0;
  demo_cmd->add_option("--buyers", demo.buyers, "simulated buyers (default 6000; 800 with --small)")
      ->check(CLI::Range(1u, 1'000'000u));
  demo_cmd
      ->add_option("--concurrency", demo.concurrency,
                   "buyers active at once, each on its own connection (default 64)")
      ->check(CLI::Range(1u, 10'000u));
  demo_cmd->add_option("--data-dir", demo.data_dir,
                       "where the embedded engines keep their files (default: a fresh temporary "
                       "directory, removed afterwards)");
  demo_cmd->add_flag("--keep-data", demo.keep_data, "keep the temporary data directory");
  auto* demo_seed_option = demo_cmd->add_option("--seed", demo_seed, "seed of the buyers' choices");
  demo_cmd->add_flag("--small", demo.small, "about 300 seats and 800 buyers: a quick run");

  // `loadgen` plays buyers against a running server; it has a command line of its own (everything
  // after `loadgen` is its), and reads no setting of the table either.
  auto* loadgen_cmd =
      cli.add_subcommand("loadgen",
                         "play a flash sale's buyers against a running server (--url), then "
                         "check the invariants; `boxoffice loadgen --help` for its flags")
          ->prefix_command();
  loadgen_cmd->set_help_flag();  // its --help is loadgen's own

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (*demo_cmd) {
    if (demo_seed_option->count()) demo.seed = demo_seed;
    return run_demo(demo);
  }
  if (*loadgen_cmd) return loadgen::loadgen_main(loadgen_cmd->remaining());
  if (auto error = settings.resolve()) {
    std::cerr << "boxoffice: " << *error << "\n";
    return kExitConfig;
  }
  auto level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    std::cerr << "boxoffice: log_level \"" << config.log_level
              << "\" must be trace, debug, info, warn, error or off\n";
    return kExitConfig;
  }
  spdlog::set_level(level);
  if (*serve_cmd) return serve(config);
  if (*migrate_cmd) return migrate(config, migrate_status);
  if (*sim_cmd) {
    payment_sim::PaymentSimOptions options;
    options.listen = config.listen;
    sim.latency = Millis{sim_latency_ms};
    sim.slow_delay = Millis{sim_slow_delay_ms};
    if (seed_option->count()) sim.seed = sim_seed;
    options.simulator = sim;
    return payment_sim::run_payment_sim(options);
  }
  return token(config, subject, roles, ttl_seconds);
}

}  // namespace boxoffice::app

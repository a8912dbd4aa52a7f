#include "app/app.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <thread>

#include "adapters/memory/memory_seat_lock_store.h"
#include "adapters/sqlite/sqlite_booking_store.h"
#include "app/config.h"
#include "http/api.h"
#include "http/jwt.h"
#include "http/server.h"
#include "ports/clock.h"
#include "services/booking_service.h"

namespace boxoffice::app {

namespace {

constexpr int kExitConfig = 2;

/// Runs a task every `period` on its own thread until destroyed.
class Periodic {
 public:
  Periodic(std::chrono::milliseconds period, std::function<void()> task)
      : thread_([this, period, task = std::move(task)] {
          std::unique_lock lock(mutex_);
          while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
            lock.unlock();
            try {
              task();
            } catch (const std::exception& e) {
              spdlog::warn("maintenance task failed: {}", e.what());
            }
            lock.lock();
          }
        }) {}
  ~Periodic() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

int serve(Config& config) {
  const auto listen = parse_listen(config.listen);
  if (!listen) {
    std::cerr << "boxoffice: --listen \"" << config.listen << "\" must be host:port\n";
    return kExitConfig;
  }
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    std::cerr << "boxoffice: cannot create data directory " << config.data_dir << ": "
              << ec.message() << "\n";
    return kExitConfig;
  }
  if (config.jwt_secret.empty()) {
    config.jwt_secret = jwt::random_secret();
    spdlog::warn("no JWT secret configured; generated one for this run: {}", config.jwt_secret);
    spdlog::warn("set BOXOFFICE_JWT_SECRET to keep tokens valid across restarts");
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t io_threads = config.io_threads ? config.io_threads : cores;
  const size_t workers = config.worker_threads ? config.worker_threads : std::max(8u, 4 * cores);

  SystemClock clock;
  const auto db_path = (std::filesystem::path{config.data_dir} / "bookings.sqlite3").string();
  std::unique_ptr<SqliteBookingStore> bookings;
  try {
    bookings = std::make_unique<SqliteBookingStore>(db_path, workers);
  } catch (const std::exception& e) {
    std::cerr << "boxoffice: cannot open the bookings database " << db_path << ": " << e.what() << "\n";
    return kExitConfig;
  }
  MemorySeatLockStore locks;
  BookingService service(clock, locks, *bookings);
  service.recover();

  http::ApiOptions api_options;
  api_options.jwt = {config.jwt_secret, config.jwt_issuer, config.jwt_audience,
                     std::chrono::seconds{config.jwt_leeway_seconds}};
  api_options.readiness.push_back({"seat_lock_store:memory", [] { return true; }});
  api_options.readiness.push_back({"bookings_db:sqlite", [&bookings] {
                                     bookings->max_fence();
                                     return true;
                                   }});
  http::Api api(std::move(api_options), clock, service, *bookings);

  http::ServerOptions server_options;
  server_options.address = listen->host;
  server_options.port = listen->port;
  server_options.io_threads = io_threads;
  server_options.worker_threads = workers;
  server_options.worker_queue_max = config.worker_queue_max;
  server_options.connections_max = config.connections_max;
  server_options.request_timeout = std::chrono::seconds{config.request_timeout_seconds};
  server_options.drain_timeout = std::chrono::seconds{config.drain_timeout_seconds};
  http::HttpServer server(server_options, api);
  try {
    server.listen();
  } catch (const std::exception& e) {
    std::cerr << "boxoffice: " << e.what() << "\n";
    return kExitConfig;
  }

  // Idempotency keys are kept 24 h (the contract's minimum) and then purged.
  Periodic purge(std::chrono::minutes{10}, [&] {
    const auto purged = bookings->purge(clock.now(), std::chrono::hours{25});
    if (purged) spdlog::info("purged {} idempotency records", purged);
  });
  spdlog::info("boxoffice listening on http://{}:{} (data in {}, {} I/O threads, {} workers)",
               listen->host, server.port(), config.data_dir, io_threads, workers);
  server.run();
  spdlog::info("drained; bye");
  return 0;
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

  auto* token_cmd = cli.add_subcommand("token", "print a token signed with the HS256 secret");
  settings.add_flags(*token_cmd);
  std::string subject;
  std::vector<std::string> roles;
  uint32_t ttl_seconds = 3600;
  token_cmd->add_option("--sub", subject, "buyer id (the sub claim)")->required();
  token_cmd->add_option("--role", roles, "a role, e.g. admin (repeatable)");
  token_cmd->add_option("--ttl", ttl_seconds, "seconds until the token expires")
      ->check(CLI::Range(1u, 31'536'000u));

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
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
  return token(config, subject, roles, ttl_seconds);
}

}  // namespace boxoffice::app

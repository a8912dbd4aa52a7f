#include "app/demo.h"

// g++ 12 at -O2, once it inlines a coroutine's ramp, pairs Asio's class-specific operator new of
// the coroutine frame with the global operator delete and reports a mismatch: a false positive of
// that compiler (fixed in 13), not something this file can change.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "app/system.h"
#include "http/jwt.h"
#include "loadgen/sale.h"
#include "ports/clock.h"

namespace boxoffice::app {

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using loadgen::Plan;

// The sale itself (the buyers, the checks, the report) is loadgen's (src/loadgen/sale.h), shared
// with `boxoffice loadgen`; the demo adds the server, in this process, and the event.
constexpr uint32_t kBuyersDefault = 6000;
constexpr uint32_t kBuyersSmall = 800;
constexpr uint32_t kSeatsPerOrderMax = 4;  // also the per-buyer cap: one order per buyer
// Short, so that holds their buyers walk away from expire while others still wait for seats.
constexpr uint32_t kHoldTtlSeconds = 15;
constexpr uint32_t kHoldTtlSecondsSmall = 10;  // the shortest an event allows
// After the last buyer was let in, the demo waits this long for the sale to be over: every
// booking final, no offer open, nothing left that could come back to a waitlist.
constexpr auto kSettleFor = 120s;
// Offers last the shortest window the server accepts, so that lapsed offers show within the demo.
constexpr uint32_t kOfferSeconds = 10;
// The in-process payment simulator answers a charge after this: a real processor takes
// 100-500 ms; a little less keeps the demo short while payments still visibly lag checkouts.
constexpr uint32_t kSimLatencyMs = 40;
// Each charge in flight holds a payments thread while it waits for the provider.
constexpr uint32_t kPaymentConcurrency = 16;
// A job not acknowledged within this is delivered again; kept short so a lost worker shows.
constexpr uint32_t kPaymentVisibilitySeconds = 5;

Plan make_plan(const DemoOptions& options) {
  Plan plan;
  plan.name = "Flash sale (boxoffice demo)";
  plan.max_seats_per_order = kSeatsPerOrderMax;
  if (options.small) {
    plan.sections = {loadgen::general_section("floor", "Floor", 120, 9500),
                     loadgen::reserved_section("orch", "Orchestra", 6, 20, 18000),
                     loadgen::reserved_section("balc", "Balcony", 3, 20, 7000)};
    plan.buyers = kBuyersSmall;
    plan.hold_ttl_seconds = kHoldTtlSecondsSmall;
  } else {
    plan.sections = {loadgen::general_section("floor", "Floor", 1500, 9500),
                     loadgen::reserved_section("orch", "Orchestra", 20, 50, 18000),
                     loadgen::reserved_section("balc", "Balcony", 10, 50, 7000)};
    plan.buyers = kBuyersDefault;
    plan.hold_ttl_seconds = kHoldTtlSeconds;
  }
  if (options.buyers) plan.buyers = options.buyers;
  return plan;
}

std::filesystem::path make_temp_dir() {
  auto pattern = (std::filesystem::temp_directory_path() / "boxoffice-demo-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    throw loadgen::SaleError("cannot create a temporary directory in " +
                             std::filesystem::temp_directory_path().string());
  }
  return pattern;
}

/// The System under load, serving on its own threads until destroyed.
class Background {
 public:
  explicit Background(Config config) : system_(std::move(config), /*handle_signals=*/false) {
    thread_ = std::thread([this] { system_.run(); });
  }
  ~Background() {
    system_.stop();
    thread_.join();
  }
  System& system() { return system_; }

 private:
  System system_;
  std::thread thread_;
};

}  // namespace

int run_demo(const DemoOptions& options) {
  if (options.concurrency == 0) {
    std::cerr << "boxoffice: --concurrency must be at least 1\n";
    return 2;
  }
  // The report owns stdout; the server's log goes to stderr, warnings only, so that the progress
  // line stays readable.
  auto logger = spdlog::stderr_color_mt("boxoffice-demo");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);

  loadgen::SaleOptions sale;
  sale.plan = make_plan(options);
  sale.concurrency = options.concurrency;
  sale.seed = options.seed ? *options.seed : std::random_device{}();
  sale.offer_seconds = kOfferSeconds;
  sale.settle_for = kSettleFor;
  sale.title = "boxoffice demo: a flash sale, end to end";

  std::filesystem::path data_dir = options.data_dir;
  const bool temporary = data_dir.empty();
  try {
    if (temporary) data_dir = make_temp_dir();
  } catch (const loadgen::SaleError& e) {
    std::cerr << "boxoffice: " << e.what() << "\n";
    return 1;
  }

  int code = 1;
  try {
    Config config;
    config.listen = "127.0.0.1:0";
    config.data_dir = data_dir.string();
    config.jwt_secret = jwt::random_secret();
    config.payment_visibility_seconds = kPaymentVisibilitySeconds;
    config.payment_concurrency = kPaymentConcurrency;
    config.sim_latency_ms = kSimLatencyMs;
    config.waitlist_offer_seconds = kOfferSeconds;
    config.log_level = "warn";
    sale.mint = [secret = config.jwt_secret](const std::string& subject, bool admin) {
      jwt::MintOptions mint{subject,
                            admin ? std::vector<std::string>{"admin"} : std::vector<std::string>{},
                            std::chrono::hours{2}, "boxoffice", "boxoffice"};
      return jwt::mint_hs256(secret, mint, SystemClock{}.now());
    };

    Background background(config);
    sale.origin = {"127.0.0.1", background.system().port()};
    sale.provider_url = background.system().payment_provider_url();
    sale.setup = fmt::format(
        "Embedded engines over real HTTP: in-memory seat locks, SQLite bookings and payment queue, "
        "payment simulator at {} ({} ms per charge).",
        sale.provider_url, kSimLatencyMs);
    std::fprintf(stderr, "boxoffice demo: serving on http://127.0.0.1:%u, data in %s, seed %llu\n",
                 sale.origin.port, data_dir.c_str(), static_cast<unsigned long long>(sale.seed));

    // Ctrl-C ends the demo cleanly: the server drains and the temporary directory goes.
    if (auto result = loadgen::run_interruptibly(loadgen::run_sale(std::move(sale)))) {
      std::cout << result->markdown << std::flush;
      code = result->passed ? 0 : 1;
    } else {
      std::cerr << "\nboxoffice demo: interrupted; no report\n";
      code = 130;
    }
  } catch (const ConfigError& e) {
    std::cerr << "boxoffice: " << e.what() << "\n";
    code = 2;
  } catch (const std::exception& e) {
    std::cerr << "\nboxoffice demo: " << e.what() << "\n";
    code = 1;
  }

  if (temporary && !options.keep_data) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);
  } else {
    std::cerr << "data kept in " << data_dir.string() << "\n";
  }
  return code;
}

}  // namespace boxoffice::app

#include "loadgen/command.h"

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // see buyers.cpp
#endif

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>

#include "http/jwt.h"
#include "loadgen/hold_load.h"
#include "loadgen/route_report.h"
#include "loadgen/sale.h"
#include "ports/clock.h"

namespace boxoffice::loadgen {

namespace {

namespace net = boost::asio;

constexpr int kExitBadFlag = 2;
constexpr uint32_t kSeatsPerRow = 25;          // rows of the reserved sections --seats makes
constexpr uint32_t kSectionRowsMax = 80;       // 2,000 seats: a buyer's seat map is one section
constexpr uint32_t kBuyersPerSeatDefault = 3;  // demand: three buyers for every seat
constexpr uint32_t kServerOfferSecondsDefault = 600;  // the server's waitlist_offer_seconds
constexpr int64_t kPriceGeneral = 9500, kPriceReserved = 18000;
constexpr uint32_t kHallSeatsPerRow = 1000;  // rows of the holds scenario's one section
constexpr double kHoldsDurationDefault = 10, kHoldsWarmupDefault = 2;

class BadFlag : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

uint32_t to_count(std::string_view text, std::string_view what) {
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0) {
    throw BadFlag(fmt::format("--sections: {} \"{}\" is not a positive number", what, text));
  }
  return value;
}

/// "floor=ga:400,orch=20x30": general admission sections (capacity) and reserved ones (rows ×
/// seats per row), in that order.
std::vector<SectionPlan> parse_sections(const std::string& spec) {
  std::vector<SectionPlan> sections;
  size_t start = 0;
  while (start <= spec.size()) {
    const auto comma = std::min(spec.find(',', start), spec.size());
    const std::string_view part{spec.data() + start, comma - start};
    const auto equals = part.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      throw BadFlag(fmt::format("--sections: \"{}\" is not id=ga:CAPACITY or id=ROWSxSEATS", part));
    }
    const std::string id{part.substr(0, equals)};
    const auto layout = part.substr(equals + 1);
    if (layout.substr(0, 3) == "ga:") {
      sections.push_back(
          general_section(id, id, to_count(layout.substr(3), "capacity"), kPriceGeneral));
    } else if (const auto x = layout.find('x'); x != std::string_view::npos) {
      sections.push_back(reserved_section(id, id, to_count(layout.substr(0, x), "rows"),
                                          to_count(layout.substr(x + 1), "seats per row"),
                                          kPriceReserved));
    } else {
      throw BadFlag(fmt::format("--sections: \"{}\" is not id=ga:CAPACITY or id=ROWSxSEATS", part));
    }
    start = comma + 1;
  }
  return sections;
}

/// `rows` rows of kSeatsPerRow as reserved sections of at most kSectionRowsMax rows each, as a
/// venue's blocks are (a buyer's seat map is one section): "orch", "orch2", "orch3", ...
void add_reserved(std::vector<SectionPlan>& sections, const std::string& id,
                  const std::string& name, uint32_t rows, int64_t price) {
  for (uint32_t part = 1; rows > 0; ++part) {
    const uint32_t these = std::min(rows, kSectionRowsMax);
    const auto suffix = part == 1 ? std::string{} : std::to_string(part);
    sections.push_back(reserved_section(id + suffix, name + (part == 1 ? "" : " " + suffix), these,
                                        kSeatsPerRow, price));
    rows -= these;
  }
}

/// `seats` split as a venue would: 40% general admission floor, the rest reserved rows of
/// kSeatsPerRow (orchestra, then a balcony with what is left), in blocks of kSectionRowsMax rows.
std::vector<SectionPlan> default_sections(uint32_t seats) {
  std::vector<SectionPlan> sections;
  const uint32_t floor = std::max<uint32_t>(1, seats * 2 / 5);
  sections.push_back(general_section("floor", "Floor", floor, kPriceGeneral));
  uint32_t rest = seats > floor ? seats - floor : 0;
  const uint32_t orch_rows = rest * 2 / 3 / kSeatsPerRow;
  add_reserved(sections, "orch", "Orchestra", orch_rows, kPriceReserved);
  rest -= orch_rows * kSeatsPerRow;
  const uint32_t balc_rows = rest / kSeatsPerRow;
  add_reserved(sections, "balc", "Balcony", balc_rows, 7000);
  rest -= balc_rows * kSeatsPerRow;
  sections.front().capacity += rest;  // what does not fill a row stands on the floor
  return sections;
}

std::string one_line(std::string text) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

/// The holds scenario's event: one reserved section, "hall", of `seats` in rows of up to
/// kHallSeatsPerRow (what does not fill a row is left out).
std::vector<SectionPlan> hall_sections(uint32_t seats) {
  const uint32_t per_row = std::min(seats, kHallSeatsPerRow);
  return {reserved_section("hall", "Hall", std::max<uint32_t>(1, seats / per_row), per_row,
                           kPriceReserved)};
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "boxoffice loadgen: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int loadgen_main(const std::vector<std::string>& args) {
  CLI::App cli{"boxoffice loadgen: flash-sale buyers against a running server",
               "boxoffice loadgen"};
  std::string url, secret, issuer = "boxoffice", audience = "boxoffice", event_id, sections_spec;
  std::string json_path, markdown_path, postgres_url, provider_url, timeline_path;
  std::string scenario = "sale", after_hold = "keep";
  uint32_t seats_per_hold = 4;
  double warmup_seconds = kHoldsWarmupDefault, join_rate = SaleOptions{}.join_rate;
  uint32_t seats = 1000, buyers = 0, concurrency = 64, hold_ttl_seconds = 10;
  uint32_t offer_seconds = kServerOfferSecondsDefault, settle_seconds = 120;
  double rate = 0, duration_seconds = 0;
  uint64_t seed = 0;
  cli.add_option("--url", url, "the server's base URL, http://host:port")->required();
  cli.add_option("--jwt-secret", secret,
                 "the server's HS256 secret, to sign the buyers' and the admin's tokens")
      ->envname("BOXOFFICE_JWT_SECRET");
  cli.add_option("--jwt-issuer", issuer, "iss claim of the tokens")->capture_default_str();
  cli.add_option("--jwt-audience", audience, "aud claim of the tokens")->capture_default_str();
  auto* event_opt = cli.add_option("--event-id", event_id, "sell this existing event");
  auto* seats_opt =
      cli.add_option("--seats", seats,
                     "seats of the event it creates: 40% floor, the rest in rows, 2,000 a section")
          ->check(CLI::Range(1u, 10'000'000u))
          ->capture_default_str();
  auto* sections_opt = cli.add_option(
      "--sections", sections_spec,
      "layout of the event it creates, e.g. floor=ga:400,orch=20x30 (id=ga:CAPACITY or "
      "id=ROWSxSEATS)");
  event_opt->excludes(seats_opt)->excludes(sections_opt);
  sections_opt->excludes(seats_opt);
  auto* hold_ttl_opt =
      cli.add_option("--hold-ttl", hold_ttl_seconds,
                     "hold TTL of the event it creates, seconds (holds scenario: by default a "
                     "minute past the end of the run, so what is measured is holds, not the "
                     "expiry of the holds made one TTL earlier)")
          ->check(CLI::Range(10u, 3600u))
          ->capture_default_str();
  cli.add_option("--buyers", buyers, "buyers in the sale (default: 3 per seat)")
      ->check(CLI::Range(1u, 100'000'000u));
  cli.add_option("--concurrency", concurrency,
                 "closed model: buyers at once, one connection each; open model: connections "
                 "the buyers share")
      ->check(CLI::Range(1u, 100'000u))
      ->capture_default_str();
  cli.add_option("--rate", rate,
                 "open model: buyers arriving per second (latency from the intended send time)")
      ->check(CLI::Range(0.001, 1e7));
  cli.add_option("--duration", duration_seconds, "let no buyer in after this many seconds")
      ->check(CLI::Range(0.001, 1e7));
  auto* seed_opt = cli.add_option("--seed", seed, "seed of the buyers' choices (default: random)");
  cli.add_option("--offer-seconds", offer_seconds,
                 "the server's waitlist_offer_seconds (the waitlist order check needs it)")
      ->check(CLI::Range(1u, 86'400u))
      ->capture_default_str();
  cli.add_option("--join-rate", join_rate,
                 "share of the buyers who find nothing available that join a waitlist")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cli.add_option("--settle", settle_seconds,
                 "after the last buyer, seconds to wait for every booking to be final")
      ->check(CLI::Range(1u, 86'400u))
      ->capture_default_str();
  cli.add_option("--provider-url", provider_url,
                 "the payment provider (payment-sim) base URL: charges checked in its ledger");
  cli.add_option("--postgres-url", postgres_url,
                 "the bookings database: invariants checked in its tables too");
  cli.add_option("--scenario", scenario,
                 "sale: buyers' whole journeys, checked afterwards; holds: one hold after another "
                 "(then --after-hold), for the hot path's throughput and latency")
      ->check(CLI::IsMember({"sale", "holds"}))
      ->capture_default_str();
  cli.add_option("--after-hold", after_hold,
                 "holds scenario: after each hold keep it, release it, or check it out")
      ->check(CLI::IsMember({"keep", "release", "checkout"}))
      ->capture_default_str();
  cli.add_option("--seats-per-hold", seats_per_hold, "holds scenario: adjacent seats per hold")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  cli.add_option("--warmup", warmup_seconds,
                 "holds scenario: seconds of operations before the measured --duration")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cli.add_option("--timeline", timeline_path,
                 "write second-by-second requests, holds made, p50 and p99 here (gnuplot data)");
  cli.add_option("--json", json_path, "write the report as JSON to this file");
  cli.add_option("--markdown", markdown_path, "write the Markdown report to this file");

  SaleOptions sale;
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
    cli.parse(reversed);
    const auto origin = parse_origin(url);
    if (!origin) throw BadFlag("--url \"" + url + "\" is not http://host:port");
    if (secret.empty()) {
      throw BadFlag("no JWT secret: pass --jwt-secret or set BOXOFFICE_JWT_SECRET to the server's");
    }
    if (!provider_url.empty() && !parse_origin(provider_url)) {
      throw BadFlag("--provider-url \"" + provider_url + "\" is not http://host:port");
    }
    sale.origin = *origin;
    if (scenario == "holds") {
      if (!event_id.empty()) throw BadFlag("--scenario holds creates its own event: no --event-id");
      if (!postgres_url.empty() || !provider_url.empty()) {
        throw BadFlag("--scenario holds checks no invariants: no --postgres-url, --provider-url");
      }
    }
    sale.plan.sections = !sections_spec.empty() ? parse_sections(sections_spec)
                         : scenario == "holds"  ? hall_sections(seats)
                                                : default_sections(seats);
    sale.plan.hold_ttl_seconds = hold_ttl_seconds;
    if (scenario == "holds" && hold_ttl_opt->count() == 0) {
      const double run_seconds =
          warmup_seconds + (duration_seconds > 0 ? duration_seconds : kHoldsDurationDefault);
      sale.plan.hold_ttl_seconds =
          static_cast<uint32_t>(std::clamp(std::ceil(run_seconds) + 60.0, 10.0, 3600.0));
    }
    sale.plan.buyers =
        buyers ? buyers : std::max<uint32_t>(1, sale.plan.seats() * kBuyersPerSeatDefault);
    if (!event_id.empty() && !buyers) {
      throw BadFlag("--event-id needs --buyers (the event's size is known only once it is read)");
    }
  } catch (const CLI::CallForHelp&) {
    std::cout << cli.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "boxoffice loadgen: " << one_line(e.what()) << " (see --help)\n";
    return kExitBadFlag;
  } catch (const BadFlag& e) {
    std::cerr << "boxoffice loadgen: " << one_line(e.what()) << "\n";
    return kExitBadFlag;
  }

  // The report owns stdout; warnings about odd answers go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("boxoffice-loadgen"));
  spdlog::set_level(spdlog::level::warn);

  sale.mint = [secret, issuer, audience](const std::string& subject, bool admin) {
    jwt::MintOptions mint{subject,
                          admin ? std::vector<std::string>{"admin"} : std::vector<std::string>{},
                          std::chrono::hours{2}, issuer, audience};
    return jwt::mint_hs256(secret, mint, SystemClock{}.now());
  };
  sale.event_id = event_id;
  sale.concurrency = concurrency;
  if (rate > 0) sale.rate_per_second = rate;
  if (duration_seconds > 0) {
    sale.duration = std::chrono::milliseconds{static_cast<int64_t>(duration_seconds * 1000)};
  }
  sale.seed = seed_opt->count() ? seed : std::random_device{}();
  sale.offer_seconds = offer_seconds;
  sale.join_rate = join_rate;
  sale.settle_for = std::chrono::seconds{settle_seconds};
  sale.provider_url = provider_url;
  sale.postgres_url = postgres_url;
  sale.title = "boxoffice loadgen: a flash sale";
  sale.setup = fmt::format("Server {}{}{}.", url,
                           provider_url.empty() ? "" : "; payment ledger at " + provider_url,
                           postgres_url.empty() ? "" : "; bookings database checked directly");
  std::fprintf(stderr, "boxoffice loadgen: %s, seed %llu\n", url.c_str(),
               static_cast<unsigned long long>(sale.seed));

  std::optional<SaleResult> result;
  try {
    if (scenario == "holds") {
      HoldLoadOptions load;
      load.origin = sale.origin;
      load.mint = sale.mint;
      load.plan = sale.plan;
      load.seats_per_hold = seats_per_hold;
      load.after = after_hold == "release"    ? AfterHold::release
                   : after_hold == "checkout" ? AfterHold::checkout
                                              : AfterHold::keep;
      load.concurrency = concurrency;
      load.rate_per_second = sale.rate_per_second;
      load.warmup = std::chrono::milliseconds{static_cast<int64_t>(warmup_seconds * 1000)};
      load.duration = std::chrono::milliseconds{static_cast<int64_t>(
          (duration_seconds > 0 ? duration_seconds : kHoldsDurationDefault) * 1000)};
      load.title = "boxoffice loadgen: holds";
      load.setup = fmt::format("Server {}.", url);
      result = run_interruptibly(run_hold_load(std::move(load)));
    } else {
      result = run_interruptibly(run_sale(std::move(sale)));
    }
  } catch (const std::exception& e) {
    std::cerr << "\nboxoffice loadgen: " << e.what() << "\n";
    return 1;
  }
  if (!result) {
    std::cerr << "\nboxoffice loadgen: interrupted; no report\n";
    return 130;
  }
  std::cout << result->markdown << std::flush;
  bool written = true;
  if (!json_path.empty())
    written &= write_file(json_path, boost::json::serialize(result->json) + "\n");
  if (!markdown_path.empty()) written &= write_file(markdown_path, result->markdown);
  if (!timeline_path.empty()) {
    written &= write_file(timeline_path, timeline_data(result->per_second, "hold"));
  }
  return result->passed && written ? 0 : 1;
}

}  // namespace boxoffice::loadgen

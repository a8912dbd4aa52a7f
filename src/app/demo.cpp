#include "app/demo.h"

// g++ 12 at -O2, once it inlines a coroutine's ramp, pairs Asio's class-specific operator new of
// the coroutine frame with the global operator delete and reports a mismatch: a false positive of
// that compiler (fixed in 13), not something this file can change.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "app/system.h"
#include "http/jwt.h"
#include "loadgen/http_client.h"
#include "ports/clock.h"

namespace boxoffice::app {

namespace {

namespace net = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using loadgen::Connection;
using loadgen::Request;
using loadgen::Response;
using Steady = std::chrono::steady_clock;

// --- Limits of the simulated crowd (each one bounds how long a buyer or the demo can take) -------
constexpr uint32_t kBuyersDefault = 6000;
constexpr uint32_t kBuyersSmall = 800;
constexpr uint32_t kSeatsPerOrderMax = 4;  // also the per-buyer cap: one order per buyer
constexpr uint32_t kHoldTtlSeconds = 30;
constexpr int kHoldAttemptsMax = 6;  // holds tried per buyer (conflicts, sold-out sections)
// While every seat is held (none available), a buyer re-reads availability this often and this
// many times before leaving: held seats come back when a payment is declined or a hold released.
constexpr auto kPatienceInterval = 250ms;
constexpr int kPatienceRoundsMax = 8;
constexpr auto kBookingPollInterval = 200ms;
constexpr auto kBookingPollFor = 60s;  // a buyer stops watching a booking after this
constexpr auto kSettleFor = 120s;      // the demo waits this long for every booking to be final
constexpr auto kProgressInterval = 500ms;
constexpr auto kProgressPlainInterval = 2s;  // stderr is a log file, not a terminal
constexpr double kReleaseRate = 0.05;        // holders who change their mind and release
constexpr double kCancelRate = 0.05;         // confirmed buyers who cancel (and are refunded)
constexpr size_t kProblemsShownMax = 5;

// The in-process payment simulator answers a charge after this: a real processor takes
// 100-500 ms; a little less keeps the demo short while payments still visibly lag checkouts.
constexpr uint32_t kSimLatencyMs = 40;
// Each charge in flight holds a payments thread while it waits for the provider.
constexpr uint32_t kPaymentConcurrency = 16;
// A job not acknowledged within this is delivered again; kept short so a lost worker shows.
constexpr uint32_t kPaymentVisibilitySeconds = 5;

struct PaymentShare {
  std::string_view method;
  double share;
};
constexpr PaymentShare kPaymentMix[] = {{"pm_card_ok", 0.80},
                                        {"pm_card_declined", 0.08},
                                        {"pm_card_flaky", 0.06},
                                        {"pm_card_slow", 0.06}};

/// Built by a function, not braced in place: g++ 12 refuses a string literal in a braced
/// initializer inside a co_await expression ("array used as initializer").
Request request(std::string method, std::string target, std::string body, std::string bearer,
                std::string route) {
  return {std::move(method), std::move(target), std::move(body), std::move(bearer), {},
          std::move(route)};
}

// --- The event --------------------------------------------------------------------------------

struct SectionPlan {
  std::string id;
  std::string name;
  bool reserved = false;
  uint32_t rows = 0;           // reserved
  uint32_t seats_per_row = 0;  // reserved
  uint32_t capacity = 0;
  int64_t price = 0;  // minor units
};

struct Plan {
  std::vector<SectionPlan> sections;
  uint32_t buyers = 0;
  uint32_t seats() const {
    uint32_t n = 0;
    for (const auto& s : sections) n += s.capacity;
    return n;
  }
};

SectionPlan general(std::string id, std::string name, uint32_t capacity, int64_t price) {
  return {std::move(id), std::move(name), false, 0, 0, capacity, price};
}

SectionPlan reserved(std::string id, std::string name, uint32_t rows, uint32_t per_row,
                     int64_t price) {
  return {std::move(id), std::move(name), true, rows, per_row, rows * per_row, price};
}

Plan make_plan(const DemoOptions& options) {
  Plan plan;
  if (options.small) {
    plan.sections = {general("floor", "Floor", 120, 9500),
                     reserved("orch", "Orchestra", 6, 20, 18000),
                     reserved("balc", "Balcony", 3, 20, 7000)};
    plan.buyers = kBuyersSmall;
  } else {
    plan.sections = {general("floor", "Floor", 1500, 9500),
                     reserved("orch", "Orchestra", 20, 50, 18000),
                     reserved("balc", "Balcony", 10, 50, 7000)};
    plan.buyers = kBuyersDefault;
  }
  if (options.buyers) plan.buyers = options.buyers;
  return plan;
}

std::string row_name(uint32_t index) {
  std::string name;
  for (uint32_t n = index + 1; n > 0; n = (n - 1) / 26) {
    name.insert(name.begin(), static_cast<char>('A' + (n - 1) % 26));
  }
  return name;
}

std::string event_body(const Plan& plan) {
  json::array sections;
  for (const auto& s : plan.sections) {
    json::object section{{"id", s.id}, {"name", s.name}, {"price", s.price}};
    if (s.reserved) {
      section["kind"] = "reserved";
      json::array rows;
      for (uint32_t r = 0; r < s.rows; ++r) {
        rows.push_back(json::object{{"row", row_name(r)}, {"seats", s.seats_per_row}});
      }
      section["rows"] = std::move(rows);
    } else {
      section["kind"] = "general";
      section["capacity"] = s.capacity;
    }
    sections.push_back(std::move(section));
  }
  return json::serialize(json::object{{"name", "Flash sale (boxoffice demo)"},
                                      {"starts_at", "2027-06-01T19:00:00Z"},
                                      {"currency", "USD"},
                                      {"hold_ttl_seconds", kHoldTtlSeconds},
                                      {"max_seats_per_order", kSeatsPerOrderMax},
                                      {"max_seats_per_buyer", kSeatsPerOrderMax},
                                      {"sections", std::move(sections)}});
}

// --- JSON and formatting helpers ---------------------------------------------------------------

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto value = json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

int64_t int_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return 0;
}

std::string str_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string{v->as_string()} : std::string{};
}

const json::array* array_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->as_array() : nullptr;
}

/// The problem+json code of a refusal ("seats_unavailable"), or empty.
std::string code_of(const Response& response) {
  auto body = parse_object(response.body);
  return body ? str_of(*body, "code") : std::string{};
}

std::string describe(const Response& r) {
  if (r.status == loadgen::kNoResponse) return "no response (" + r.error + ")";
  auto body = r.body.substr(0, 300);
  return "HTTP " + std::to_string(r.status) + ": " + body;
}

/// 6000 → "6,000": the report is read by people.
std::string num(int64_t n) {
  auto s = std::to_string(n < 0 ? -n : n);
  for (auto i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

std::string secs(Steady::duration d) {
  return fmt::format("{:.1f} s", std::chrono::duration<double>(d).count());
}

std::string ms(loadgen::Micros us) { return fmt::format("{:.1f}", us.count() / 1000.0); }

// --- What the crowd sees and does --------------------------------------------------------------

struct SectionState {
  std::string id;
  bool reserved = false;
  int64_t capacity = 0, available = 0, held = 0, sold = 0;
};

std::vector<SectionState> sections_of(const json::object& body) {
  std::vector<SectionState> out;
  if (const auto* sections = array_of(body, "sections")) {
    for (const auto& v : *sections) {
      if (!v.is_object()) continue;
      const auto& s = v.as_object();
      out.push_back({str_of(s, "id"), str_of(s, "kind") == "reserved", int_of(s, "capacity"),
                     int_of(s, "available"), int_of(s, "held"), int_of(s, "sold")});
    }
  }
  return out;
}

struct BookingCounts {
  int64_t pending_payment = 0, confirmed = 0, payment_failed = 0, cancelled = 0, refunded = 0;
  int64_t total() const {
    return pending_payment + confirmed + payment_failed + cancelled + refunded;
  }
  /// Nothing left for the payment processor: no charge and no refund outstanding.
  bool all_final() const { return pending_payment == 0 && cancelled == 0; }
};

BookingCounts counts_of(const json::object& stats) {
  BookingCounts c;
  if (const auto* v = stats.if_contains("bookings"); v && v->is_object()) {
    const auto& b = v->as_object();
    c = {int_of(b, "pending_payment"), int_of(b, "confirmed"), int_of(b, "payment_failed"),
         int_of(b, "cancelled"), int_of(b, "refunded")};
  }
  return c;
}

struct Tally {
  uint64_t holds_ok = 0, hold_conflicts = 0, hold_sold_out = 0, hold_refused = 0;
  uint64_t seat_map_stale = 0;  // the seat map showed nothing free: availability had moved on
  uint64_t releases = 0, checkouts = 0, checkout_refused = 0, cancels = 0;
  uint64_t no_response = 0, polls_timed_out = 0;
  uint64_t buyers_bought = 0, buyers_declined = 0, buyers_sold_out = 0, buyers_gave_up = 0;
  std::map<std::string, uint64_t, std::less<>> methods;
};

/// Everything the demo knows. All coroutines run on one thread, so none of this needs a lock.
struct Demo {
  Plan plan;
  uint64_t seed = 0;
  uint32_t concurrency = 0;
  loadgen::Origin origin;
  std::string provider_url;
  std::string jwt_secret;
  std::string admin_token;
  std::string event_id;

  loadgen::Recorder recorder;  // the buyers' requests only
  Tally tally;
  Steady::time_point started;      // the demo began
  Steady::time_point sale_opened;  // the first buyer was let in
  std::optional<Steady::duration> sold_out_after;
  std::optional<Steady::duration> buyers_done_after;
  std::optional<Steady::duration> settled_after;
  uint64_t sale_requests = 0;  // requests the buyers made

  // The monitor's latest look at the event (stats), for the progress line.
  std::vector<SectionState> sections;
  BookingCounts bookings;
  bool stop_progress = false;
  bool progress_stopped = false;

  std::string token_for(const std::string& subject, bool admin = false) const {
    jwt::MintOptions mint{subject,
                          admin ? std::vector<std::string>{"admin"} : std::vector<std::string>{},
                          std::chrono::hours{2}, "boxoffice", "boxoffice"};
    return jwt::mint_hs256(jwt_secret, mint, SystemClock{}.now());
  }
  static std::string buyer_name(uint64_t index) { return fmt::format("buyer-{:05}", index); }

  /// Sold out: no seat available in any section (held seats may still come back).
  void note_availability(const std::vector<SectionState>& seen) {
    if (sold_out_after || seen.empty()) return;
    for (const auto& s : seen) {
      if (s.available > 0) return;
    }
    sold_out_after = Steady::now() - sale_opened;
  }
};

// --- One buyer ---------------------------------------------------------------------------------

struct Choice {
  std::string section;
  std::string body;
};

/// Up to `quantity` adjacent free seats of one row, starting near a random free seat (front rows
/// are favoured, as buyers favour them), read from the section's seat map.
std::optional<Choice> pick_exact_seats(const json::object& seat_map, const std::string& section,
                                       uint32_t quantity, std::mt19937_64& rng) {
  struct Seat {
    std::string id;
    std::string row;
    int number = 0;
    bool free = false;
  };
  std::vector<Seat> seats;
  std::vector<size_t> free;
  if (const auto* list = array_of(seat_map, "seats")) {
    for (const auto& v : *list) {
      if (!v.is_object()) continue;
      Seat seat{str_of(v.as_object(), "id"), {}, 0, str_of(v.as_object(), "status") == "available"};
      const auto first = seat.id.find(':');
      const auto last = seat.id.rfind(':');
      if (first == std::string::npos || first == last) continue;
      seat.row = seat.id.substr(first + 1, last - first - 1);
      seat.number = std::atoi(seat.id.c_str() + last + 1);
      if (seat.free) free.push_back(seats.size());
      seats.push_back(std::move(seat));
    }
  }
  if (free.empty()) return std::nullopt;
  const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
  const size_t start = free[std::min(free.size() - 1, static_cast<size_t>(u * u * free.size()))];
  auto adjacent = [&seats](size_t a, size_t b) {
    return seats[b].free && seats[a].row == seats[b].row && seats[b].number == seats[a].number + 1;
  };
  size_t first = start, last = start;
  while (last - first + 1 < quantity && last + 1 < seats.size() && adjacent(last, last + 1)) ++last;
  while (last - first + 1 < quantity && first > 0 && adjacent(first - 1, first)) --first;
  json::array ids;
  for (size_t i = first; i <= last; ++i) ids.emplace_back(seats[i].id);
  return Choice{section, json::serialize(json::object{{"seats", std::move(ids)}})};
}

/// A hold to try: exact seats from a seat map (35%), best available in a reserved section (35%)
/// or general admission (30%), for 1-4 seats, in a section that has seats and has not refused
/// this buyer as sold out. nullopt: nothing left to try.
net::awaitable<std::optional<Choice>> choose(Demo& d, Connection& conn,
                                             const std::vector<SectionState>& sections,
                                             const std::set<std::string>& exhausted,
                                             std::mt19937_64& rng) {
  const double mode = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
  const bool want_reserved = mode < 0.70;
  std::vector<const SectionState*> open, preferred;
  for (const auto& s : sections) {
    if (s.available <= 0 || exhausted.contains(s.id)) continue;
    open.push_back(&s);
    if (s.reserved == want_reserved) preferred.push_back(&s);
  }
  const auto& pool = preferred.empty() ? open : preferred;
  if (pool.empty()) co_return std::nullopt;
  // Busier sections draw more buyers: weight by seats available.
  std::vector<double> weights;
  for (const auto* s : pool) weights.push_back(static_cast<double>(s->available));
  const auto& section =
      *pool[std::discrete_distribution<size_t>{weights.begin(), weights.end()}(rng)];
  auto quantity = std::uniform_int_distribution<uint32_t>{1, kSeatsPerOrderMax}(rng);
  quantity = static_cast<uint32_t>(std::min<int64_t>(quantity, section.available));

  if (section.reserved && mode < 0.35) {
    auto map = co_await conn.send(
        request("GET", "/v1/events/" + d.event_id + "/sections/" + section.id + "/seats", {}, {},
                "seat_map"));
    if (map.status == 200) {
      if (auto body = parse_object(map.body)) {
        if (auto picked = pick_exact_seats(*body, section.id, quantity, rng)) co_return picked;
        ++d.tally.seat_map_stale;
      }
    }
    // No usable seat map: fall back to best available, as a buyer would click "any seats".
  }
  co_return Choice{section.id,
                   json::serialize(json::object{{"section", section.id}, {"quantity", quantity}})};
}

std::string pick_payment_method(std::mt19937_64& rng) {
  double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
  for (const auto& share : kPaymentMix) {
    if (u < share.share) return std::string{share.method};
    u -= share.share;
  }
  return std::string{kPaymentMix[0].method};
}

/// Waits for a booking to leave pending_payment, as a buyer's page polls; its final status, or
/// empty when it did not settle in time.
net::awaitable<std::string> await_final(Demo& d, Connection& conn, const std::string& token,
                                        const std::string& booking_id) {
  const auto give_up = Steady::now() + kBookingPollFor;
  while (Steady::now() < give_up) {
    co_await loadgen::sleep_for(kBookingPollInterval);
    auto r = co_await conn.send(request("GET", "/v1/bookings/" + booking_id, {}, token, "booking"));
    if (r.status != 200) {
      if (r.status == loadgen::kNoResponse) ++d.tally.no_response;
      continue;
    }
    auto body = parse_object(r.body);
    const auto status = body ? str_of(*body, "status") : std::string{};
    if (!status.empty() && status != "pending_payment") co_return status;
  }
  ++d.tally.polls_timed_out;
  co_return std::string{};
}

net::awaitable<void> buyer(Demo& d, Connection& conn, uint64_t index) {
  // Each buyer's choices depend only on the seed and its number; what they get depends on timing.
  std::mt19937_64 rng(d.seed ^ (0x9E3779B97F4A7C15ull * (index + 1)));
  std::uniform_real_distribution<double> chance{0.0, 1.0};
  const auto token = d.token_for(Demo::buyer_name(index));
  auto& t = d.tally;

  std::set<std::string> exhausted;  // sections that answered sold_out to this buyer
  std::optional<std::string> hold_id;
  int attempts = 0, patience = 0;
  while (!hold_id) {
    if (attempts >= kHoldAttemptsMax) {
      ++t.buyers_gave_up;
      co_return;
    }
    auto r = co_await conn.send(
        request("GET", "/v1/events/" + d.event_id + "/availability", {}, {}, "availability"));
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    if (!body) {
      if (r.status == loadgen::kNoResponse) ++t.no_response;
      ++t.buyers_gave_up;
      co_return;
    }
    const auto sections = sections_of(*body);
    d.note_availability(sections);
    auto choice = co_await choose(d, conn, sections, exhausted, rng);
    if (!choice) {
      int64_t held = 0;
      for (const auto& s : sections) held += s.held;
      if (held == 0 || ++patience > kPatienceRoundsMax) {
        ++t.buyers_sold_out;
        co_return;
      }
      // Everything is held, not sold: a decline or a release may free seats soon.
      const auto jitter = std::uniform_int_distribution<int>{0, 100}(rng);
      co_await loadgen::sleep_for(kPatienceInterval + std::chrono::milliseconds{jitter});
      continue;
    }
    ++attempts;
    auto hold = co_await conn.send(
        request("POST", "/v1/events/" + d.event_id + "/holds", choice->body, token, "hold"));
    if (hold.status == 201) {
      ++t.holds_ok;
      auto created = parse_object(hold.body);
      hold_id = created ? str_of(*created, "id") : std::string{};
      continue;
    }
    const auto code = code_of(hold);
    if (hold.status == 409 && code == "seats_unavailable") {
      ++t.hold_conflicts;  // someone was faster: try other seats
    } else if (hold.status == 409 && code == "sold_out") {
      ++t.hold_sold_out;
      exhausted.insert(choice->section);
    } else {
      if (hold.status == loadgen::kNoResponse) {
        ++t.no_response;
      } else {
        ++t.hold_refused;
        spdlog::warn("buyer {}: hold refused: {}", index, describe(hold));
      }
      ++t.buyers_gave_up;
      co_return;
    }
  }
  if (hold_id->empty()) {
    ++t.buyers_gave_up;
    co_return;
  }

  if (chance(rng) < kReleaseRate) {
    auto r = co_await conn.send(request("DELETE", "/v1/holds/" + *hold_id, {}, token, "release"));
    if (r.status == 204) ++t.releases;
    co_return;
  }

  const auto method = pick_payment_method(rng);
  const auto checkout_body = json::serialize(json::object{{"payment_method", method}});
  auto checkout = co_await conn.send(
      request("POST", "/v1/holds/" + *hold_id + "/checkout", checkout_body, token, "checkout"));
  if (checkout.status != 202) {
    if (checkout.status == loadgen::kNoResponse) {
      ++t.no_response;
    } else {
      ++t.checkout_refused;
      if (code_of(checkout) != "hold_expired") {
        spdlog::warn("buyer {}: checkout refused: {}", index, describe(checkout));
      }
    }
    co_return;
  }
  ++t.checkouts;
  ++t.methods[method];
  auto booking = parse_object(checkout.body);
  const auto booking_id = booking ? str_of(*booking, "id") : std::string{};
  if (booking_id.empty()) co_return;

  const auto status = co_await await_final(d, conn, token, booking_id);
  if (status == "payment_failed") ++t.buyers_declined;
  if (status != "confirmed") co_return;
  ++t.buyers_bought;
  if (chance(rng) < kCancelRate) {
    auto r = co_await conn.send(
        request("POST", "/v1/bookings/" + booking_id + "/cancel", {}, token, "cancel"));
    if (r.status == 202) ++t.cancels;
  }
}

// --- The progress line -------------------------------------------------------------------------

size_t terminal_columns() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 120;
}

std::string progress_line(const Demo& d, double requests_per_second) {
  int64_t available = 0, held = 0, sold = 0;
  for (const auto& s : d.sections) {
    available += s.available;
    held += s.held;
    sold += s.sold;
  }
  const auto& b = d.bookings;
  const auto& t = d.tally;
  // Short enough for an 80-column terminal; the legend is printed once when the sale opens.
  return fmt::format(
      "{:6.1f}s {:>7} req/s | holds {} ok, {} conflicts | bookings {}/{}/{}/{} | "
      "seats {}/{}/{}",
      std::chrono::duration<double>(Steady::now() - d.started).count(),
      num(static_cast<int64_t>(requests_per_second)), num(t.holds_ok), num(t.hold_conflicts),
      num(b.pending_payment), num(b.confirmed), num(b.payment_failed),
      num(b.cancelled + b.refunded), num(available), num(held), num(sold));
}

/// Watches the event as an admin dashboard would (GET stats), and draws the progress line.
net::awaitable<void> monitor(Demo& d) {
  // The executor first, in a statement of its own: g++ 12 mishandles a temporary that shares a
  // full expression with co_await (the options below were destroyed before their use).
  auto executor = co_await net::this_coro::executor;
  Connection conn(executor, d.origin, {std::chrono::seconds{10}});
  const bool tty = isatty(STDERR_FILENO) == 1;
  const auto print_every = tty ? kProgressInterval : kProgressPlainInterval;
  auto last_print = Steady::now();
  auto last_requests = d.recorder.requests();
  bool printed = false;
  while (!d.stop_progress) {
    auto r = co_await conn.send(
        request("GET", "/v1/events/" + d.event_id + "/stats", {}, d.admin_token, {}));
    if (auto body = r.status == 200 ? parse_object(r.body) : std::nullopt) {
      d.sections = sections_of(*body);
      d.bookings = counts_of(*body);
      d.note_availability(d.sections);
    }
    const auto now = Steady::now();
    if (now - last_print >= print_every || !printed) {
      const auto requests = d.recorder.requests();
      const double seconds = std::chrono::duration<double>(now - last_print).count();
      auto line =
          progress_line(d, printed && seconds > 0 ? (requests - last_requests) / seconds : 0);
      if (tty) {
        // One line, redrawn in place: cut to the terminal's width so it never wraps.
        line.resize(std::min(line.size(), terminal_columns() - 1));
        std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
      } else {
        std::fprintf(stderr, "%s\n", line.c_str());
      }
      std::fflush(stderr);
      last_print = now;
      last_requests = requests;
      printed = true;
    }
    co_await loadgen::sleep_for(kProgressInterval);
  }
  if (tty && printed) std::fprintf(stderr, "\n");
  std::fflush(stderr);
  d.progress_stopped = true;
}

// --- Verification ------------------------------------------------------------------------------

struct BookingView {
  std::string id, buyer, section, status, currency;
  std::vector<std::string> seats;
  int64_t quantity = 0, amount = 0, attempts = 0;
};

struct LedgerCharge {
  std::string key, currency, method, outcome;
  int64_t amount = 0;
  bool refunded = false;
};

struct Check {
  std::string name;
  std::string figures;
  std::vector<std::string> problems;
  bool pass() const { return problems.empty(); }
  void fail(std::string problem) { problems.push_back(std::move(problem)); }
};

struct Evidence {
  json::object stats;
  std::vector<SectionState> sections;
  BookingCounts counts;
  std::map<std::string, std::set<std::string>> sold_seats;  // reserved section → seat map "sold"
  std::vector<BookingView> bookings;                        // every buyer's bookings of this event
  std::vector<LedgerCharge> charges;
  std::vector<std::string> foreign_keys;  // charges for bookings of other events in the data dir
  std::vector<std::string> errors;        // evidence that could not be read
};

bool is_live(const std::string& status) {
  return status == "pending_payment" || status == "confirmed" || status == "cancelled";
}

net::awaitable<Evidence> gather(Demo& d) {
  auto executor = co_await net::this_coro::executor;
  Evidence e;
  Connection admin(executor, d.origin, {std::chrono::seconds{30}});

  auto stats = co_await admin.send(
      request("GET", "/v1/events/" + d.event_id + "/stats", {}, d.admin_token, {}));
  if (auto body = stats.status == 200 ? parse_object(stats.body) : std::nullopt) {
    e.stats = *body;
    e.sections = sections_of(*body);
    e.counts = counts_of(*body);
  } else {
    e.errors.push_back("GET stats: " + describe(stats));
  }

  for (const auto& section : d.plan.sections) {
    if (!section.reserved) continue;
    auto map = co_await admin.send(request(
        "GET", "/v1/events/" + d.event_id + "/sections/" + section.id + "/seats", {}, {}, {}));
    auto body = map.status == 200 ? parse_object(map.body) : std::nullopt;
    const auto* seats = body ? array_of(*body, "seats") : nullptr;
    if (!seats) {
      e.errors.push_back("GET seat map of " + section.id + ": " + describe(map));
      continue;
    }
    auto& sold = e.sold_seats[section.id];
    for (const auto& v : *seats) {
      if (v.is_object() && str_of(v.as_object(), "status") == "sold") {
        sold.insert(str_of(v.as_object(), "id"));
      }
    }
  }

  // Every buyer's own list, with their own token: what the buyers were really sold, not what
  // this program remembers of it.
  std::vector<Connection> connections;
  for (uint32_t i = 0; i < std::max<uint32_t>(1, d.concurrency); ++i) {
    connections.emplace_back(executor, d.origin,
                             loadgen::ConnectionOptions{std::chrono::seconds{30}});
  }
  std::vector<std::vector<BookingView>> per_buyer(d.plan.buyers);
  std::vector<std::string> list_errors;
  auto list = [&](size_t worker, uint64_t index) -> net::awaitable<void> {
    const auto name = Demo::buyer_name(index);
    auto r = co_await connections[worker].send(
        request("GET", "/v1/bookings", {}, d.token_for(name), {}));
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    const auto* items = body ? array_of(*body, "bookings") : nullptr;
    if (!items) {
      list_errors.push_back("GET /v1/bookings as " + name + ": " + describe(r));
      co_return;
    }
    for (const auto& v : *items) {
      if (!v.is_object()) continue;
      const auto& b = v.as_object();
      if (str_of(b, "event_id") != d.event_id) continue;
      BookingView view{str_of(b, "id"),
                       name,
                       str_of(b, "section"),
                       str_of(b, "status"),
                       str_of(b, "currency"),
                       {},
                       int_of(b, "quantity"),
                       int_of(b, "amount"),
                       0};
      if (const auto* seats = array_of(b, "seats")) {
        for (const auto& s : *seats) {
          if (s.is_string()) view.seats.emplace_back(s.as_string());
        }
      }
      if (const auto* p = b.if_contains("payment"); p && p->is_object()) {
        view.attempts = int_of(p->as_object(), "attempts");
      }
      per_buyer[index].push_back(std::move(view));
    }
  };
  co_await loadgen::run_jobs(
      connections.size(), d.plan.buyers,
      [&list](size_t worker, uint64_t index) { return list(worker, index); });
  for (auto& bookings : per_buyer) {
    for (auto& b : bookings) e.bookings.push_back(std::move(b));
  }
  if (!list_errors.empty()) {
    e.errors.push_back(num(static_cast<int64_t>(list_errors.size())) +
                       " buyers' booking lists could not be read, e.g. " + list_errors.front());
  }

  // The payment provider's own account of every charge it made.
  if (auto provider = loadgen::parse_origin(d.provider_url)) {
    Connection ledger_conn(executor, *provider, {std::chrono::seconds{30}});
    auto ledger = co_await ledger_conn.send(request("GET", "/v1/ledger", {}, {}, {}));
    auto body = ledger.status == 200 ? parse_object(ledger.body) : std::nullopt;
    const auto* charges = body ? array_of(*body, "charges") : nullptr;
    if (charges) {
      for (const auto& v : *charges) {
        if (!v.is_object()) continue;
        const auto& c = v.as_object();
        const auto* refunded = c.if_contains("refunded");
        e.charges.push_back({str_of(c, "idempotency_key"), str_of(c, "currency"),
                             str_of(c, "payment_method"), str_of(c, "outcome"), int_of(c, "amount"),
                             refunded && refunded->is_bool() && refunded->as_bool()});
      }
    } else {
      e.errors.push_back("GET " + d.provider_url + "/v1/ledger: " + describe(ledger));
    }
  } else {
    e.errors.push_back("the payment provider URL " + d.provider_url + " is not http://host:port");
  }

  // A charge for a booking no buyer listed: another event's (a --data-dir with older sales), or
  // a charge nobody can account for. An admin may read any booking, so ask.
  std::unordered_set<std::string> ours;
  for (const auto& b : e.bookings) ours.insert(b.id);
  std::vector<LedgerCharge> kept;
  for (auto& c : e.charges) {
    if (ours.contains(c.key)) {
      kept.push_back(std::move(c));
      continue;
    }
    auto r = co_await admin.send(request("GET", "/v1/bookings/" + c.key, {}, d.admin_token, {}));
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    if (body && str_of(*body, "event_id") != d.event_id) {
      e.foreign_keys.push_back(c.key);
    } else {
      kept.push_back(std::move(c));  // the checks below report it
    }
  }
  e.charges = std::move(kept);
  co_return e;
}

Check check_no_seat_twice(const Evidence& e) {
  Check check{"no seat sold twice", {}, {}};
  std::unordered_map<std::string, std::string> owner;  // seat → booking
  size_t live = 0, seats = 0;
  for (const auto& b : e.bookings) {
    if (!is_live(b.status)) continue;
    ++live;
    for (const auto& seat : b.seats) {
      ++seats;
      auto [it, inserted] = owner.emplace(seat, b.id);
      if (!inserted) check.fail(seat + " is in " + it->second + " and " + b.id);
    }
  }
  check.figures =
      fmt::format("{} reserved seats in {} live bookings, {}", num(static_cast<int64_t>(seats)),
                  num(static_cast<int64_t>(live)),
                  check.pass() ? "none in two of them"
                               : num(static_cast<int64_t>(check.problems.size())) + " in two");
  return check;
}

Check check_capacity(const Demo& d, const Evidence& e) {
  Check check{"sold within capacity", {}, {}};
  std::map<std::string, int64_t> confirmed_seats;
  std::map<std::string, std::set<std::string>> confirmed_ids;
  for (const auto& b : e.bookings) {
    if (b.status != "confirmed") continue;
    confirmed_seats[b.section] += b.quantity;
    confirmed_ids[b.section].insert(b.seats.begin(), b.seats.end());
  }
  std::vector<std::string> parts;
  for (const auto& plan : d.plan.sections) {
    const auto found = std::find_if(e.sections.begin(), e.sections.end(),
                                    [&plan](const SectionState& s) { return s.id == plan.id; });
    if (found == e.sections.end()) {
      check.fail("section " + plan.id + " is missing from the stats");
      continue;
    }
    const auto& s = *found;
    if (s.capacity != plan.capacity) {
      check.fail(fmt::format("{}: capacity {} but the event was created with {}", s.id, s.capacity,
                             plan.capacity));
    }
    if (s.sold > s.capacity)
      check.fail(fmt::format("{}: {} sold > capacity {}", s.id, s.sold, s.capacity));
    if (s.available + s.held + s.sold != s.capacity) {
      check.fail(fmt::format("{}: available {} + held {} + sold {} != capacity {}", s.id,
                             s.available, s.held, s.sold, s.capacity));
    }
    if (s.sold != confirmed_seats[s.id]) {
      check.fail(fmt::format("{}: {} sold, but confirmed bookings hold {} seats", s.id, s.sold,
                             confirmed_seats[s.id]));
    }
    if (plan.reserved) {
      const auto map = e.sold_seats.find(s.id);
      if (map != e.sold_seats.end() && map->second != confirmed_ids[s.id]) {
        check.fail(fmt::format("{}: the seat map shows {} seats sold, confirmed bookings name {}",
                               s.id, map->second.size(), confirmed_ids[s.id].size()));
      }
    }
    parts.push_back(fmt::format("{} {}/{}", s.id, num(s.sold), num(s.capacity)));
  }
  check.figures = fmt::format(
      "sold/capacity {}; available + held + sold = capacity in each; sold = seats of confirmed "
      "bookings{}",
      fmt::join(parts, ", "), e.sold_seats.empty() ? "" : " (seat maps agree seat by seat)");
  return check;
}

Check check_no_double_charge(const Evidence& e) {
  Check check{"no double charge", {}, {}};
  std::unordered_map<std::string, const BookingView*> bookings;
  for (const auto& b : e.bookings) bookings.emplace(b.id, &b);
  std::unordered_map<std::string, std::vector<const LedgerCharge*>> by_key;
  int64_t approved = 0, declined = 0, refunded = 0;
  for (const auto& c : e.charges) {
    by_key[c.key].push_back(&c);
    if (c.outcome == "approved") ++approved;
    if (c.outcome == "declined") ++declined;
    if (c.refunded) ++refunded;
  }
  for (const auto& [key, charges] : by_key) {
    if (charges.size() > 1) {
      check.fail(fmt::format("booking {} was charged {} times", key, charges.size()));
    }
    const auto found = bookings.find(key);
    if (found == bookings.end()) {
      check.fail("charge with idempotency key " + key + " belongs to no booking");
      continue;
    }
    const auto& b = *found->second;
    for (const auto* c : charges) {
      if (c->amount != b.amount || c->currency != b.currency) {
        check.fail(fmt::format("booking {}: charged {} {}, booked {} {}", key, c->amount,
                               c->currency, b.amount, b.currency));
      }
      if (c->outcome == "approved" && !c->refunded && b.status != "confirmed") {
        check.fail("booking " + key + " is " + b.status + " but its approved charge is kept");
      }
      if (c->outcome == "approved" && c->refunded && b.status != "refunded") {
        check.fail("booking " + key + " is " + b.status + " but its charge was refunded");
      }
      if (c->outcome == "declined" && b.status != "payment_failed") {
        check.fail("booking " + key + " is " + b.status + " but its charge was declined");
      }
    }
  }
  for (const auto& b : e.bookings) {
    const auto found = by_key.find(b.id);
    const auto charges = found == by_key.end() ? std::vector<const LedgerCharge*>{} : found->second;
    const auto kept = std::count_if(charges.begin(), charges.end(), [](const LedgerCharge* c) {
      return c->outcome == "approved" && !c->refunded;
    });
    const auto returned = std::count_if(charges.begin(), charges.end(), [](const LedgerCharge* c) {
      return c->outcome == "approved" && c->refunded;
    });
    if (b.status == "confirmed" && kept != 1) {
      check.fail(fmt::format("confirmed booking {} has {} approved charges kept", b.id, kept));
    }
    if (b.status == "refunded" && (returned != 1 || kept != 0)) {
      check.fail(
          fmt::format("refunded booking {}: {} charges refunded, {} kept", b.id, returned, kept));
    }
  }
  check.figures = fmt::format(
      "{} charges for {} bookings: {} approved ({} refunded), {} declined; each confirmed booking "
      "charged once, each refunded booking's charge refunded",
      num(static_cast<int64_t>(e.charges.size())), num(static_cast<int64_t>(e.bookings.size())),
      num(approved), num(refunded), num(declined));
  return check;
}

Check check_nothing_pending(const Evidence& e) {
  Check check{"no booking left pending", {}, {}};
  const auto& c = e.counts;
  if (c.pending_payment) check.fail(num(c.pending_payment) + " bookings still pending_payment");
  if (c.cancelled) check.fail(num(c.cancelled) + " cancelled bookings still awaiting their refund");
  int64_t unsettled = 0;
  for (const auto& b : e.bookings)
    unsettled += b.status == "pending_payment" || b.status == "cancelled";
  if (unsettled && !c.pending_payment && !c.cancelled) {
    check.fail(num(unsettled) + " bookings in buyers' lists are not final");
  }
  if (static_cast<int64_t>(e.bookings.size()) != c.total()) {
    check.fail(fmt::format("buyers' lists hold {} bookings of the event, the stats count {}",
                           e.bookings.size(), c.total()));
  }
  check.figures = fmt::format(
      "{} bookings, {} pending_payment, {} cancelled awaiting refund; buyers' lists and the "
      "stats agree ({} = {})",
      num(c.total()), num(c.pending_payment), num(c.cancelled),
      num(static_cast<int64_t>(e.bookings.size())), num(c.total()));
  return check;
}

// --- The report --------------------------------------------------------------------------------

std::string statuses_text(const std::map<int, uint64_t>& statuses) {
  std::vector<std::string> parts;
  for (const auto& [status, n] : statuses) {
    parts.push_back(fmt::format(
        "{} ×{}", status == loadgen::kNoResponse ? std::string{"none"} : std::to_string(status),
        num(static_cast<int64_t>(n))));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

bool report(const Demo& d, const Evidence& e) {
  std::ostringstream out;
  const auto& plan = d.plan;
  const auto& t = d.tally;
  out << "\n# boxoffice demo: a flash sale, end to end\n\n";
  std::vector<std::string> layout;
  for (const auto& s : plan.sections) {
    layout.push_back(s.reserved
                         ? fmt::format("{} reserved, {} rows × {}", s.id, s.rows, s.seats_per_row)
                         : fmt::format("{} general admission, {}", s.id, num(s.capacity)));
  }
  out << fmt::format("Event {}: {} seats ({}); holds last {} s; at most {} seats per buyer.\n",
                     d.event_id, num(plan.seats()), fmt::join(layout, "; "), kHoldTtlSeconds,
                     kSeatsPerOrderMax);
  out << fmt::format(
      "{} buyers, {} at a time, each with its own token and keep-alive connection (seed {}).\n",
      num(plan.buyers), d.concurrency, d.seed);
  out << fmt::format(
      "Embedded engines over real HTTP: in-memory seat locks, SQLite bookings and payment queue, "
      "payment simulator at {} ({} ms per charge).\n\n",
      d.provider_url, kSimLatencyMs);

  out << "## Timeline\n\n";
  out << "| moment | after the sale opened |\n|---|---|\n";
  out << "| sold out (no seat available in any section) | "
      << (d.sold_out_after ? secs(*d.sold_out_after) : std::string{"never"}) << " |\n";
  if (d.buyers_done_after) out << "| last buyer done | " << secs(*d.buyers_done_after) << " |\n";
  out << "| every booking final | "
      << (d.settled_after ? secs(*d.settled_after) : "not within " + secs(kSettleFor)) << " |\n";
  out << "| report (whole demo, start-up included) | " << secs(Steady::now() - d.started)
      << " total |\n\n";

  out << "## Traffic\n\n";
  const double sale_seconds =
      d.buyers_done_after ? std::chrono::duration<double>(*d.buyers_done_after).count() : 0.0;
  out << fmt::format(
      "{} requests from buyers in {:.1f} s: {} requests/s. Latency in ms:\n\n",
      num(static_cast<int64_t>(d.sale_requests)), sale_seconds,
      num(sale_seconds > 0 ? static_cast<int64_t>(d.sale_requests / sale_seconds) : 0));
  out << "| route | requests | p50 | p90 | p99 | max | statuses "
         "|\n|---|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : d.recorder.summary()) {
    out << fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", r.route,
                       num(static_cast<int64_t>(r.requests)), ms(r.latency.p50), ms(r.latency.p90),
                       ms(r.latency.p99), ms(r.latency.max), statuses_text(r.statuses));
  }
  for (const auto& route : {"hold", "checkout"}) {
    if (auto r = d.recorder.route(route)) {
      out << fmt::format("\n{} latency: p50 {} ms, p99 {} ms.", route, ms(r->latency.p50),
                         ms(r->latency.p99));
    }
  }
  out << "\n\n## Buyers\n\n";
  out << fmt::format(
      "- holds: {} made, {} conflicts (409 seats_unavailable: someone was faster), {} refused as "
      "sold out; {} seat maps already stale\n",
      num(t.holds_ok), num(t.hold_conflicts), num(t.hold_sold_out), num(t.seat_map_stale));
  std::vector<std::string> methods;
  for (const auto& [method, n] : t.methods) methods.push_back(fmt::format("{} {}", method, num(n)));
  out << fmt::format("- {} holds released, {} checkouts ({}), {} checkouts refused\n",
                     num(t.releases), num(t.checkouts), fmt::join(methods, ", "),
                     num(t.checkout_refused));
  out << fmt::format(
      "- {} buyers got tickets ({} then cancelled), {} were declined, {} left with nothing "
      "(sold out), {} gave up after {} tries\n",
      num(t.buyers_bought), num(t.cancels), num(t.buyers_declined), num(t.buyers_sold_out),
      num(t.buyers_gave_up), kHoldAttemptsMax);
  if (t.no_response || t.hold_refused || t.polls_timed_out) {
    out << fmt::format(
        "- {} requests without a response, {} holds refused otherwise, {} bookings "
        "not final within {} s of polling\n",
        num(t.no_response), num(t.hold_refused), num(t.polls_timed_out),
        std::chrono::duration_cast<std::chrono::seconds>(kBookingPollFor).count());
  }

  const auto& c = e.counts;
  out << "\n## Bookings by status\n\n";
  out << "| confirmed | payment_failed | refunded | cancelled | pending_payment | total |\n"
         "|---:|---:|---:|---:|---:|---:|\n";
  out << fmt::format("| {} | {} | {} | {} | {} | {} |\n", num(c.confirmed), num(c.payment_failed),
                     num(c.refunded), num(c.cancelled), num(c.pending_payment), num(c.total()));
  if (const auto* revenue = e.stats.if_contains("revenue"); revenue && revenue->is_number()) {
    out << fmt::format("\nRevenue: {} USD.\n", num(int_of(e.stats, "revenue") / 100));
  }

  out << "\n## Payments\n\n";
  int64_t approved = 0, declined = 0, refunded = 0, attempts = 0;
  for (const auto& charge : e.charges) {
    approved += charge.outcome == "approved";
    declined += charge.outcome == "declined";
    refunded += charge.refunded;
  }
  for (const auto& b : e.bookings) attempts += b.attempts;
  out << fmt::format(
      "- charges made (the simulator's ledger): {}: {} approved, {} declined; {} of the approved "
      "refunded\n",
      num(static_cast<int64_t>(e.charges.size())), num(approved), num(declined), num(refunded));
  // The processor's own count when the stats carry it; else what the bookings recorded.
  const auto* p = e.stats.if_contains("payments");
  const auto* payments = p && p->is_object() ? &p->as_object() : nullptr;
  if (payments && payments->contains("attempts")) attempts = int_of(*payments, "attempts");
  out << fmt::format(
      "- attempts: {} for {} charges ({} retried: a flaky card fails twice before it is approved, "
      "a "
      "slow card's first attempt times out)",
      num(attempts), num(static_cast<int64_t>(e.charges.size())),
      num(attempts - static_cast<int64_t>(e.charges.size())));
  if (payments) {
    out << fmt::format("; {} declines, {} dead-lettered (stats)",
                       num(int_of(*payments, "declines")), num(int_of(*payments, "dead_lettered")));
  }
  out << "\n";
  if (!e.foreign_keys.empty()) {
    out << fmt::format("- {} charges belong to other events in this data directory (left out)\n",
                       e.foreign_keys.size());
  }

  out << "\n## Seats\n\n| section | capacity | sold | held | available "
         "|\n|---|---:|---:|---:|---:|\n";
  for (const auto& s : e.sections) {
    out << fmt::format("| {} | {} | {} | {} | {} |\n", s.id, num(s.capacity), num(s.sold),
                       num(s.held), num(s.available));
  }

  std::vector<Check> checks{check_no_seat_twice(e), check_capacity(d, e), check_no_double_charge(e),
                            check_nothing_pending(e)};
  if (!e.errors.empty()) {
    // Evidence that could not be read proves nothing: every check fails with the reason.
    for (auto& check : checks) {
      for (const auto& error : e.errors) check.fail("could not verify: " + error);
    }
  }
  out << "\n## Invariants\n\n";
  size_t passed = 0;
  for (const auto& check : checks) {
    out << fmt::format("- {} {}: {}\n", check.pass() ? "PASS" : "FAIL", check.name, check.figures);
    for (size_t i = 0; i < check.problems.size() && i < kProblemsShownMax; ++i) {
      out << "    - " << check.problems[i] << "\n";
    }
    if (check.problems.size() > kProblemsShownMax) {
      out << fmt::format("    - and {} more\n", check.problems.size() - kProblemsShownMax);
    }
    passed += check.pass();
  }
  const bool ok = passed == checks.size();
  out << fmt::format("\n{}: {} of {} invariant checks passed.\n", ok ? "PASS" : "FAIL", passed,
                     checks.size());
  std::cout << out.str() << std::flush;
  return ok;
}

// --- The whole run -----------------------------------------------------------------------------

/// Could not run the sale at all (not an invariant failure).
class DemoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

net::awaitable<bool> run_sale(Demo& d) {
  auto executor = co_await net::this_coro::executor;
  // However the sale ends, the monitor must stop too, or the client's loop would never return.
  struct StopMonitor {
    Demo& d;
    ~StopMonitor() { d.stop_progress = true; }
  } stop_monitor{d};
  Connection admin(executor, d.origin, {std::chrono::seconds{30}});
  auto created =
      co_await admin.send(request("POST", "/v1/events", event_body(d.plan), d.admin_token, {}));
  auto event = created.status == 201 ? parse_object(created.body) : std::nullopt;
  if (!event || str_of(*event, "id").empty()) {
    throw DemoError("creating the event failed: " + describe(created));
  }
  d.event_id = str_of(*event, "id");
  std::fprintf(stderr,
               "event %s: %u seats; %u buyers, %u at a time\n"
               "progress: bookings pending/confirmed/failed/cancelled, seats free/held/sold\n",
               d.event_id.c_str(), d.plan.seats(), d.plan.buyers, d.concurrency);

  d.sale_opened = Steady::now();
  net::co_spawn(executor, monitor(d), net::detached);
  std::vector<Connection> connections;
  for (uint32_t i = 0; i < d.concurrency; ++i) {
    connections.emplace_back(executor, d.origin, loadgen::ConnectionOptions{}, &d.recorder);
  }
  co_await loadgen::run_jobs(d.concurrency, d.plan.buyers, [&](size_t worker, uint64_t index) {
    return buyer(d, connections[worker], index);
  });
  d.buyers_done_after = Steady::now() - d.sale_opened;
  d.sale_requests = d.recorder.requests();
  connections.clear();

  // Payments still in flight, refunds still queued: wait until every booking is final.
  const auto give_up = Steady::now() + kSettleFor;
  for (;;) {
    auto r = co_await admin.send(
        request("GET", "/v1/events/" + d.event_id + "/stats", {}, d.admin_token, {}));
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    if (body && counts_of(*body).all_final()) {
      d.settled_after = Steady::now() - d.sale_opened;
      break;
    }
    if (Steady::now() >= give_up) break;
    co_await loadgen::sleep_for(kProgressInterval);
  }
  d.stop_progress = true;
  while (!d.progress_stopped) co_await loadgen::sleep_for(std::chrono::milliseconds{20});

  std::fprintf(stderr, "verifying: every buyer's bookings, the seat maps, the payment ledger\n");
  auto evidence = co_await gather(d);
  co_return report(d, evidence);
}

std::filesystem::path make_temp_dir() {
  auto pattern = (std::filesystem::temp_directory_path() / "boxoffice-demo-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    throw DemoError("cannot create a temporary directory in " +
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

  Demo d;
  d.plan = make_plan(options);
  d.concurrency = std::min(options.concurrency, std::max<uint32_t>(1, d.plan.buyers));
  d.seed = options.seed ? *options.seed : std::random_device{}();
  d.started = Steady::now();

  std::filesystem::path data_dir = options.data_dir;
  const bool temporary = data_dir.empty();
  try {
    if (temporary) data_dir = make_temp_dir();
  } catch (const DemoError& e) {
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
    config.log_level = "warn";
    d.jwt_secret = config.jwt_secret;
    d.admin_token = d.token_for("demo-admin", /*admin=*/true);

    Background background(config);
    d.origin = {"127.0.0.1", background.system().port()};
    d.provider_url = background.system().payment_provider_url();
    std::fprintf(stderr, "boxoffice demo: serving on http://127.0.0.1:%u, data in %s, seed %llu\n",
                 d.origin.port, data_dir.c_str(), static_cast<unsigned long long>(d.seed));

    net::io_context ioc(1);
    std::exception_ptr failure;
    bool passed = false;
    bool interrupted = false;
    // Ctrl-C ends the demo cleanly: the server drains and the temporary directory goes.
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      interrupted = true;
      ioc.stop();
    });
    net::co_spawn(ioc, run_sale(d), [&](std::exception_ptr e, bool ok) {
      failure = e;
      passed = ok;
      signals.cancel();
    });
    ioc.run();
    if (interrupted) {
      std::cerr << "\nboxoffice demo: interrupted; no report\n";
      code = 130;
    } else {
      if (failure) std::rethrow_exception(failure);
      code = passed ? 0 : 1;
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

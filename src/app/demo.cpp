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
#include <deque>
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
#include "domain/time.h"
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
// Short, so that holds their buyers walk away from expire while others still wait for seats.
constexpr uint32_t kHoldTtlSeconds = 15;
constexpr uint32_t kHoldTtlSecondsSmall = 10;  // the shortest an event allows
constexpr int kHoldAttemptsMax = 6;  // holds tried per buyer (conflicts, sold-out sections)
constexpr auto kBookingPollInterval = 200ms;
constexpr auto kBookingPollFor = 60s;  // a buyer stops watching a booking after this
// After the last buyer was let in, the demo waits this long for the sale to be over: every
// booking final, no offer open, nothing left that could come back to a waitlist.
constexpr auto kSettleFor = 120s;
constexpr auto kSettlePollInterval = 250ms;
// The sale is over once nothing has moved for this long: the server's waitlist sweeper (every
// 0.5 s) has had several turns to offer seats that came back.
constexpr auto kQuietFor = 1500ms;
constexpr auto kSweepMargin = 1s;  // an expired hold is swept within a sweeper's interval
constexpr auto kProgressInterval = 500ms;
constexpr auto kProgressPlainInterval = 2s;  // stderr is a log file, not a terminal
constexpr double kReleaseRate = 0.05;        // holders who change their mind and release
constexpr auto kReleaseAfterMin = 500ms;     // ... after thinking it over this long
constexpr auto kReleaseAfterMax = 4000ms;
constexpr double kAbandonRate = 0.03;  // holders who walk away: their hold expires
constexpr double kCancelRate = 0.05;   // confirmed buyers who cancel (and are refunded)
constexpr size_t kProblemsShownMax = 5;

// --- The waitlist ------------------------------------------------------------------------------
// Offers last the shortest window the server accepts, so that lapsed offers show within the demo.
constexpr uint32_t kOfferSeconds = 10;
constexpr double kJoinRate = 0.6;  // buyers who find nothing available and join a line
constexpr uint32_t kLineQuantityMax = 2;
constexpr int kJoinAttemptsMax = 3;         // a join refused with seats_available sends them back
constexpr double kDeclineOfferRate = 0.10;  // offered buyers who release the offer's hold
constexpr double kLapseOfferRate = 0.10;    // offered buyers who let the offer lapse
constexpr double kLeaveLineRate = 0.05;     // waiters who give up after a while and leave
constexpr auto kLeaveAfterMin = 3s;
constexpr auto kLeaveAfterMax = 12s;
// Each waiter polls its entry this often (plus up to kEntryPollJitter), and less often when the
// lines are long: all waiters together poll at most kEntryPollRateMax times a second, over
// kWaitConnections shared keep-alive connections.
constexpr auto kEntryPollInterval = 400ms;
constexpr int kEntryPollJitterMs = 200;
constexpr double kEntryPollRateMax = 1500;
constexpr size_t kWaitConnections = 32;
// A buyer who left the line is counted as waiting until this long after the server's time of
// leaving: the sweeper may have picked the next entry a moment before the leave committed.
constexpr auto kLeaveOrderMargin = 2s;

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
  uint32_t hold_ttl_seconds = kHoldTtlSeconds;
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
    plan.hold_ttl_seconds = kHoldTtlSecondsSmall;
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
                                      {"hold_ttl_seconds", plan.hold_ttl_seconds},
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

/// The `waitlist` object of the stats: entries of the event by status.
struct LineCounts {
  int64_t waiting = 0, offered = 0, converted = 0, expired = 0, left = 0;
  int64_t total() const { return waiting + offered + converted + expired + left; }
  bool operator==(const LineCounts&) const = default;
};

LineCounts line_counts_of(const json::object& stats) {
  LineCounts c;
  if (const auto* v = stats.if_contains("waitlist"); v && v->is_object()) {
    const auto& w = v->as_object();
    c = {int_of(w, "waiting"), int_of(w, "offered"), int_of(w, "converted"), int_of(w, "expired"),
         int_of(w, "left")};
  }
  return c;
}

std::string line_counts_text(const LineCounts& c) {
  return fmt::format("waiting {}, offered {}, converted {}, expired {}, left {}", num(c.waiting),
                     num(c.offered), num(c.converted), num(c.expired), num(c.left));
}

struct Tally {
  uint64_t holds_ok = 0, hold_conflicts = 0, hold_sold_out = 0, hold_refused = 0;
  uint64_t seat_map_stale = 0;  // the seat map showed nothing free: availability had moved on
  uint64_t releases = 0, abandoned = 0, checkouts = 0, checkout_refused = 0, cancels = 0;
  uint64_t no_response = 0, polls_timed_out = 0;
  uint64_t buyers_bought = 0, buyers_declined = 0, buyers_sold_out = 0, buyers_gave_up = 0;
  uint64_t buyers_joined = 0;  // went on to wait in a line (their outcome is in LineTally)
  std::map<std::string, uint64_t, std::less<>> methods;
};

/// What the waiting buyers did and saw, as they tell it.
struct LineTally {
  uint64_t joins = 0, join_seats_available = 0, join_conflicts = 0, join_refused = 0;
  uint64_t offers_seen = 0;
  uint64_t declined = 0, lapsed = 0, checkouts = 0;  // what the offered did
  uint64_t decline_refused = 0, checkout_refused = 0;
  uint64_t bought = 0, payment_failed = 0, cancels = 0;  // how their checkouts ended
  uint64_t left = 0, leave_refused = 0;
  uint64_t still_waiting = 0;  // polling when the sale was over
  uint64_t unexpected = 0;     // an entry found converted, expired or left by someone else
  std::map<std::string, uint64_t, std::less<>> methods;
};

/// Where seats came from that a waitlist could be offered: when the demo's buyers made each happen
/// (a declined payment: when its buyer saw it; an abandoned hold: when it expires).
enum class Return {
  payment_declined,
  hold_released,
  hold_expired,
  booking_cancelled,
  offer_declined,
  offer_lapsed
};
constexpr std::string_view kReturnNames[] = {"payments declined",       "holds released",
                                             "abandoned holds expired", "bookings cancelled",
                                             "offers declined",         "offers lapsed"};

/// One waitlist entry as its buyer knows it: when they asked to join and when the answer came,
/// which bounds when the server put them in line.
struct LineEntry {
  std::string id;
  uint64_t buyer = 0;
  std::string section;
  uint32_t quantity = 0;
  int64_t position = 0;    // at join time
  int64_t created_ms = 0;  // the server's join time
  Steady::time_point sent, answered;
  std::optional<int64_t> offer_expires_ms;  // from the first poll that showed the offer
  std::optional<int64_t> offer_seen_ms;     // wall clock, when that poll answered
};

/// A few keep-alive connections shared by many buyers who each send a request now and then (the
/// waiters polling their entries): a buyer borrows one per request, in turn. One thread only.
class ConnectionPool {
 public:
  ConnectionPool(const net::any_io_executor& executor, const loadgen::Origin& origin, size_t size,
                 loadgen::Recorder* recorder) {
    for (size_t i = 0; i < std::max<size_t>(1, size); ++i) {
      connections_.push_back(
          std::make_unique<Connection>(executor, origin, loadgen::ConnectionOptions{}, recorder));
      idle_.push_back(connections_.back().get());
    }
  }

  net::awaitable<Response> send(Request request) {
    Connection* conn = nullptr;
    if (!idle_.empty() && queue_.empty()) {
      conn = idle_.back();
      idle_.pop_back();
    } else {
      // Wait in line: a finishing request hands its connection to the first waiting.
      Turn turn(*this, co_await net::this_coro::executor);
      boost::system::error_code ec;
      co_await turn.timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      conn = turn.conn;
    }
    struct GiveBack {
      ConnectionPool& pool;
      Connection* conn;
      ~GiveBack() { pool.give_back(conn); }
    } give_back{*this, conn};
    co_return co_await conn->send(std::move(request));
  }

 private:
  /// A place in the queue; leaves it if its coroutine is destroyed while waiting (shutdown).
  struct Turn {
    Turn(ConnectionPool& pool, const net::any_io_executor& executor)
        : pool(pool), timer(executor, Steady::time_point::max()) {
      pool.queue_.push_back(this);
    }
    ~Turn() {
      if (conn) return;
      auto& queue = pool.queue_;
      queue.erase(std::remove(queue.begin(), queue.end(), this), queue.end());
    }
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    ConnectionPool& pool;
    net::steady_timer timer;
    Connection* conn = nullptr;
  };
  void give_back(Connection* conn) {
    if (queue_.empty()) {
      idle_.push_back(conn);
      return;
    }
    auto* turn = queue_.front();
    queue_.pop_front();
    turn->conn = conn;
    turn->timer.cancel();
  }

  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;
  std::deque<Turn*> queue_;
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
  Steady::duration sale_ended_after{};  // the last waiter stopped
  uint64_t sale_requests = 0;           // requests the buyers made

  // The monitor's latest look at the event (stats), for the progress line.
  std::vector<SectionState> sections;
  BookingCounts bookings;
  LineCounts line;
  bool stop_progress = false;
  bool progress_stopped = false;

  // The waitlist, as the buyers in it see it.
  LineTally line_tally;
  std::deque<LineEntry> entries;  // in the order their joins were answered
  std::optional<Steady::time_point> first_join;
  std::map<Return, std::vector<Steady::time_point>> returns;
  Steady::time_point abandoned_expire{};  // the last abandoned hold has expired by then
  // The waiters' connections: each waiter keeps it alive (a coroutine destroyed at shutdown
  // still gives its connection back).
  std::shared_ptr<ConnectionPool> pool;
  uint64_t waiters_live = 0;  // waiter coroutines not yet finished
  uint64_t waiters_busy = 0;  // of those, acting on an offer (checkout, booking, cancel)
  bool sale_over = false;     // nothing more can come back to a line: waiters stop
  std::optional<Steady::duration> sale_over_after;
  std::exception_ptr waiter_error;

  void returned(Return what, Steady::time_point when = Steady::now()) {
    returns[what].push_back(when);
  }

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
/// empty when it did not settle in time. `Client`: a Connection, or the waiters' ConnectionPool.
template <typename Client>
net::awaitable<std::string> await_final(Demo& d, Client& client, const std::string& token,
                                        const std::string& booking_id) {
  const auto give_up = Steady::now() + kBookingPollFor;
  while (Steady::now() < give_up) {
    co_await loadgen::sleep_for(kBookingPollInterval);
    auto r =
        co_await client.send(request("GET", "/v1/bookings/" + booking_id, {}, token, "booking"));
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

/// A checkout was accepted: watches the booking until it is final, and cancels it now and then
/// once confirmed (`cancels` counts those). Returns the booking's final status, or empty.
template <typename Client>
net::awaitable<std::string> follow_booking(Demo& d, Client& client, const std::string& token,
                                           const std::string& booking_id, std::mt19937_64& rng,
                                           uint64_t& cancels) {
  const auto status = co_await await_final(d, client, token, booking_id);
  if (status == "payment_failed") d.returned(Return::payment_declined);
  if (status == "confirmed" &&
      std::uniform_real_distribution<double>{0.0, 1.0}(rng) < kCancelRate) {
    auto r = co_await client.send(
        request("POST", "/v1/bookings/" + booking_id + "/cancel", {}, token, "cancel"));
    if (r.status == 202) {
      ++cancels;
      d.returned(Return::booking_cancelled);
    }
  }
  co_return status;
}

int64_t wall_ms() {
  return to_unix_ms(std::chrono::floor<Millis>(std::chrono::system_clock::now()));
}

/// How long a waiter sleeps between two looks at its entry: a few times a second, less often when
/// so many wait that together they would poll more than kEntryPollRateMax times a second.
std::chrono::milliseconds entry_poll_interval(const Demo& d, std::mt19937_64& rng) {
  const std::chrono::milliseconds spread{
      static_cast<int64_t>(1000.0 * static_cast<double>(d.waiters_live) / kEntryPollRateMax)};
  const std::chrono::milliseconds jitter{
      std::uniform_int_distribution<int>{0, kEntryPollJitterMs}(rng)};
  return std::max<std::chrono::milliseconds>(kEntryPollInterval, spread) + jitter;
}

/// An offer came: most check it out (paying as other buyers do), some decline it (release its
/// hold), some let it lapse.
net::awaitable<void> take_offer(Demo& d, ConnectionPool& pool, const std::string& token,
                                const std::string& hold_id, std::mt19937_64& rng) {
  auto& w = d.line_tally;
  const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
  if (u < kDeclineOfferRate) {
    auto r = co_await pool.send(request("DELETE", "/v1/holds/" + hold_id, {}, token, "decline"));
    if (r.status == 204) {
      ++w.declined;
      d.returned(Return::offer_declined);
    } else {
      if (r.status == loadgen::kNoResponse) ++d.tally.no_response;
      ++w.decline_refused;
      if (code_of(r) != "hold_expired")
        spdlog::warn("declining offer {}: {}", hold_id, describe(r));
    }
    co_return;
  }
  if (u < kDeclineOfferRate + kLapseOfferRate) {
    ++w.lapsed;  // does nothing: the server expires the offer when its window is over
    d.returned(Return::offer_lapsed);
    co_return;
  }
  const auto method = pick_payment_method(rng);
  const auto body = json::serialize(json::object{{"payment_method", method}});
  auto checkout = co_await pool.send(
      request("POST", "/v1/holds/" + hold_id + "/checkout", body, token, "offer_checkout"));
  if (checkout.status != 202) {
    if (checkout.status == loadgen::kNoResponse) {
      ++d.tally.no_response;
    } else {
      ++w.checkout_refused;  // too late, mostly: the report counts them
      if (code_of(checkout) != "hold_expired") {
        spdlog::warn("checkout of offer {} refused: {}", hold_id, describe(checkout));
      }
    }
    co_return;
  }
  ++w.checkouts;
  ++w.methods[method];
  auto booking = parse_object(checkout.body);
  const auto booking_id = booking ? str_of(*booking, "id") : std::string{};
  if (booking_id.empty()) co_return;
  const auto status = co_await follow_booking(d, pool, token, booking_id, rng, w.cancels);
  if (status == "confirmed") ++w.bought;
  if (status == "payment_failed") ++w.payment_failed;
}

/// A buyer in a line: looks at their entry now and then until it is offered (and acts on the
/// offer), they lose patience and leave, or the sale is over.
net::awaitable<void> waiter(Demo& d, std::shared_ptr<ConnectionPool> pool, size_t slot,
                            std::string token, std::mt19937_64 rng) {
  auto& w = d.line_tally;
  const auto id = d.entries[slot].id;
  std::optional<Steady::time_point> leave_at;
  bool tried_leaving = false;
  if (std::uniform_real_distribution<double>{0.0, 1.0}(rng) < kLeaveLineRate) {
    const std::chrono::milliseconds after{std::uniform_int_distribution<int64_t>{
        std::chrono::milliseconds{kLeaveAfterMin}.count(),
        std::chrono::milliseconds{kLeaveAfterMax}.count()}(rng)};
    leave_at = Steady::now() + after;
  }
  while (!d.sale_over) {
    co_await loadgen::sleep_for(entry_poll_interval(d, rng));
    if (d.sale_over) break;
    if (leave_at && Steady::now() >= *leave_at) {
      leave_at.reset();
      tried_leaving = true;
      auto r =
          co_await pool->send(request("DELETE", "/v1/waitlist/" + id, {}, token, "waitlist_leave"));
      if (r.status == 204) {
        ++w.left;
        co_return;
      }
      if (r.status == loadgen::kNoResponse) {
        ++d.tally.no_response;
      } else {
        ++w.leave_refused;  // offered meanwhile: the look below finds out
      }
    }
    auto r = co_await pool->send(request("GET", "/v1/waitlist/" + id, {}, token, "waitlist_entry"));
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    if (!body) {
      if (r.status == loadgen::kNoResponse) ++d.tally.no_response;
      continue;
    }
    const auto status = str_of(*body, "status");
    if (status == "waiting") continue;
    if (status == "offered") {
      const auto* o = body->if_contains("offer");
      const auto* offer = o && o->is_object() ? &o->as_object() : nullptr;
      const auto hold_id = offer ? str_of(*offer, "hold_id") : std::string{};
      auto& entry = d.entries[slot];
      if (auto expires = parse_rfc3339(offer ? str_of(*offer, "expires_at") : std::string{})) {
        entry.offer_expires_ms = to_unix_ms(*expires);
      }
      entry.offer_seen_ms = wall_ms();
      ++w.offers_seen;
      ++d.waiters_busy;
      struct Busy {
        Demo& d;
        ~Busy() { --d.waiters_busy; }
      } busy{d};
      if (!hold_id.empty()) co_await take_offer(d, *pool, token, hold_id, rng);
      co_return;
    }
    if (status == "left" && tried_leaving) {
      ++w.left;  // the leave went through; its answer was lost
    } else {
      ++w.unexpected;
      spdlog::warn("waitlist entry {} is {} without its buyer's doing", id, status);
    }
    co_return;
  }
  ++w.still_waiting;
}

/// The line a buyer joins: the section that last told them it was sold out, else one drawn by
/// its size (where most buyers went).
std::string line_to_join(const Plan& plan, const std::string& last_sold_out, std::mt19937_64& rng) {
  if (!last_sold_out.empty()) return last_sold_out;
  std::vector<double> weights;
  for (const auto& s : plan.sections) weights.push_back(static_cast<double>(s.capacity));
  return plan.sections[std::discrete_distribution<size_t>{weights.begin(), weights.end()}(rng)].id;
}

enum class Joined { in_line, seats_available, refused };

struct JoinOutcome {
  Joined joined = Joined::refused;
  size_t slot = 0;  // in d.entries, when in line
};

/// Joins the line of `section` for 1-2 seats.
net::awaitable<JoinOutcome> join_line(Demo& d, Connection& conn, uint64_t index,
                                      const std::string& token, const std::string& section,
                                      int attempt, std::mt19937_64& rng) {
  auto& w = d.line_tally;
  LineEntry entry;
  entry.buyer = index;
  entry.section = section;
  entry.quantity = std::uniform_int_distribution<uint32_t>{1, kLineQuantityMax}(rng);
  auto join =
      request("POST", "/v1/events/" + d.event_id + "/waitlist",
              json::serialize(json::object{{"section", section}, {"quantity", entry.quantity}}),
              token, "waitlist_join");
  join.headers.emplace_back("Idempotency-Key",
                            fmt::format("{}-join-{}", Demo::buyer_name(index), attempt));
  entry.sent = Steady::now();
  auto r = co_await conn.send(join);
  if (r.status == loadgen::kNoResponse) {
    ++d.tally.no_response;
    r = co_await conn.send(join);  // the same key: the same entry, never a second one
  }
  entry.answered = Steady::now();
  if (r.status == 201) {
    auto body = parse_object(r.body);
    entry.id = body ? str_of(*body, "id") : std::string{};
    if (entry.id.empty()) {
      ++w.join_refused;
      co_return JoinOutcome{};
    }
    entry.position = int_of(*body, "position");
    if (auto created = parse_rfc3339(str_of(*body, "created_at"))) {
      entry.created_ms = to_unix_ms(*created);
    }
    ++w.joins;
    if (!d.first_join) d.first_join = entry.answered;
    d.entries.push_back(std::move(entry));
    co_return JoinOutcome{Joined::in_line, d.entries.size() - 1};
  }
  const auto code = code_of(r);
  if (r.status == 409 && code == "seats_available") {
    ++w.join_seats_available;
    co_return JoinOutcome{Joined::seats_available, 0};
  }
  if (r.status == 409 && code == "conflict") {
    ++w.join_conflicts;  // already in this line: cannot happen, one join per buyer and section
  } else if (r.status == loadgen::kNoResponse) {
    ++d.tally.no_response;
  } else {
    ++w.join_refused;
    spdlog::warn("buyer {}: joining the {} line refused: {}", index, section, describe(r));
  }
  co_return JoinOutcome{};
}

net::awaitable<void> buyer(Demo& d, Connection& conn, uint64_t index) {
  // Each buyer's choices depend only on the seed and its number; what they get depends on timing.
  std::mt19937_64 rng(d.seed ^ (0x9E3779B97F4A7C15ull * (index + 1)));
  std::uniform_real_distribution<double> chance{0.0, 1.0};
  const auto token = d.token_for(Demo::buyer_name(index));
  auto& t = d.tally;
  const bool would_wait = chance(rng) < kJoinRate;  // joins a line when nothing is available

  std::set<std::string> exhausted;  // sections that answered sold_out to this buyer
  std::string last_sold_out;
  std::optional<std::string> hold_id;
  int attempts = 0, joins = 0;
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
      // Nothing available to this buyer: sold out, for now. Some wait in a line for seats that
      // come back; the others leave.
      if (!would_wait || joins >= kJoinAttemptsMax) {
        ++t.buyers_sold_out;
        co_return;
      }
      const auto section = line_to_join(d.plan, last_sold_out, rng);
      const auto outcome = co_await join_line(d, conn, index, token, section, joins++, rng);
      if (outcome.joined == Joined::in_line) {
        // From here the buyer waits on a shared connection, and its place in the crowd goes to
        // the next buyer.
        ++t.buyers_joined;
        ++d.waiters_live;
        // The executor in a statement of its own: see monitor().
        auto executor = co_await net::this_coro::executor;
        net::co_spawn(executor, waiter(d, d.pool, outcome.slot, token, std::move(rng)),
                      [&d](std::exception_ptr e) {
                        --d.waiters_live;
                        if (e && !d.waiter_error) d.waiter_error = e;
                      });
        co_return;
      }
      if (outcome.joined == Joined::refused) {
        ++t.buyers_gave_up;
        co_return;
      }
      exhausted.erase(section);  // seats there after all: try to hold them
      last_sold_out.clear();
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
      last_sold_out = choice->section;
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

  const double mind = chance(rng);
  if (mind < kReleaseRate) {
    // Thinks it over first: some of these seats come back after the sale sold out.
    co_await loadgen::sleep_for(std::chrono::milliseconds{std::uniform_int_distribution<int64_t>{
        kReleaseAfterMin.count(), kReleaseAfterMax.count()}(rng)});
    auto r = co_await conn.send(request("DELETE", "/v1/holds/" + *hold_id, {}, token, "release"));
    if (r.status == 204) {
      ++t.releases;
      d.returned(Return::hold_released);
    }
    co_return;
  }
  if (mind < kReleaseRate + kAbandonRate) {
    // Walks away: the hold expires on its own (by then, surely: it was made before now).
    ++t.abandoned;
    const auto expires = Steady::now() + std::chrono::seconds{d.plan.hold_ttl_seconds};
    d.abandoned_expire = std::max(d.abandoned_expire, expires);
    d.returned(Return::hold_expired, expires);
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

  const auto status = co_await follow_booking(d, conn, token, booking_id, rng, t.cancels);
  if (status == "payment_failed") ++t.buyers_declined;
  if (status == "confirmed") ++t.buyers_bought;
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
  const auto& w = d.line;
  const auto& t = d.tally;
  // The legend is printed once when the sale opens.
  return fmt::format(
      "{:6.1f}s {:>7} req/s | holds {} ok, {} conflicts | bookings {}/{}/{}/{} | "
      "seats {}/{}/{} | waitlist {}/{}/{}/{}",
      std::chrono::duration<double>(Steady::now() - d.started).count(),
      num(static_cast<int64_t>(requests_per_second)), num(t.holds_ok), num(t.hold_conflicts),
      num(b.pending_payment), num(b.confirmed), num(b.payment_failed),
      num(b.cancelled + b.refunded), num(available), num(held), num(sold), num(w.waiting),
      num(w.offered), num(w.converted), num(w.expired));
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
      d.line = line_counts_of(*body);
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

/// A waitlist entry as its buyer reads it once the sale is over.
struct EntryView {
  std::string status, section;
  int64_t quantity = 0;
  std::optional<int64_t> offer_expires_ms;  // the entry was offered seats (whatever came next)
  int64_t updated_ms = 0;                   // the server's time of its last change
  bool read = false;
};

struct Evidence {
  json::object stats;
  std::vector<SectionState> sections;
  BookingCounts counts;
  LineCounts line;                                          // the stats' count of entries by status
  std::vector<EntryView> entries;                           // d.entries, read by their buyers
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
    e.line = line_counts_of(*body);
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
  std::vector<std::vector<size_t>> buyer_entries(d.plan.buyers);
  for (size_t i = 0; i < d.entries.size(); ++i) buyer_entries[d.entries[i].buyer].push_back(i);
  e.entries.resize(d.entries.size());
  std::vector<std::string> list_errors, entry_errors;
  auto list = [&](size_t worker, uint64_t index) -> net::awaitable<void> {
    const auto name = Demo::buyer_name(index);
    const auto token = d.token_for(name);
    // Their waitlist entries first, then their bookings.
    for (const auto slot : buyer_entries[index]) {
      auto r = co_await connections[worker].send(
          request("GET", "/v1/waitlist/" + d.entries[slot].id, {}, token, {}));
      auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
      if (!body) {
        entry_errors.push_back("GET /v1/waitlist/" + d.entries[slot].id + " as " + name + ": " +
                               describe(r));
        continue;
      }
      auto& view = e.entries[slot];
      view.read = true;
      view.status = str_of(*body, "status");
      view.section = str_of(*body, "section");
      view.quantity = int_of(*body, "quantity");
      if (auto updated = parse_rfc3339(str_of(*body, "updated_at"))) {
        view.updated_ms = to_unix_ms(*updated);
      }
      if (const auto* o = body->if_contains("offer"); o && o->is_object()) {
        if (auto expires = parse_rfc3339(str_of(o->as_object(), "expires_at"))) {
          view.offer_expires_ms = to_unix_ms(*expires);
        }
      }
    }
    auto r = co_await connections[worker].send(request("GET", "/v1/bookings", {}, token, {}));
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
  if (!entry_errors.empty()) {
    e.errors.push_back(num(static_cast<int64_t>(entry_errors.size())) +
                       " waitlist entries could not be read by their buyers, e.g. " +
                       entry_errors.front());
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

/// Offers follow join order: an entry is passed over only for a later one that wants fewer
/// seats. Judged from the outside, so that neither polling delay nor concurrent joins can raise a
/// false alarm: entry A surely joined before B when A's join was answered before B's was sent (one
/// client thread sees both); B was offered seats at its offer's expires_at minus the offer window
/// (the server's clock, not whenever B's buyer looked). An inversion: B offered while an entry A
/// that joined before it, wanting no more seats than B, still waited.
Check check_waitlist(const Demo& d, const Evidence& e) {
  Check check{"waitlist served in order", {}, {}};
  const int64_t window_ms = int64_t{kOfferSeconds} * 1000;
  const int64_t margin_ms = std::chrono::milliseconds{kLeaveOrderMargin}.count();

  // The buyers' own entries against the stats.
  LineCounts seen;
  size_t unread = 0;
  for (size_t i = 0; i < e.entries.size(); ++i) {
    const auto& v = e.entries[i];
    const auto& asked = d.entries[i];
    if (!v.read) {
      ++unread;
      continue;
    }
    if (v.status == "waiting") {
      ++seen.waiting;
    } else if (v.status == "offered") {
      ++seen.offered;
    } else if (v.status == "converted") {
      ++seen.converted;
    } else if (v.status == "expired") {
      ++seen.expired;
    } else if (v.status == "left") {
      ++seen.left;
    } else {
      check.fail("entry " + asked.id + " has status \"" + v.status + "\"");
    }
    if (v.section != asked.section || v.quantity != asked.quantity) {
      check.fail(fmt::format("entry {} is for {} × {}, its buyer asked for {} × {}", asked.id,
                             v.quantity, v.section, asked.quantity, asked.section));
    }
    if ((v.status == "offered" || v.status == "converted") && !v.offer_expires_ms) {
      check.fail("entry " + asked.id + " is " + v.status + " without an offer");
    }
  }
  if (unread == 0 && seen != e.line) {
    check.fail("the stats count " + line_counts_text(e.line) + "; the buyers' entries say " +
               line_counts_text(seen));
  }

  // The order of offers, line by line.
  std::map<std::string, std::vector<size_t>> lines;
  for (size_t i = 0; i < e.entries.size(); ++i) {
    if (e.entries[i].read) lines[d.entries[i].section].push_back(i);
  }
  size_t offers = 0, pairs = 0;
  for (const auto& [section, line] : lines) {
    for (const size_t b : line) {
      const auto& later = e.entries[b];
      if (!later.offer_expires_ms) continue;
      ++offers;
      const int64_t offered_at = *later.offer_expires_ms - window_ms;
      for (const size_t a : line) {
        const auto& earlier = e.entries[a];
        if (a == b || !(d.entries[a].answered < d.entries[b].sent) ||
            earlier.quantity > later.quantity) {
          continue;
        }
        ++pairs;
        bool waited = false;
        if (earlier.offer_expires_ms) {
          waited = *earlier.offer_expires_ms > *later.offer_expires_ms;  // offered after it
        } else if (earlier.status == "waiting") {
          waited = true;  // never offered anything
        } else {
          // Left (or dropped) without an offer: counts only if that was clearly after.
          waited = earlier.updated_ms > offered_at + margin_ms;
        }
        if (waited) {
          check.fail(fmt::format(
              "{}: {} was offered {} seat(s) at {} while {}, who joined before "
              "it for {}, still waited",
              section, d.entries[b].id, later.quantity, format_rfc3339(from_unix_ms(offered_at)),
              d.entries[a].id, earlier.quantity));
        }
      }
    }
  }

  // Once nothing is held by anyone (no hold, no offer, no payment outstanding), held seats are
  // seats kept for a line: none may stay kept while an entry there could take them.
  bool idle_checked = false;
  if (d.sale_over_after && unread == 0 && e.line.offered == 0 && e.counts.all_final()) {
    idle_checked = true;
    for (const auto& s : e.sections) {
      int64_t smallest = 0;
      for (const auto i : lines[s.id]) {
        if (e.entries[i].status != "waiting") continue;
        if (smallest == 0 || e.entries[i].quantity < smallest) smallest = e.entries[i].quantity;
      }
      if (s.held > 0 && smallest > 0 && smallest <= s.held) {
        check.fail(
            fmt::format("{}: {} seats kept for the line while an entry waiting for {} "
                        "could take them",
                        s.id, s.held, smallest));
      }
    }
  }

  check.figures = fmt::format(
      "{} offers in {} lines, each checked against the entries that surely joined before it "
      "wanting no more seats ({} pairs): none passed over; the stats and the buyers' {} entries "
      "agree ({}){}",
      num(static_cast<int64_t>(offers)), lines.size(), num(static_cast<int64_t>(pairs)),
      num(static_cast<int64_t>(e.entries.size())), line_counts_text(e.line),
      idle_checked ? "; no seat left kept for a line that an entry waiting there could take" : "");
  if (!check.pass()) {
    check.figures =
        fmt::format("{} offers in {} lines checked ({} pairs)", num(static_cast<int64_t>(offers)),
                    lines.size(), num(static_cast<int64_t>(pairs)));
  }
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

std::string percent(double share) { return fmt::format("{:.0f}%", share * 100); }

std::string line_counts_row(std::string_view who, const LineCounts& c) {
  return fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", who, num(c.waiting), num(c.offered),
                     num(c.converted), num(c.expired), num(c.left), num(c.total()));
}

void report_waitlist(std::ostream& out, const Demo& d, const Evidence& e) {
  const auto& w = d.line_tally;
  const int64_t window_ms = int64_t{kOfferSeconds} * 1000;
  out << "\n## Waitlist\n\n";
  out << fmt::format(
      "{} of the buyers who found nothing available joined a section's line, for 1-{} seats; each "
      "then looked at its entry every {}-{} ms (less often while many waited: together at most {} "
      "looks/s, over {} shared connections) until it was offered seats or the sale was over. Of "
      "the offered, {} decline (release the offer's hold), {} let the {} s offer lapse, the rest "
      "check out; {} of the waiters leave the line after {}-{} s.\n\n",
      percent(kJoinRate), kLineQuantityMax, kEntryPollInterval.count(),
      kEntryPollInterval.count() + kEntryPollJitterMs, num(static_cast<int64_t>(kEntryPollRateMax)),
      std::min<size_t>(kWaitConnections, d.concurrency), percent(kDeclineOfferRate),
      percent(kLapseOfferRate), kOfferSeconds, percent(kLeaveLineRate), kLeaveAfterMin.count(),
      kLeaveAfterMax.count());

  // What the entries say at the end, read by their buyers.
  LineCounts seen;
  int64_t offers = 0, offered_now = 0, converted = 0, expired_offered = 0, left_offered = 0;
  int64_t expired_unoffered = 0, longest = 0;
  std::map<std::string, int64_t> joined;
  std::vector<int64_t> seen_after;  // from an offer being made to its buyer seeing it, in ms
  std::vector<int64_t> in_line;     // from joining to being offered seats, in ms
  for (size_t i = 0; i < d.entries.size(); ++i) {
    const auto& asked = d.entries[i];
    ++joined[asked.section];
    longest = std::max(longest, asked.position);
    const auto& v = e.entries[i];
    seen.waiting += v.status == "waiting";
    seen.offered += v.status == "offered";
    seen.converted += v.status == "converted";
    seen.expired += v.status == "expired";
    seen.left += v.status == "left";
    if (!v.offer_expires_ms) {
      expired_unoffered += v.status == "expired";
      continue;
    }
    ++offers;
    offered_now += v.status == "offered";
    converted += v.status == "converted";
    expired_offered += v.status == "expired";
    left_offered += v.status == "left";
    const int64_t offered_at = *v.offer_expires_ms - window_ms;
    if (asked.offer_seen_ms) seen_after.push_back(*asked.offer_seen_ms - offered_at);
    if (asked.created_ms) in_line.push_back(offered_at - asked.created_ms);
  }
  std::sort(seen_after.begin(), seen_after.end());
  std::sort(in_line.begin(), in_line.end());
  std::vector<std::string> per_section;
  for (const auto& s : d.plan.sections) {
    per_section.push_back(fmt::format("{} {}", s.id, num(joined[s.id])));
  }
  out << fmt::format("- joined: {} entries ({}); the longest line, at a join: {}",
                     num(static_cast<int64_t>(w.joins)), fmt::join(per_section, ", "),
                     num(longest));
  if (w.join_seats_available) {
    out << fmt::format(
        "; {} joins answered 409 seats_available (seats were back on sale: those "
        "buyers held them instead)",
        num(w.join_seats_available));
  }
  if (w.join_conflicts || w.join_refused) {
    out << fmt::format("; {} joins answered 409 conflict, {} refused otherwise",
                       num(w.join_conflicts), num(w.join_refused));
  }
  out << "\n";
  out << fmt::format(
      "- offers made: {} (entries that were offered seats: {} converted, {} expired, {} left, {} "
      "still open)",
      num(offers), num(converted), num(expired_offered), num(left_offered), num(offered_now));
  out << "\n";
  if (!in_line.empty()) {
    out << fmt::format(
        "  - made {:.1f} s after the entry joined its line (median; longest {:.1f} s)",
        in_line[in_line.size() / 2] / 1000.0, in_line.back() / 1000.0);
  }
  if (!seen_after.empty()) {
    out << fmt::format(
        "; seen by their buyers ({} of them) {:.1f} s after they were made (median; slowest "
        "{:.1f} s)",
        num(static_cast<int64_t>(w.offers_seen)), seen_after[seen_after.size() / 2] / 1000.0,
        seen_after.back() / 1000.0);
  }
  if (!in_line.empty() || !seen_after.empty()) out << "\n";
  out << fmt::format(
      "- converted: {} offers checked out ({} confirmed, {} of them then cancelled; {} declined by "
      "the card)\n",
      num(seen.converted), num(w.bought), num(w.cancels), num(w.payment_failed));
  out << fmt::format(
      "- expired: {} ({} declined: the buyer released the offer's hold; {} lapsed: "
      "left untouched for {} s",
      num(seen.expired), num(w.declined), num(w.lapsed), kOfferSeconds);
  if (w.checkout_refused) {
    out << fmt::format("; {} too late: their checkout was refused, the offer's hold had expired",
                       num(w.checkout_refused));
  }
  if (expired_unoffered) {
    out << fmt::format("; {} dropped from the line without an offer", num(expired_unoffered));
  }
  out << ")\n";
  out << fmt::format("- left: {} waiters gave up and left the line ({} of them holding an offer)\n",
                     num(seen.left), num(left_offered));
  out << fmt::format(
      "- still waiting when the sale was over: {} (nothing more was coming back to their "
      "lines)\n",
      num(seen.waiting));
  if (w.unexpected || w.decline_refused || w.leave_refused) {
    out << fmt::format(
        "- {} entries changed without their buyer's doing; {} declines refused (the offer had "
        "lapsed), {} leaves refused (offered meanwhile)\n",
        num(w.unexpected), num(w.decline_refused), num(w.leave_refused));
  }

  // Where the seats offered came from.
  std::vector<std::string> sources;
  for (const auto what :
       {Return::payment_declined, Return::hold_released, Return::hold_expired,
        Return::booking_cancelled, Return::offer_declined, Return::offer_lapsed}) {
    const auto found = d.returns.find(what);
    const auto all = found == d.returns.end() ? std::vector<Steady::time_point>{} : found->second;
    const auto after =
        d.first_join ? std::count_if(all.begin(), all.end(),
                                     [&d](Steady::time_point t) { return t >= *d.first_join; })
                     : 0;
    sources.push_back(fmt::format("{} {} ({})", num(after), kReturnNames[static_cast<int>(what)],
                                  num(static_cast<int64_t>(all.size()))));
  }
  out << fmt::format(
      "- seats came back, after the first buyer joined a line (in the whole sale): {}; a section "
      "nobody waits for puts them back on sale\n",
      fmt::join(sources, ", "));

  out << "\n| entries by status | waiting | offered | converted | expired | left | total "
         "|\n|---|---:|---:|---:|---:|---:|---:|\n";
  out << line_counts_row("the stats", e.line);
  out << line_counts_row("the buyers' own entries", seen);
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
  out << fmt::format(
      "Event {}: {} seats ({}); holds last {} s, waitlist offers {} s; at most {} seats per "
      "buyer.\n",
      d.event_id, num(plan.seats()), fmt::join(layout, "; "), plan.hold_ttl_seconds, kOfferSeconds,
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
  if (d.first_join) {
    out << "| first buyer in a waitlist | " << secs(*d.first_join - d.sale_opened) << " |\n";
  }
  if (d.buyers_done_after) {
    out << "| every buyer let in (bought, left, or waiting in a line) | "
        << secs(*d.buyers_done_after) << " |\n";
  }
  out << "| sale over (every booking final, no offer open, nothing left to come back) | "
      << (d.sale_over_after ? secs(*d.sale_over_after)
                            : "not within " + secs(kSettleFor) + " of the last buyer")
      << " |\n";
  out << "| report (whole demo, start-up included) | " << secs(Steady::now() - d.started)
      << " total |\n\n";

  out << "## Traffic\n\n";
  const double sale_seconds = std::chrono::duration<double>(d.sale_ended_after).count();
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
  out << fmt::format(
      "- {} holds released, {} abandoned (left to expire), {} checkouts ({}), {} checkouts "
      "refused\n",
      num(t.releases), num(t.abandoned), num(t.checkouts), fmt::join(methods, ", "),
      num(t.checkout_refused));
  out << fmt::format(
      "- {} buyers got tickets ({} then cancelled), {} were declined, {} joined a waitlist (see "
      "below), {} left with nothing (sold out), {} gave up after {} tries\n",
      num(t.buyers_bought), num(t.cancels), num(t.buyers_declined), num(t.buyers_joined),
      num(t.buyers_sold_out), num(t.buyers_gave_up), kHoldAttemptsMax);
  if (t.no_response || t.hold_refused || t.polls_timed_out) {
    out << fmt::format(
        "- {} requests without a response, {} holds refused otherwise, {} bookings "
        "not final within {} s of polling\n",
        num(t.no_response), num(t.hold_refused), num(t.polls_timed_out),
        std::chrono::duration_cast<std::chrono::seconds>(kBookingPollFor).count());
  }

  report_waitlist(out, d, e);

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
                            check_nothing_pending(e), check_waitlist(d, e)};
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
               "progress: bookings pending/confirmed/failed/cancelled, seats free/held/sold, "
               "waitlist waiting/offered/converted/expired\n",
               d.event_id.c_str(), d.plan.seats(), d.plan.buyers, d.concurrency);

  d.sale_opened = Steady::now();
  net::co_spawn(executor, monitor(d), net::detached);
  d.pool = std::make_shared<ConnectionPool>(
      executor, d.origin, std::min<size_t>(kWaitConnections, d.concurrency), &d.recorder);
  std::vector<Connection> connections;
  for (uint32_t i = 0; i < d.concurrency; ++i) {
    connections.emplace_back(executor, d.origin, loadgen::ConnectionOptions{}, &d.recorder);
  }
  co_await loadgen::run_jobs(d.concurrency, d.plan.buyers, [&](size_t worker, uint64_t index) {
    return buyer(d, connections[worker], index);
  });
  d.buyers_done_after = Steady::now() - d.sale_opened;
  connections.clear();

  // The sale is over once nothing more can come back to a line: every booking final (no charge
  // or refund outstanding), no offer open and no waiter acting on one, every abandoned hold
  // expired, and all of that for a while (the sweeper offers what just came back).
  const auto give_up = Steady::now() + kSettleFor;
  std::optional<Steady::time_point> quiet_since;
  for (;;) {
    auto r = co_await admin.send(
        request("GET", "/v1/events/" + d.event_id + "/stats", {}, d.admin_token, {}));
    const auto now = Steady::now();
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    const bool quiet = body && counts_of(*body).all_final() && line_counts_of(*body).offered == 0 &&
                       d.waiters_busy == 0 && now >= d.abandoned_expire + kSweepMargin;
    if (!quiet) {
      quiet_since.reset();
    } else if (!quiet_since) {
      quiet_since = now;
    }
    if (quiet_since && now - *quiet_since >= kQuietFor) {
      d.sale_over_after = *quiet_since - d.sale_opened;
      break;
    }
    if (now >= give_up) break;
    co_await loadgen::sleep_for(kSettlePollInterval);
  }
  // Waiters stop at their next look; one acting on an offer finishes first.
  d.sale_over = true;
  while (d.waiters_live > 0) co_await loadgen::sleep_for(std::chrono::milliseconds{20});
  d.pool.reset();
  d.sale_ended_after = Steady::now() - d.sale_opened;
  d.sale_requests = d.recorder.requests();
  if (d.waiter_error) std::rethrow_exception(d.waiter_error);
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
    config.waitlist_offer_seconds = kOfferSeconds;
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
    // The waiters' connections go while their io_context is still there (after an interruption,
    // suspended waiters keep the pool until the io_context destroys them).
    d.pool.reset();
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

// The buyers of a flash sale and the sale's course: the crowd's journey (availability, hold,
// checkout, booking, waitlist), the progress line, the closed and open arrival models.
#include "loadgen/sale_state.h"

// g++ 12 at -O2, once it inlines a coroutine's ramp, pairs Asio's class-specific operator new of
// the coroutine frame with the global operator delete and reports a mismatch: a false positive of
// that compiler (fixed in 13), not something this file can change.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstdio>
#include <random>
#include <utility>

#include "domain/time.h"
#include "loadgen/arrivals.h"
#include "loadgen/connection_pool.h"

namespace boxoffice::loadgen {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

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
template <typename Client>
net::awaitable<std::optional<Choice>> choose(Sale& d, Client& conn,
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
  auto quantity = std::uniform_int_distribution<uint32_t>{1, d.seats_per_order_max()}(rng);
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
net::awaitable<std::string> await_final(Sale& d, Client& client, const std::string& token,
                                        const std::string& booking_id) {
  const auto give_up = Steady::now() + kBookingPollFor;
  while (Steady::now() < give_up) {
    co_await sleep_for(kBookingPollInterval);
    auto r =
        co_await client.send(request("GET", "/v1/bookings/" + booking_id, {}, token, "booking"));
    if (r.status != 200) {
      if (r.status == kNoResponse) ++d.tally.no_response;
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
net::awaitable<std::string> follow_booking(Sale& d, Client& client, const std::string& token,
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
std::chrono::milliseconds entry_poll_interval(const Sale& d, std::mt19937_64& rng) {
  const std::chrono::milliseconds spread{
      static_cast<int64_t>(1000.0 * static_cast<double>(d.waiters_live) / kEntryPollRateMax)};
  const std::chrono::milliseconds jitter{
      std::uniform_int_distribution<int>{0, kEntryPollJitterMs}(rng)};
  return std::max<std::chrono::milliseconds>(kEntryPollInterval, spread) + jitter;
}

/// An offer came: most check it out (paying as other buyers do), some decline it (release its
/// hold), some let it lapse.
net::awaitable<void> take_offer(Sale& d, ConnectionPool& pool, const std::string& token,
                                const std::string& hold_id, std::mt19937_64& rng) {
  auto& w = d.line_tally;
  const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
  if (u < kDeclineOfferRate) {
    auto r = co_await pool.send(request("DELETE", "/v1/holds/" + hold_id, {}, token, "decline"));
    if (r.status == 204) {
      ++w.declined;
      d.returned(Return::offer_declined);
    } else {
      if (r.status == kNoResponse) ++d.tally.no_response;
      ++w.decline_refused;
      if (code_of(r) != "hold_expired")
        spdlog::warn("declining offer {}: {}", hold_id, describe(r));
    }
    co_return;
  }
  if (u < kDeclineOfferRate + d.lapse_rate) {
    ++w.lapsed;  // does nothing: the server expires the offer when its window is over
    d.returned(Return::offer_lapsed);
    co_return;
  }
  const auto method = pick_payment_method(rng);
  const auto body = json::serialize(json::object{{"payment_method", method}});
  auto checkout = co_await pool.send(
      request("POST", "/v1/holds/" + hold_id + "/checkout", body, token, "offer_checkout"));
  if (checkout.status != 202) {
    if (checkout.status == kNoResponse) {
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
net::awaitable<void> waiter(Sale& d, std::shared_ptr<ConnectionPool> pool, size_t slot,
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
    co_await sleep_for(entry_poll_interval(d, rng));
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
      if (r.status == kNoResponse) {
        ++d.tally.no_response;
      } else {
        ++w.leave_refused;  // offered meanwhile: the look below finds out
      }
    }
    auto r = co_await pool->send(request("GET", "/v1/waitlist/" + id, {}, token, "waitlist_entry"));
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    if (!body) {
      if (r.status == kNoResponse) ++d.tally.no_response;
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
      d.hold_granted();
      ++w.offers_seen;
      ++d.waiters_busy;
      struct Busy {
        Sale& d;
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
template <typename Client>
net::awaitable<JoinOutcome> join_line(Sale& d, Client& conn, uint64_t index,
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
  // Keys are kept a day per buyer, and buyer names repeat from one sale to the next against the
  // same server: the event makes the key this sale's own.
  join.headers.emplace_back("Idempotency-Key", fmt::format("{}-{}-join-{}", d.event_id,
                                                           Sale::buyer_name(index), attempt));
  entry.sent = Steady::now();
  auto r = co_await conn.send(join);
  if (r.status == kNoResponse) {
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
  } else if (r.status == kNoResponse) {
    ++d.tally.no_response;
  } else {
    ++w.join_refused;
    spdlog::warn("buyer {}: joining the {} line refused: {}", index, section, describe(r));
  }
  co_return JoinOutcome{};
}

/// `arrival`: in the open model, when this buyer was meant to arrive; their first request's
/// latency counts from then.
template <typename Client>
net::awaitable<void> buyer(Sale& d, Client& conn, uint64_t index,
                           std::optional<Steady::time_point> arrival = std::nullopt) {
  // Each buyer's choices depend only on the seed and its number; what they get depends on timing.
  std::mt19937_64 rng(d.seed ^ (0x9E3779B97F4A7C15ull * (index + 1)));
  std::uniform_real_distribution<double> chance{0.0, 1.0};
  const auto token = d.token_for(Sale::buyer_name(index));
  auto& t = d.tally;
  const bool would_wait = chance(rng) < d.join_rate;  // joins a line when nothing is available

  std::set<std::string> exhausted;  // sections that answered sold_out to this buyer
  std::string last_sold_out;
  std::optional<std::string> hold_id;
  int attempts = 0, joins = 0;
  while (!hold_id) {
    if (attempts >= kHoldAttemptsMax) {
      ++t.buyers_gave_up;
      co_return;
    }
    auto look =
        request("GET", "/v1/events/" + d.event_id + "/availability", {}, {}, "availability");
    look.intended_at = std::exchange(arrival, std::nullopt);
    auto r = co_await conn.send(std::move(look));
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    if (!body) {
      if (r.status == kNoResponse) ++t.no_response;
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
                      [&d, keep = d.shared_from_this()](std::exception_ptr e) {
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
      d.buyers_who_held.insert(index);
      d.hold_granted();
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
      if (hold.status == kNoResponse) {
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
    co_await sleep_for(std::chrono::milliseconds{std::uniform_int_distribution<int64_t>{
        kReleaseAfterMin.count(), kReleaseAfterMax.count()}(rng)});
    auto r = co_await conn.send(request("DELETE", "/v1/holds/" + *hold_id, {}, token, "release"));
    if (r.status == 204) {
      ++t.releases;
      d.returned(Return::hold_released);
    }
    co_return;
  }
  if (mind < kReleaseRate + d.abandon_rate) {
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
    if (checkout.status == kNoResponse) {
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

std::string progress_line(const Sale& d, double requests_per_second) {
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
net::awaitable<void> monitor(Sale& d) {
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
    co_await sleep_for(kProgressInterval);
  }
  if (tty && printed) std::fprintf(stderr, "\n");
  std::fflush(stderr);
  d.progress_stopped = true;
}

// --- The whole run -----------------------------------------------------------------------------

/// The lateness of a 10 ms timer, sampled while the sale runs: how far behind the load
/// generator's event loop is (a busy loop delays every response it reads, and the latencies with
/// it).
net::awaitable<void> watch_loop(Sale& d) {
  auto executor = co_await net::this_coro::executor;
  net::steady_timer timer(executor);
  while (!d.stop_progress) {
    const auto due = Steady::now() + kLoopTick;
    timer.expires_at(due);
    co_await timer.async_wait(net::use_awaitable);
    d.loop_lag.push_back(std::chrono::duration_cast<Micros>(Steady::now() - due));
  }
}

double thread_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// The closed model: `concurrency` buyers at a time, each on its own connection; the next buyer
/// starts when one finishes.
net::awaitable<void> run_closed(Sale& d) {
  auto executor = co_await net::this_coro::executor;
  std::vector<Connection> connections;
  for (uint32_t i = 0; i < d.concurrency; ++i) {
    connections.emplace_back(executor, d.origin, ConnectionOptions{}, &d.recorder);
  }
  co_await run_jobs(d.concurrency, d.plan.buyers,
                    [&](size_t worker, uint64_t index) -> net::awaitable<void> {
                      if (d.admit_until && Steady::now() >= *d.admit_until) co_return;
                      ++d.buyers_started;
                      co_await buyer(d, connections[worker], index);
                    });
}

/// The open model: buyer i arrives at sale_opened + i / rate whatever happened to the others,
/// and shares `concurrency` connections with every buyer in the sale. A late start (this loop
/// behind) or a wait for a connection counts in the latency of the buyer's first request.
net::awaitable<void> run_open(Sale& d) {
  auto executor = co_await net::this_coro::executor;
  // Shared with every buyer's completion: a buyer destroyed at shutdown still gives its
  // connection back to a live pool.
  auto shared = std::make_shared<ConnectionPool>(executor, d.origin, d.concurrency, &d.recorder);
  uint64_t live = 0;
  co_await pace_arrivals(
      {.first = d.sale_opened,
       .per_second = *d.rate_per_second,
       .stop = d.admit_until.value_or(Steady::time_point::max()),
       .count = d.plan.buyers},
      [&](uint64_t index, Steady::time_point intended) {
        d.arrival_lag.push_back(std::chrono::duration_cast<Micros>(Steady::now() - intended));
        ++d.buyers_started;
        ++live;
        net::co_spawn(executor, buyer(d, *shared, index, intended),
                      [&d, &live, shared, keep = d.shared_from_this()](std::exception_ptr e) {
                        --live;
                        if (e && !d.buyer_error) d.buyer_error = e;
                      });
        return true;
      });
  while (live > 0) co_await sleep_for(std::chrono::milliseconds{20});
  if (d.buyer_error) std::rethrow_exception(d.buyer_error);
}

/// Creates the event, or reads the one given.
net::awaitable<void> open_event(Sale& d, Connection& admin) {
  if (d.event_id.empty()) {
    auto created =
        co_await admin.send(request("POST", "/v1/events", event_body(d.plan), d.admin_token, {}));
    auto event = created.status == 201 ? parse_object(created.body) : std::nullopt;
    if (!event || str_of(*event, "id").empty()) {
      throw SaleError("creating the event failed: " + describe(created));
    }
    d.event_id = str_of(*event, "id");
    co_return;
  }
  auto found = co_await admin.send(request("GET", "/v1/events/" + d.event_id, {}, {}, {}));
  auto event = found.status == 200 ? parse_object(found.body) : std::nullopt;
  auto plan = event ? plan_from_event(*event) : std::nullopt;
  if (!plan) throw SaleError("reading event " + d.event_id + " failed: " + describe(found));
  plan->buyers = d.plan.buyers;
  d.plan = std::move(*plan);
}

net::awaitable<SaleResult> play(Sale& d) {
  auto executor = co_await net::this_coro::executor;
  // However the sale ends, the monitor must stop too, or the client's loop would never return.
  struct StopMonitor {
    Sale& d;
    ~StopMonitor() { d.stop_progress = true; }
  } stop_monitor{d};
  Connection admin(executor, d.origin, {std::chrono::seconds{30}});
  co_await open_event(d, admin);
  // Walking away or letting an offer lapse is played only when it ends soon enough to be seen.
  if (d.plan.hold_ttl_seconds > kLetExpireSecondsMax) d.abandon_rate = 0;
  if (d.offer_seconds > kLetExpireSecondsMax) d.lapse_rate = 0;
  const std::string model = d.rate_per_second
                                ? fmt::format("arriving at {:g}/s over {} shared connections",
                                              *d.rate_per_second, d.concurrency)
                                : fmt::format("{} at a time", d.concurrency);
  std::fprintf(stderr,
               "event %s: %u seats; %u buyers, %s\n"
               "progress: bookings pending/confirmed/failed/cancelled, seats free/held/sold, "
               "waitlist waiting/offered/converted/expired\n",
               d.event_id.c_str(), d.plan.seats(), d.plan.buyers, model.c_str());

  d.sale_opened = Steady::now();
  d.recorder.start_timeline(d.sale_opened);
  const double cpu_before = thread_cpu_seconds();
  if (d.duration) d.admit_until = d.sale_opened + *d.duration;
  net::co_spawn(executor, monitor(d), [keep = d.shared_from_this()](std::exception_ptr) {});
  net::co_spawn(executor, watch_loop(d), [keep = d.shared_from_this()](std::exception_ptr) {});
  d.pool = std::make_shared<ConnectionPool>(
      executor, d.origin, std::min<size_t>(kWaitConnections, d.concurrency), &d.recorder);
  if (d.rate_per_second) {
    co_await run_open(d);
  } else {
    co_await run_closed(d);
  }
  d.buyers_done_after = Steady::now() - d.sale_opened;

  // The sale is over once nothing more can come back to a line: every booking final (no charge
  // or refund outstanding), no offer open and no waiter acting on one, every abandoned hold
  // expired, and all of that for a while (the sweeper offers what just came back).
  const auto give_up = Steady::now() + d.settle_for;
  std::optional<Steady::time_point> quiet_since, final_since;
  for (;;) {
    auto r = co_await admin.send(
        request("GET", "/v1/events/" + d.event_id + "/stats", {}, d.admin_token, {}));
    const auto now = Steady::now();
    auto body = r.status == 200 ? parse_object(r.body) : std::nullopt;
    const bool final = body && counts_of(*body).all_final() && d.waiters_busy == 0;
    if (!final) {
      final_since.reset();
    } else if (!final_since) {
      final_since = now;
    }
    const bool quiet =
        final && line_counts_of(*body).offered == 0 && now >= d.abandoned_expire + kSweepMargin;
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
    co_await sleep_for(kSettlePollInterval);
  }
  if (final_since) d.payments_final_after = *final_since - d.sale_opened;
  // Waiters stop at their next look; one acting on an offer finishes first.
  d.sale_over = true;
  while (d.waiters_live > 0) co_await sleep_for(std::chrono::milliseconds{20});
  d.pool.reset();
  d.sale_ended_after = Steady::now() - d.sale_opened;
  d.sale_requests = d.recorder.requests();
  d.cpu_seconds = thread_cpu_seconds() - cpu_before;
  if (d.waiter_error) std::rethrow_exception(d.waiter_error);
  d.stop_progress = true;
  while (!d.progress_stopped) co_await sleep_for(std::chrono::milliseconds{20});

  std::fprintf(stderr, "verifying: the bookings of every buyer who held seats, the seat maps, %s\n",
               d.provider_url.empty() ? "the stats" : "the payment ledger");
  auto evidence = co_await gather(d);
  const auto checks = check_all(d, evidence);
  co_return make_report(d, evidence, checks);
}

}  // namespace

net::awaitable<SaleResult> run_sale(SaleOptions options) {
  // Shared with every coroutine the sale spawns: one still suspended when the executor is torn down
  // (an interrupted run) may touch it while it is destroyed.
  auto sale = std::make_shared<Sale>();
  auto& d = *sale;
  d.plan = std::move(options.plan);
  d.seed = options.seed;
  d.concurrency = std::max<uint32_t>(1, options.concurrency);
  if (!options.rate_per_second) {
    d.concurrency = std::min(d.concurrency, std::max<uint32_t>(1, d.plan.buyers));
  }
  d.origin = std::move(options.origin);
  d.provider_url = std::move(options.provider_url);
  d.postgres_url = std::move(options.postgres_url);
  d.mint = std::move(options.mint);
  d.admin_token = d.token_for("loadgen-admin", /*admin=*/true);
  d.event_id = std::move(options.event_id);
  d.title = std::move(options.title);
  d.setup = std::move(options.setup);
  d.offer_seconds = options.offer_seconds;
  d.join_rate = options.join_rate;
  d.settle_for = options.settle_for;
  d.rate_per_second = options.rate_per_second;
  d.duration = options.duration;
  d.started = Steady::now();
  co_return co_await play(d);
}

std::optional<SaleResult> run_interruptibly(net::awaitable<SaleResult> run) {
  net::io_context ioc(1);
  std::exception_ptr failure;
  SaleResult result;
  bool interrupted = false;
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    interrupted = true;
    ioc.stop();
  });
  net::co_spawn(ioc, std::move(run), [&](std::exception_ptr e, SaleResult r) {
    failure = e;
    result = std::move(r);
    signals.cancel();
  });
  ioc.run();
  if (interrupted) return std::nullopt;
  if (failure) std::rethrow_exception(failure);
  return result;
}

}  // namespace boxoffice::loadgen

// What the buyers were really sold, read back from the API (each buyer with their own token), the
// payment provider's ledger and, when given, the database; and the invariants checked on it.
#include "loadgen/sale_state.h"

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // see buyers.cpp
#endif

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/asio.hpp>
#include <unordered_map>
#include <unordered_set>

#include "domain/time.h"
#include "loadgen/db_check.h"

namespace boxoffice::loadgen {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

constexpr size_t kGatherConnectionsMax = 64;

}  // namespace

net::awaitable<Evidence> gather(Sale& d) {
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
  for (size_t i = 0; i < std::clamp<size_t>(d.concurrency, 1, kGatherConnectionsMax); ++i) {
    connections.emplace_back(executor, d.origin, ConnectionOptions{std::chrono::seconds{30}});
  }
  std::vector<std::vector<BookingView>> per_buyer(d.buyers_started);
  std::vector<std::vector<size_t>> buyer_entries(d.buyers_started);
  for (size_t i = 0; i < d.entries.size(); ++i) buyer_entries[d.entries[i].buyer].push_back(i);
  e.entries.resize(d.entries.size());
  std::vector<std::string> list_errors, entry_errors;
  auto list = [&](size_t worker, uint64_t index) -> net::awaitable<void> {
    const auto name = Sale::buyer_name(index);
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
  // Buyers who never held anything cannot have bookings or entries; a booking the server made
  // for one anyway still shows, as sold seats that the lists read here do not account for.
  std::vector<uint64_t> to_read(d.buyers_who_held.begin(), d.buyers_who_held.end());
  for (uint64_t index = 0; index < d.buyers_started; ++index) {
    if (!buyer_entries[index].empty() && !d.buyers_who_held.contains(index))
      to_read.push_back(index);
  }
  co_await run_jobs(
      connections.size(), to_read.size(),
      [&list, &to_read](size_t worker, uint64_t job) { return list(worker, to_read[job]); });
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
  if (d.provider_url.empty()) {
    // Not given: the charges cannot be counted, only the bookings' own account.
  } else if (auto provider = parse_origin(d.provider_url)) {
    e.ledger_read = true;
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

namespace {

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

Check check_capacity(const Sale& d, const Evidence& e) {
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
  if (!e.ledger_read) {
    check.skipped = true;
    check.figures = "not checked: no payment ledger to count charges in (give the provider's URL)";
    return check;
  }
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
Check check_waitlist(const Sale& d, const Evidence& e) {
  Check check{"waitlist served in order", {}, {}};
  const int64_t window_ms = int64_t{d.offer_seconds} * 1000;
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
}  // namespace

std::vector<Check> check_all(const Sale& d, const Evidence& e) {
  std::vector<Check> checks{check_no_seat_twice(e), check_capacity(d, e), check_no_double_charge(e),
                            check_nothing_pending(e), check_waitlist(d, e)};
  if (!e.errors.empty()) {
    // Evidence that could not be read proves nothing: every check fails with the reason.
    for (auto& check : checks) {
      for (const auto& error : e.errors) check.fail("could not verify: " + error);
    }
  }
  if (!d.postgres_url.empty()) {
    DatabaseView api;
    api.event_id = d.event_id;
    api.bookings = {e.counts.pending_payment, e.counts.confirmed, e.counts.payment_failed,
                    e.counts.cancelled, e.counts.refunded};
    for (const auto& s : e.sections) api.sold[s.id] = s.sold;
    for (auto& check : check_database(d.postgres_url, api)) checks.push_back(std::move(check));
  }
  return checks;
}

}  // namespace boxoffice::loadgen

// The sale's report: Markdown for people, JSON for machines, with the same figures.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sstream>

#include "loadgen/route_report.h"
#include "loadgen/sale_state.h"

namespace boxoffice::loadgen {

namespace json = boost::json;

namespace {

std::string percent(double share) { return fmt::format("{:.0f}%", share * 100); }

std::string line_counts_row(std::string_view who, const LineCounts& c) {
  return fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", who, num(c.waiting), num(c.offered),
                     num(c.converted), num(c.expired), num(c.left), num(c.total()));
}

void report_waitlist(std::ostream& out, const Sale& d, const Evidence& e) {
  const auto& w = d.line_tally;
  const int64_t window_ms = int64_t{d.offer_seconds} * 1000;
  out << "\n## Waitlist\n\n";
  out << fmt::format(
      "{} of the buyers who found nothing available joined a section's line, for 1-{} seats; each "
      "then looked at its entry every {}-{} ms (less often while many waited: together at most {} "
      "looks/s, over {} shared connections) until it was offered seats or the sale was over. Of "
      "the offered, {} decline (release the offer's hold), {} let the {} s offer lapse, the rest "
      "check out; {} of the waiters leave the line after {}-{} s.\n\n",
      percent(d.join_rate), kLineQuantityMax, kEntryPollInterval.count(),
      kEntryPollInterval.count() + kEntryPollJitterMs, num(static_cast<int64_t>(kEntryPollRateMax)),
      std::min<size_t>(kWaitConnections, d.concurrency), percent(kDeclineOfferRate),
      percent(d.lapse_rate), d.offer_seconds, percent(kLeaveLineRate), kLeaveAfterMin.count(),
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
      num(seen.expired), num(w.declined), num(w.lapsed), d.offer_seconds);
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
json::value seconds_or_null(const std::optional<Steady::duration>& d) {
  if (!d) return nullptr;
  return std::chrono::duration<double>(*d).count();
}

std::string lag_text(const LatencySummary& l) {
  return fmt::format("p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms ({} samples)", ms(l.p50),
                     ms(l.p99), ms(l.p999), ms(l.max), num(static_cast<int64_t>(l.count)));
}

}  // namespace

SaleResult make_report(const Sale& d, const Evidence& e, const std::vector<Check>& checks) {
  std::ostringstream out;
  const auto& plan = d.plan;
  const auto& t = d.tally;
  const auto routes = d.recorder.summary();
  auto per_second = d.recorder.timeline();
  out << "\n# " << d.title << "\n\n";
  std::vector<std::string> layout;
  for (const auto& s : plan.sections) {
    layout.push_back(s.reserved
                         ? fmt::format("{} reserved, {} rows × {}", s.id, s.rows, s.seats_per_row)
                         : fmt::format("{} general admission, {}", s.id, num(s.capacity)));
  }
  out << fmt::format(
      "Event {}: {} seats ({}); holds last {} s, waitlist offers {} s; at most {} seats per "
      "buyer.\n",
      d.event_id, num(plan.seats()), fmt::join(layout, "; "), plan.hold_ttl_seconds,
      d.offer_seconds, d.seats_per_order_max());
  if (d.rate_per_second) {
    out << fmt::format(
        "{} buyers arriving at {:g} per second (open model: each arrives at its time whatever "
        "happened to the others), sharing {} keep-alive connections, each with its own token "
        "(seed {}); {} let in.\n",
        num(plan.buyers), *d.rate_per_second, d.concurrency, d.seed,
        num(static_cast<int64_t>(d.buyers_started)));
  } else {
    out << fmt::format(
        "{} buyers, {} at a time (closed model), each with its own token and keep-alive "
        "connection (seed {}); {} let in.\n",
        num(plan.buyers), d.concurrency, d.seed, num(static_cast<int64_t>(d.buyers_started)));
  }
  if (!d.setup.empty()) out << d.setup << "\n";
  out << "\n";

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
  if (d.last_hold_after) {
    out << "| last hold granted (a buyer's, or a waitlist offer) | " << secs(*d.last_hold_after)
        << " |\n";
  }
  out << "| every payment final (no booking pending, no refund outstanding) | "
      << (d.payments_final_after ? secs(*d.payments_final_after) : std::string{"never"}) << " |\n";
  out << "| sale over (every booking final, no offer open, nothing left to come back) | "
      << (d.sale_over_after ? secs(*d.sale_over_after)
                            : "not within " + secs(d.settle_for) + " of the last buyer")
      << " |\n";
  out << "| report (whole run, start-up included) | " << secs(Steady::now() - d.started)
      << " total |\n\n";

  out << "## Traffic\n\n";
  const double sale_seconds = std::chrono::duration<double>(d.sale_ended_after).count();
  const double throughput =
      sale_seconds > 0 ? static_cast<double>(d.sale_requests) / sale_seconds : 0;
  out << fmt::format("{} requests from buyers in {:.1f} s: {} requests/s. Latency in ms",
                     num(static_cast<int64_t>(d.sale_requests)), sale_seconds,
                     num(static_cast<int64_t>(throughput)));
  out << (d.rate_per_second ? ", from the intended send time (a buyer's arrival, or the moment it "
                              "began waiting for a shared connection):\n\n"
                            : ":\n\n");
  out << routes_markdown(routes);
  for (const auto& route : {"hold", "checkout"}) {
    if (auto r = d.recorder.route(route)) {
      out << fmt::format("\n{} latency: p50 {} ms, p99 {} ms.", route, ms(r->latency.p50),
                         ms(r->latency.p99));
    }
  }
  out << "\n";

  auto arrival_lag = d.arrival_lag;
  const auto arrivals = summarize(arrival_lag);
  auto loop_lag = d.loop_lag;
  const auto loop = summarize(loop_lag);
  if (d.rate_per_second) {
    out << fmt::format(
        "\nArrivals: {} buyers scheduled every {:.2f} ms; started after their intended time by {}. "
        "That delay, and any wait for a free connection, is inside the latencies above.\n",
        num(static_cast<int64_t>(arrivals.count)), 1000.0 / *d.rate_per_second, lag_text(arrivals));
  }
  const double cpu_us_per_request =
      d.sale_requests ? d.cpu_seconds * 1e6 / static_cast<double>(d.sale_requests) : 0;
  out << "\n## Load generator overhead\n\n";
  out << fmt::format(
      "- CPU: {:.2f} s of its event-loop thread (user + system) during the sale, {:.0f}% of one "
      "core; {:.1f} µs per request\n",
      d.cpu_seconds, sale_seconds > 0 ? 100.0 * d.cpu_seconds / sale_seconds : 0.0,
      cpu_us_per_request);
  out << fmt::format("- event-loop lag (a {} ms timer's lateness): {}\n", kLoopTick.count(),
                     lag_text(loop));

  out << "\n## Buyers\n\n";
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
  if (e.ledger_read) {
    out << fmt::format(
        "- charges made (the simulator's ledger): {}: {} approved, {} declined; {} of the approved "
        "refunded\n",
        num(static_cast<int64_t>(e.charges.size())), num(approved), num(declined), num(refunded));
  } else {
    out << "- charges made: not counted (no payment ledger given)\n";
  }
  // The processor's own count when the stats carry it; else what the bookings recorded.
  const auto* p = e.stats.if_contains("payments");
  const auto* payments = p && p->is_object() ? &p->as_object() : nullptr;
  if (payments && payments->contains("attempts")) attempts = int_of(*payments, "attempts");
  if (e.ledger_read) {
    out << fmt::format(
        "- attempts: {} for {} charges ({} retried: a flaky card fails twice before it is "
        "approved, a slow card's first attempt times out)",
        num(attempts), num(static_cast<int64_t>(e.charges.size())),
        num(attempts - static_cast<int64_t>(e.charges.size())));
  } else {
    out << fmt::format("- attempts: {}", num(attempts));
  }
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
  int64_t capacity = 0, sold = 0;
  for (const auto& s : e.sections) {
    out << fmt::format("| {} | {} | {} | {} | {} |\n", s.id, num(s.capacity), num(s.sold),
                       num(s.held), num(s.available));
    capacity += s.capacity;
    sold += s.sold;
  }
  int64_t confirmed_seats = 0;
  for (const auto& b : e.bookings) confirmed_seats += b.status == "confirmed" ? b.quantity : 0;

  out << "\n## Invariants\n\n";
  size_t passed = 0, skipped = 0;
  json::array invariants;
  for (const auto& check : checks) {
    const char* verdict = !check.pass() ? "FAIL" : check.skipped ? "SKIP" : "PASS";
    out << fmt::format("- {} {}: {}\n", verdict, check.name, check.figures);
    for (size_t i = 0; i < check.problems.size() && i < kProblemsShownMax; ++i) {
      out << "    - " << check.problems[i] << "\n";
    }
    if (check.problems.size() > kProblemsShownMax) {
      out << fmt::format("    - and {} more\n", check.problems.size() - kProblemsShownMax);
    }
    passed += check.pass() && !check.skipped;
    skipped += check.skipped && check.pass();
    json::array problems;
    for (const auto& problem : check.problems) problems.emplace_back(problem);
    invariants.push_back(json::object{{"name", check.name},
                                      {"pass", check.pass()},
                                      {"skipped", check.skipped},
                                      {"figures", check.figures},
                                      {"problems", std::move(problems)}});
  }
  const bool ok = passed + skipped == checks.size();
  out << fmt::format(
      "\n{}: {} of {} invariant checks passed{}.\n", ok ? "PASS" : "FAIL", passed,
      checks.size() - skipped,
      skipped ? fmt::format(" ({} skipped: nothing to check against)", skipped) : std::string{});

  json::object status_counts;
  for (const auto& [status, n] : all_statuses(routes)) status_counts[status_key(status)] = n;
  json::object sections;
  for (const auto& s : e.sections) {
    sections[s.id] = json::object{
        {"capacity", s.capacity}, {"sold", s.sold}, {"held", s.held}, {"available", s.available}};
  }
  json::object doc{
      {"event_id", d.event_id},
      {"seed", d.seed},
      {"model", json::object{{"kind", d.rate_per_second ? "open" : "closed"},
                             {"concurrency", d.concurrency},
                             {"rate_per_second", d.rate_per_second ? json::value(*d.rate_per_second)
                                                                   : json::value(nullptr)}}},
      {"buyers", json::object{{"planned", plan.buyers},
                              {"started", d.buyers_started},
                              {"bought", t.buyers_bought},
                              {"joined_waitlist", t.buyers_joined}}},
      {"seats", json::object{{"capacity", capacity},
                             {"sold", sold},
                             {"confirmed_in_bookings", confirmed_seats},
                             {"sections", std::move(sections)}}},
      {"bookings", json::object{{"pending_payment", c.pending_payment},
                                {"confirmed", c.confirmed},
                                {"payment_failed", c.payment_failed},
                                {"cancelled", c.cancelled},
                                {"refunded", c.refunded},
                                {"total", c.total()}}},
      {"holds",
       json::object{
           {"made", t.holds_ok}, {"conflicts", t.hold_conflicts}, {"sold_out", t.hold_sold_out}}},
      {"requests", d.sale_requests},
      {"sale_seconds", sale_seconds},
      {"throughput_rps", throughput},
      {"status_counts", std::move(status_counts)},
      {"routes", routes_json(routes)},
      {"per_second", timeline_json(per_second)},
      {"timeline_seconds", json::object{{"sold_out", seconds_or_null(d.sold_out_after)},
                                        {"buyers_done", seconds_or_null(d.buyers_done_after)},
                                        {"last_hold", seconds_or_null(d.last_hold_after)},
                                        {"payments_final", seconds_or_null(d.payments_final_after)},
                                        {"sale_over", seconds_or_null(d.sale_over_after)}}},
      {"arrivals", d.rate_per_second ? json::value(latency_json(arrivals)) : json::value(nullptr)},
      {"overhead", json::object{{"cpu_seconds", d.cpu_seconds},
                                {"cpu_us_per_request", cpu_us_per_request},
                                {"loop_lag", latency_json(loop)}}},
      {"charges", e.ledger_read ? json::value(json::object{{"total", e.charges.size()},
                                                           {"approved", approved},
                                                           {"declined", declined},
                                                           {"refunded", refunded}})
                                : json::value(nullptr)},
      {"invariants", std::move(invariants)},
      {"passed", ok}};
  return SaleResult{ok, out.str(), std::move(doc), std::move(per_second)};
}

}  // namespace boxoffice::loadgen

#pragma once
// The state of one flash sale (see sale.h) shared by the parts that play it (buyers.cpp), check it
// (invariants.cpp) and report it (report.cpp). Internal to the load generator. All of it is used
// from one thread: the sale's coroutines run on a single-threaded executor.

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/http_client.h"
#include "loadgen/recorder.h"
#include "loadgen/sale.h"

namespace boxoffice::loadgen {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

// --- Limits of the simulated crowd (each one bounds how long a buyer or the sale can take) ------
constexpr uint32_t kSeatsPerBuyerMax = 4;  // a buyer asks for 1 to this many seats
constexpr int kHoldAttemptsMax = 6;        // holds tried per buyer (conflicts, sold-out sections)
constexpr auto kBookingPollInterval = 200ms;
constexpr auto kBookingPollFor = 60s;  // a buyer stops watching a booking after this
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
// Holders who walk away (their hold expires), and offered buyers who let the offer lapse: fewer
// when the event's hold TTL or the server's offer window is long (Sale::abandon_rate/lapse_rate),
// or the sale would wait that long to be over.
constexpr double kAbandonRate = 0.03;
constexpr double kCancelRate = 0.05;  // confirmed buyers who cancel (and are refunded)
constexpr size_t kProblemsShownMax = 5;

// --- The waitlist ------------------------------------------------------------------------------
constexpr uint32_t kLineQuantityMax = 2;
constexpr int kJoinAttemptsMax = 3;         // a join refused with seats_available sends them back
constexpr double kDeclineOfferRate = 0.10;  // offered buyers who release the offer's hold
constexpr double kLapseOfferRate = 0.10;
constexpr double kLeaveLineRate = 0.05;  // waiters who give up after a while and leave
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

constexpr auto kLoopTick = 10ms;  // how often the event loop's lateness is sampled
// A lapse or an abandoned hold is played only when the server lets it go this soon: otherwise the
// sale would wait that long to be over.
constexpr uint32_t kLetExpireSecondsMax = 60;

struct PaymentShare {
  std::string_view method;
  double share;
};
constexpr PaymentShare kPaymentMix[] = {{"pm_card_ok", 0.80},
                                        {"pm_card_declined", 0.08},
                                        {"pm_card_flaky", 0.06},
                                        {"pm_card_slow", 0.06}};

// --- JSON and formatting helpers (sale_util.cpp)
// --------------------------------------------------

/// Built by a function, not braced in place: g++ 12 refuses a string literal in a braced
/// initializer inside a co_await expression ("array used as initializer").
Request request(std::string method, std::string target, std::string body, std::string bearer,
                std::string route);
/// A row's label as event_body() names rows: A … Z, AA, AB, …
std::string row_name(uint32_t index);
std::optional<boost::json::object> parse_object(std::string_view text);
int64_t int_of(const boost::json::object& o, std::string_view key);
std::string str_of(const boost::json::object& o, std::string_view key);
const boost::json::array* array_of(const boost::json::object& o, std::string_view key);
/// The problem+json code of a refusal ("seats_unavailable"), or empty.
std::string code_of(const Response& response);
std::string describe(const Response& r);
/// 6000 → "6,000": the report is read by people.
std::string num(int64_t n);
std::string secs(Steady::duration d);
std::string ms(Micros us);

// --- What the crowd sees and does --------------------------------------------------------------

struct SectionState {
  std::string id;
  bool reserved = false;
  int64_t capacity = 0, available = 0, held = 0, sold = 0;
};

struct BookingCounts {
  int64_t pending_payment = 0, confirmed = 0, payment_failed = 0, cancelled = 0, refunded = 0;
  int64_t total() const {
    return pending_payment + confirmed + payment_failed + cancelled + refunded;
  }
  /// Nothing left for the payment processor: no charge and no refund outstanding.
  bool all_final() const { return pending_payment == 0 && cancelled == 0; }
};

/// The `waitlist` object of the stats: entries of the event by status.
struct LineCounts {
  int64_t waiting = 0, offered = 0, converted = 0, expired = 0, left = 0;
  int64_t total() const { return waiting + offered + converted + expired + left; }
  bool operator==(const LineCounts&) const = default;
};

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

/// Where seats came from that a waitlist could be offered: when the sale's buyers made each happen
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

std::vector<SectionState> sections_of(const boost::json::object& body);
BookingCounts counts_of(const boost::json::object& stats);
LineCounts line_counts_of(const boost::json::object& stats);
std::string line_counts_text(const LineCounts& c);

class ConnectionPool;

/// Everything the sale knows. All coroutines run on one thread, so none of this needs a lock.
struct Sale : std::enable_shared_from_this<Sale> {
  Plan plan;
  uint64_t seed = 0;
  uint32_t concurrency = 0;
  Origin origin;
  std::string provider_url;
  std::string postgres_url;
  std::function<std::string(const std::string&, bool)> mint;
  std::string admin_token;
  std::string title, setup;
  uint32_t offer_seconds = 10;
  std::chrono::seconds settle_for{120};
  std::optional<double> rate_per_second;              // open model
  std::optional<std::chrono::milliseconds> duration;  // no buyer let in after this
  std::optional<Steady::time_point> admit_until;      // the sale's opening + duration
  double join_rate = 0;                               // SaleOptions::join_rate
  double abandon_rate = kAbandonRate;
  double lapse_rate = kLapseOfferRate;
  std::string event_id;

  Recorder recorder;  // the buyers' requests only
  Tally tally;
  Steady::time_point started;      // the run began
  Steady::time_point sale_opened;  // the first buyer was let in
  std::optional<Steady::duration> sold_out_after;
  std::optional<Steady::duration> buyers_done_after;
  Steady::duration sale_ended_after{};  // the last waiter stopped
  uint64_t sale_requests = 0;           // requests the buyers made
  /// Buyers who were granted a hold themselves (offers come with a waitlist entry): with those
  /// in a line, the only buyers whose own booking lists the checks read. Anyone else holding a
  /// booking would show as seats sold that no buyer's list accounts for.
  std::set<uint64_t> buyers_who_held;
  uint64_t buyers_started = 0;  // let in (fewer than plan.buyers when --duration ends it)
  /// The last hold granted: a buyer's own, or a waitlist offer (as its buyer first saw it).
  std::optional<Steady::duration> last_hold_after;
  void hold_granted() { last_hold_after = Steady::now() - sale_opened; }
  std::optional<Steady::duration> payments_final_after;  // every booking final from then on
  std::exception_ptr buyer_error;

  // What the load generator itself cost, and how late it was.
  std::vector<Micros> arrival_lag;  // open model: each buyer's start after its intended time
  std::vector<Micros> loop_lag;     // a 10 ms timer's lateness: the event loop's backlog
  double cpu_seconds = 0;           // this thread's user + system time during the sale

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
    return mint(subject, admin);
  }
  /// Seats one buyer asks for at most: the event's cap, and never more than kSeatsPerBuyerMax.
  uint32_t seats_per_order_max() const {
    return std::clamp<uint32_t>(plan.max_seats_per_order, 1, kSeatsPerBuyerMax);
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

// --- Verification (invariants.cpp) ---------------------------------------------------------------

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
  bool skipped = false;  // nothing to check it against (figures say why); not a failure
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
  boost::json::object stats;
  std::vector<SectionState> sections;
  BookingCounts counts;
  LineCounts line;                                          // the stats' count of entries by status
  std::vector<EntryView> entries;                           // d.entries, read by their buyers
  std::map<std::string, std::set<std::string>> sold_seats;  // reserved section → seat map "sold"
  std::vector<BookingView> bookings;                        // every buyer's bookings of this event
  std::vector<LedgerCharge> charges;
  bool ledger_read = false;  // the provider's ledger was asked (a provider URL was given)
  std::vector<std::string> foreign_keys;  // charges for bookings of other events in the data dir
  std::vector<std::string> errors;        // evidence that could not be read
};

bool is_live(const std::string& status);
/// Reads back what the buyers were sold: every buyer's own bookings and entries, seat maps, stats,
/// the provider's ledger.
boost::asio::awaitable<Evidence> gather(Sale& d);
/// The invariant checks, from the API (and the ledger when read), then the database's.
std::vector<Check> check_all(const Sale& d, const Evidence& e);

// --- The report (report.cpp) ---------------------------------------------------------------------

SaleResult make_report(const Sale& d, const Evidence& e, const std::vector<Check>& checks);

}  // namespace boxoffice::loadgen

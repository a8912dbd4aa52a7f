#pragma once
// A flash sale played by simulated buyers against a running boxoffice API, then checked: what
// `boxoffice demo` runs against its in-process System and `boxoffice loadgen` against any server.
// Buyers fetch availability, hold (exact seats, best available, general admission), check out
// with a mix of test cards, poll their booking, join a waitlist when sold out, and now and then
// release, abandon or cancel. Afterwards every buyer's own bookings and waitlist entries, the seat
// maps, the stats and (when given) the payment provider's ledger and the database are read back
// and the invariants checked.

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "loadgen/http_client.h"

namespace boxoffice::loadgen {

struct SectionPlan {
  std::string id;
  std::string name;
  bool reserved = false;
  uint32_t rows = 0;           // reserved
  uint32_t seats_per_row = 0;  // reserved
  uint32_t capacity = 0;
  int64_t price = 0;  // minor units
};

SectionPlan general_section(std::string id, std::string name, uint32_t capacity, int64_t price);
SectionPlan reserved_section(std::string id, std::string name, uint32_t rows, uint32_t per_row,
                             int64_t price);

/// The event sold and the crowd that buys it.
struct Plan {
  std::string name = "Flash sale (boxoffice loadgen)";
  std::vector<SectionPlan> sections;
  uint32_t buyers = 0;
  uint32_t hold_ttl_seconds = 15;
  uint32_t max_seats_per_order = 4;  // also the per-buyer cap: one order per buyer
  uint32_t seats() const {
    uint32_t n = 0;
    for (const auto& s : sections) n += s.capacity;
    return n;
  }
};

/// The body of POST /v1/events for `plan`.
std::string event_body(const Plan& plan);

/// The sections, hold TTL and order cap of an existing event (GET /v1/events/{id}); nullopt when
/// the body is not an event.
std::optional<Plan> plan_from_event(const boost::json::object& event);

struct SaleOptions {
  Origin origin;
  /// Signs a token for `subject` (with the admin role when `admin`) that the server accepts.
  std::function<std::string(const std::string& subject, bool admin)> mint;
  Plan plan;
  /// Empty: the sale creates its event from `plan`; else it sells this existing event (whose
  /// sections replace the plan's).
  std::string event_id;
  /// Closed model: buyers active at once, each on its own keep-alive connection. Open model: the
  /// connections the arriving buyers share (a buyer waiting for one is queueing, and its latency
  /// shows it).
  uint32_t concurrency = 64;
  /// Open model: buyers arrive at this constant rate (per second), whether or not earlier ones
  /// got their answers. Unset: the closed model.
  std::optional<double> rate_per_second;
  /// No buyer is let in after this (those in the sale finish their journey).
  std::optional<std::chrono::milliseconds> duration;
  uint64_t seed = 0;
  /// The server's waitlist offer window (its waitlist_offer_seconds): the waitlist order check
  /// dates each offer by it.
  uint32_t offer_seconds = 10;
  /// The share of the buyers who find nothing available that join a waitlist (the others leave).
  double join_rate = 0.6;
  /// After the last buyer: how long to wait for every booking to be final and every offer closed.
  std::chrono::seconds settle_for{120};
  /// The payment provider's base URL ("http://host:port", with GET /v1/ledger as payment-sim
  /// has it); empty: charges are checked from the bookings alone.
  std::string provider_url;
  /// libpq URL of the bookings database; empty: no database checks.
  std::string postgres_url;
  /// Report heading and the paragraph under it (how the server runs).
  std::string title = "boxoffice loadgen: a flash sale";
  std::string setup;
};

struct SaleResult {
  bool passed = false;       // every invariant check passed
  std::string markdown;      // the report
  boost::json::object json;  // the same figures, for machines
  /// Second by second from the sale's opening: requests, holds made, latency (for a chart).
  std::vector<SecondSummary> per_second;
};

/// The sale could not run at all (the event could not be created or read): not a failed check.
class SaleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Runs the whole sale on the calling coroutine's executor, which must be single-threaded (the
/// buyers share state without locks). Draws a progress line on stderr meanwhile. Throws
/// SaleError.
boost::asio::awaitable<SaleResult> run_sale(SaleOptions options);

/// Runs `run` (a sale, or a holds run) on a single-threaded io_context of its own until it ends,
/// or until SIGINT/SIGTERM stops it: then nullopt. Rethrows what the run threw.
std::optional<SaleResult> run_interruptibly(boost::asio::awaitable<SaleResult> run);

}  // namespace boxoffice::loadgen

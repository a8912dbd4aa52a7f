#pragma once
// One operation of the hot path repeated for a while, apart from a buyer's journey: a hold of a
// few adjacent seats, then (as asked) nothing, its release or its checkout. For the throughput
// and latency of holds and checkouts themselves: as fast as the server answers (closed model:
// N connections each sending its next operation once the last is answered) or at a constant
// arrival rate (open model: latency from each operation's intended start).

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "loadgen/sale.h"

namespace boxoffice::loadgen {

/// What follows each hold.
enum class AfterHold {
  keep,      // nothing: the seats stay held (each operation takes seats no other one took)
  release,   // DELETE the hold: the same seats come round again, so any event size will do
  checkout,  // check it out with a card that is approved: the seats are sold
};

struct HoldLoadOptions {
  Origin origin;
  /// Signs a token for `subject` (with the admin role when `admin`) that the server accepts.
  std::function<std::string(const std::string& subject, bool admin)> mint;
  /// The event it creates: its reserved sections are cut into blocks of `seats_per_hold`
  /// adjacent seats, taken in turn (general admission sections are left alone).
  Plan plan;
  uint32_t seats_per_hold = 4;
  AfterHold after = AfterHold::keep;
  /// Closed model: connections, each with one operation at a time. Open model: the connections
  /// the arriving operations share.
  uint32_t concurrency = 64;
  /// Open model: operations start at this rate (per second). Unset: the closed model.
  std::optional<double> rate_per_second;
  /// Operations run for warmup + duration; only those completed after the warmup are measured.
  std::chrono::milliseconds warmup{std::chrono::seconds{2}};
  std::chrono::milliseconds duration{std::chrono::seconds{10}};
  std::string title = "boxoffice loadgen: holds";
  std::string setup;
};

/// Runs on the calling coroutine's executor, which must be single-threaded. `passed` is false when
/// a request got a 5xx or no response, or nothing succeeded. Throws SaleError when the event
/// cannot be created.
boost::asio::awaitable<SaleResult> run_hold_load(HoldLoadOptions options);

}  // namespace boxoffice::loadgen

#pragma once
// The open model's clock: arrivals at a constant rate, each with the time it was meant to start,
// whatever happened to the ones before. Carries Asio's awaitable: include it only from .cpp files
// that run coroutines.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>

namespace boxoffice::loadgen {

/// Arrival i is meant for `first + i / per_second`.
struct ArrivalSchedule {
  std::chrono::steady_clock::time_point first;
  double per_second = 1;
  /// No arrival meant for this time or later.
  std::chrono::steady_clock::time_point stop = std::chrono::steady_clock::time_point::max();
  /// At most this many arrivals.
  uint64_t count = std::numeric_limits<uint64_t>::max();
};

/// How often the pacing timer may wake: every arrival meant for a time up to a wake starts in
/// that wake. Arming a timer per arrival (13,000 a second at row 5's rate) cost the load
/// generator ~17 µs of kernel time each on a virtual machine (timerfd_settime reprogramming the
/// CPU's timer) and made it the bottleneck of its own measurement; the wait this adds (below a
/// tick) is counted in every latency, which runs from the intended time.
inline constexpr auto kArrivalTick = std::chrono::milliseconds{1};

/// Calls `arrive(i, intended)` for i = 0, 1, ... on the caller's executor, never before the
/// arrival's intended time, until the schedule ends or `arrive` returns false. Returns the number
/// of arrivals that started (those for which `arrive` returned true).
boost::asio::awaitable<uint64_t> pace_arrivals(
    const ArrivalSchedule& schedule,
    std::function<bool(uint64_t index, std::chrono::steady_clock::time_point intended)> arrive);

}  // namespace boxoffice::loadgen

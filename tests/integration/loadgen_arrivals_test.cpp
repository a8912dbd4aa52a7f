// The open model's pacing (loadgen/arrivals.h) on a real event loop: every arrival starts in
// order, never before its intended time, and the schedule's end, its count and the caller's "stop"
// each end it.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <vector>

#include "loadgen/arrivals.h"

namespace boxoffice::loadgen {
namespace {

using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Arrival {
  uint64_t index;
  Steady::time_point intended, started;
};

/// Runs pace_arrivals on an io_context of its own; `stop_after`: arrive answers false then.
std::pair<uint64_t, std::vector<Arrival>> pace(ArrivalSchedule schedule,
                                               uint64_t stop_after = UINT64_MAX) {
  boost::asio::io_context io;
  std::vector<Arrival> seen;
  auto started = boost::asio::co_spawn(io,
                                       pace_arrivals(schedule,
                                                     [&](uint64_t i, Steady::time_point intended) {
                                                       seen.push_back({i, intended, Steady::now()});
                                                       return seen.size() < stop_after;
                                                     }),
                                       boost::asio::use_future);
  io.run();
  return {started.get(), std::move(seen)};
}

void expect_in_order_and_never_early(const ArrivalSchedule& s, const std::vector<Arrival>& seen) {
  const std::chrono::duration<double> gap{1.0 / s.per_second};
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].index, i);
    const auto meant = s.first + std::chrono::duration_cast<Steady::duration>(gap * double(i));
    EXPECT_EQ(seen[i].intended, meant) << i;
    EXPECT_GE(seen[i].started, seen[i].intended) << i;
  }
}

TEST(LoadgenArrivals, AFastRateStartsEveryArrivalOfTheWindowInOrderAndNeverEarly) {
  // 20,000 a second (one every 50 µs, many per pacing tick) for 40 ms: arrivals 0..799.
  const auto first = Steady::now() + 5ms;
  const ArrivalSchedule s{.first = first, .per_second = 20000, .stop = first + 40ms};
  const auto [started, seen] = pace(s);
  EXPECT_EQ(started, 800u);
  ASSERT_EQ(seen.size(), 800u);
  expect_in_order_and_never_early(s, seen);
}

TEST(LoadgenArrivals, ASlowRateWaitsForEachArrival) {
  // One every 4 ms (longer than a tick): each waits for its own time.
  const auto first = Steady::now();
  const ArrivalSchedule s{.first = first, .per_second = 250, .count = 6};
  const auto [started, seen] = pace(s);
  EXPECT_EQ(started, 6u);
  ASSERT_EQ(seen.size(), 6u);
  expect_in_order_and_never_early(s, seen);
}

TEST(LoadgenArrivals, TheCallerStopsThemAndArrivalsDueInThePastStartAtOnce) {
  // The schedule began a second ago: the first 1,000 are all due, and the caller stops at 10.
  const ArrivalSchedule s{.first = Steady::now() - 1s, .per_second = 1000};
  const auto [started, seen] = pace(s, 10);
  EXPECT_EQ(started, 9u);  // the 10th answered false: it did not start
  ASSERT_EQ(seen.size(), 10u);
  expect_in_order_and_never_early(s, seen);
}

}  // namespace
}  // namespace boxoffice::loadgen

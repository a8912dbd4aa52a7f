#include "loadgen/arrivals.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace boxoffice::loadgen {

namespace net = boost::asio;
using Steady = std::chrono::steady_clock;

// Arrivals started in a row, without a wait, before the loop lets the others run.
constexpr uint64_t kArrivalsPerTurn = 64;

net::awaitable<uint64_t> pace_arrivals(const ArrivalSchedule& schedule,
                                       std::function<bool(uint64_t, Steady::time_point)> arrive) {
  net::steady_timer timer(co_await net::this_coro::executor);
  const std::chrono::duration<double> gap{1.0 / schedule.per_second};
  auto now = Steady::now();
  uint64_t since_wait = 0;
  for (uint64_t i = 0; i < schedule.count; ++i) {
    const auto intended =
        schedule.first + std::chrono::duration_cast<Steady::duration>(gap * static_cast<double>(i));
    if (intended >= schedule.stop) co_return i;
    if (intended > now) now = Steady::now();
    if (intended > now) {
      timer.expires_at(std::max(intended, now + kArrivalTick));
      co_await timer.async_wait(net::use_awaitable);
      now = Steady::now();
      since_wait = 0;
    } else if (++since_wait == kArrivalsPerTurn) {
      // Far behind (a busy loop, or a schedule that began in the past): the arrivals already
      // started get a turn before more are added.
      co_await net::post(co_await net::this_coro::executor, net::use_awaitable);
      since_wait = 0;
      now = Steady::now();
    }
    if (!arrive(i, intended)) co_return i;
  }
  co_return schedule.count;
}

}  // namespace boxoffice::loadgen

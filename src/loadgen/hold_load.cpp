#include "loadgen/hold_load.h"

// See buyers.cpp: a false positive of g++ 12 on Asio's coroutine frames.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <memory>
#include <sstream>

#include "loadgen/arrivals.h"
#include "loadgen/connection_pool.h"
#include "loadgen/route_report.h"
#include "loadgen/sale_state.h"

namespace boxoffice::loadgen {

namespace {

namespace json = boost::json;

constexpr auto kProgressEvery = std::chrono::seconds{1};
constexpr auto kDrainPoll = std::chrono::milliseconds{20};

/// The seats of the event's reserved sections as blocks of `size` adjacent seats of one row:
/// block b is a fixed set of seat ids, so the operations can take them in turn without reading
/// the seat map.
class SeatBlocks {
 public:
  SeatBlocks(const Plan& plan, uint32_t size) : size_(size) {
    for (const auto& s : plan.sections) {
      if (!s.reserved || s.seats_per_row < size) continue;
      const uint64_t per_row = s.seats_per_row / size;
      sections_.push_back({s.id, per_row, per_row * s.rows});
      total_ += per_row * s.rows;
    }
  }
  uint64_t total() const { return total_; }

  /// {"seats": [...]} for block `b` (< total()).
  std::string body(uint64_t b) const {
    for (const auto& s : sections_) {
      if (b >= s.blocks) {
        b -= s.blocks;
        continue;
      }
      const auto row = static_cast<uint32_t>(b / s.per_row);
      const auto first = static_cast<uint32_t>(b % s.per_row) * size_ + 1;
      json::array ids;
      for (uint32_t i = 0; i < size_; ++i) {
        ids.emplace_back(fmt::format("{}:{}:{}", s.id, row_name(row), first + i));
      }
      return json::serialize(json::object{{"seats", std::move(ids)}});
    }
    return {};
  }

 private:
  struct Section {
    std::string id;
    uint64_t per_row;  // blocks per row
    uint64_t blocks;
  };
  uint32_t size_;
  std::vector<Section> sections_;
  uint64_t total_ = 0;
};

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::string_view after_name(AfterHold after) {
  switch (after) {
    case AfterHold::keep:
      return "keep";
    case AfterHold::release:
      return "release";
    case AfterHold::checkout:
      return "checkout";
  }
  return "keep";
}

struct Run : std::enable_shared_from_this<Run> {
  explicit Run(HoldLoadOptions o)
      : options(std::move(o)), blocks(options.plan, options.seats_per_hold) {}

  HoldLoadOptions options;
  SeatBlocks blocks;
  std::string event_id;
  Recorder recorder;
  Steady::time_point measure_from{}, end_at{};
  uint64_t next_block = 0, started = 0, ok = 0, ok_measured = 0, conflicts = 0;
  uint64_t out_of_seats = 0;  // operations not started: every block taken (AfterHold::keep)
  std::vector<Micros> arrival_lag;
  double cpu_at_measure = 0;
  bool stop_progress = false;

  bool measuring() const { return Steady::now() >= measure_from; }
  std::string route(std::string_view name) const {
    return measuring() ? std::string{name} : std::string{};  // the warmup is not recorded
  }

  /// The next block, or nullopt when the operations would take seats already taken.
  std::optional<uint64_t> take_block() {
    if (blocks.total() == 0) return std::nullopt;
    if (options.after != AfterHold::release && next_block >= blocks.total()) return std::nullopt;
    return next_block++ % blocks.total();
  }

  /// One operation: hold, then what options.after says. `intended`: its start in the open model.
  template <typename Client>
  net::awaitable<void> operate(Client& client, uint64_t block,
                               std::optional<Steady::time_point> intended) {
    const auto n = started++;
    const auto token = options.mint(fmt::format("load-{}", n), false);
    auto hold = request("POST", "/v1/events/" + event_id + "/holds", blocks.body(block), token,
                        route("hold"));
    hold.intended_at = intended;
    auto held = co_await client.send(std::move(hold));
    if (held.status != 201) {
      if (held.status == 409) ++conflicts;
      co_return;
    }
    const auto body = parse_object(held.body);
    const auto hold_id = body ? str_of(*body, "id") : std::string{};
    bool done = options.after == AfterHold::keep;
    if (options.after == AfterHold::release) {
      auto r = co_await client.send(
          request("DELETE", "/v1/holds/" + hold_id, {}, token, route("release")));
      done = r.status == 204;
    } else if (options.after == AfterHold::checkout) {
      auto r = co_await client.send(request("POST", "/v1/holds/" + hold_id + "/checkout",
                                            R"({"payment_method":"pm_card_ok"})", token,
                                            route("checkout")));
      done = r.status == 202;
    }
    if (!done) co_return;
    ++ok;
    if (measuring() && Steady::now() < end_at) ++ok_measured;
  }

  net::awaitable<void> closed() {
    auto executor = co_await net::this_coro::executor;
    std::vector<Connection> connections;
    connections.reserve(options.concurrency);
    for (uint32_t i = 0; i < options.concurrency; ++i) {
      connections.emplace_back(executor, options.origin, ConnectionOptions{}, &recorder);
    }
    co_await run_jobs(options.concurrency, options.concurrency,
                      [this, &connections](size_t worker, uint64_t) -> net::awaitable<void> {
                        while (Steady::now() < end_at) {
                          const auto block = take_block();
                          if (!block) {
                            ++out_of_seats;
                            break;
                          }
                          co_await operate(connections[worker], *block, std::nullopt);
                        }
                      });
  }

  net::awaitable<void> open() {
    auto executor = co_await net::this_coro::executor;
    auto pool =
        std::make_shared<ConnectionPool>(executor, options.origin, options.concurrency, &recorder);
    uint64_t live = 0;
    std::exception_ptr failure;
    co_await pace_arrivals(
        {.first = Steady::now(), .per_second = *options.rate_per_second, .stop = end_at},
        [&](uint64_t, Steady::time_point intended) {
          if (intended >= measure_from) {
            arrival_lag.push_back(std::chrono::duration_cast<Micros>(Steady::now() - intended));
          }
          const auto block = take_block();
          if (!block) {
            ++out_of_seats;
            return false;
          }
          ++live;
          net::co_spawn(executor, operate(*pool, *block, intended),
                        [&live, &failure, pool, keep = shared_from_this()](std::exception_ptr e) {
                          --live;
                          if (e && !failure) failure = e;
                        });
          return true;
        });
    while (live > 0) co_await sleep_for(kDrainPoll);
    if (failure) std::rethrow_exception(failure);
  }

  net::awaitable<void> progress() {
    auto executor = co_await net::this_coro::executor;
    net::steady_timer timer(executor);
    const bool terminal = isatty(STDERR_FILENO) == 1;
    uint64_t last_ok = 0;
    auto last = Steady::now();
    while (!stop_progress) {
      timer.expires_after(kProgressEvery);
      co_await timer.async_wait(net::use_awaitable);
      const auto now = Steady::now();
      const double seconds = std::chrono::duration<double>(now - last).count();
      const auto phase = now < measure_from ? "warming up" : "measuring";
      std::fprintf(stderr, "%s%s: %llu operations done, %.0f/s, %llu requests%s",
                   terminal ? "\r" : "", phase, static_cast<unsigned long long>(ok),
                   seconds > 0 ? static_cast<double>(ok - last_ok) / seconds : 0.0,
                   static_cast<unsigned long long>(recorder.requests()), terminal ? "   " : "\n");
      last_ok = ok;
      last = now;
    }
    if (terminal) std::fprintf(stderr, "\n");
  }

  SaleResult report(double measured_seconds, double cpu) {
    const auto routes = recorder.summary();
    const auto statuses = all_statuses(routes);
    uint64_t failures = 0, requests = 0;
    for (const auto& [status, n] : statuses) {
      requests += n;
      if (status == kNoResponse || status >= 500) failures += n;
    }
    const double rate = measured_seconds > 0 ? ok_measured / measured_seconds : 0;
    const auto what = options.after == AfterHold::checkout ? "checkouts" : "holds";
    auto lag = arrival_lag;
    const auto arrivals = summarize(lag);
    std::ostringstream out;
    out << "\n# " << options.title << "\n\n";
    out << fmt::format(
        "Event {}: {} seats in blocks of {} adjacent seats ({} blocks); each operation a hold of "
        "one block by a buyer of its own, then {}; holds last {} s.\n",
        event_id, num(options.plan.seats()), options.seats_per_hold,
        num(static_cast<int64_t>(blocks.total())), after_name(options.after),
        options.plan.hold_ttl_seconds);
    if (options.rate_per_second) {
      out << fmt::format(
          "Open model: operations start at {:g} per second over {} shared keep-alive connections; "
          "latency from each one's intended start.\n",
          *options.rate_per_second, options.concurrency);
    } else {
      out << fmt::format("Closed model: {} keep-alive connections, one operation at a time each.\n",
                         options.concurrency);
    }
    if (!options.setup.empty()) out << options.setup << "\n";
    out << fmt::format(
        "\n**{} {}/s** completed ({} in the {:.1f} s measured after a {:.1f} s warmup).\n\n", what,
        num(static_cast<int64_t>(rate)), num(static_cast<int64_t>(ok_measured)), measured_seconds,
        std::chrono::duration<double>(options.warmup).count());
    out << routes_markdown(routes) << "\n";
    if (options.rate_per_second) {
      out << fmt::format("\nArrivals started after their intended time by p50 {} ms, p99 {} ms.\n",
                         ms(arrivals.p50), ms(arrivals.p99));
    }
    if (conflicts) out << fmt::format("\n{} holds refused with 409.\n", num(conflicts));
    if (out_of_seats) {
      out << "\nThe event ran out of free blocks before the end: make it larger.\n";
    }
    out << fmt::format("\nLoad generator CPU: {:.1f} µs per request.\n",
                       requests ? cpu * 1e6 / static_cast<double>(requests) : 0.0);
    const bool passed = failures == 0 && ok_measured > 0 && !out_of_seats;
    out << fmt::format("\n{}: {} requests without a response or with a 5xx.\n",
                       passed ? "PASS" : "FAIL", num(static_cast<int64_t>(failures)));
    json::object doc{
        {"event_id", event_id},
        {"operation", json::object{{"seats_per_hold", options.seats_per_hold},
                                   {"after_hold", after_name(options.after)}}},
        {"model", json::object{{"kind", options.rate_per_second ? "open" : "closed"},
                               {"concurrency", options.concurrency},
                               {"rate_per_second", options.rate_per_second
                                                       ? json::value(*options.rate_per_second)
                                                       : json::value(nullptr)}}},
        {"measured_seconds", measured_seconds},
        {"completed", ok_measured},
        {"per_second", rate},
        {"conflicts", conflicts},
        {"failures", failures},
        {"ran_out_of_seats", out_of_seats > 0},
        {"routes", routes_json(routes)},
        {"arrivals",
         options.rate_per_second ? json::value(latency_json(arrivals)) : json::value(nullptr)},
        {"cpu_us_per_request", requests ? cpu * 1e6 / static_cast<double>(requests) : 0.0},
        {"per_second_timeline", timeline_json(recorder.timeline())},
        {"passed", passed}};
    return SaleResult{passed, out.str(), std::move(doc), recorder.timeline()};
  }
};

}  // namespace

net::awaitable<SaleResult> run_hold_load(HoldLoadOptions options) {
  auto executor = co_await net::this_coro::executor;
  auto run = std::make_shared<Run>(std::move(options));
  auto& o = run->options;
  if (run->blocks.total() == 0) {
    throw SaleError(fmt::format("no reserved row has {} seats for a hold", o.seats_per_hold));
  }
  o.plan.max_seats_per_order = o.seats_per_hold;
  {
    Connection admin(executor, o.origin, {std::chrono::seconds{60}});
    auto created = co_await admin.send(
        request("POST", "/v1/events", event_body(o.plan), o.mint("load-admin", true), {}));
    auto event = created.status == 201 ? parse_object(created.body) : std::nullopt;
    if (!event || str_of(*event, "id").empty()) {
      throw SaleError("creating the event failed: " + describe(created));
    }
    run->event_id = str_of(*event, "id");
  }
  const auto start = Steady::now();
  run->measure_from = start + o.warmup;
  run->end_at = run->measure_from + o.duration;
  // When the warmup ends: the timeline and the CPU count start.
  net::co_spawn(
      executor,
      [run]() -> net::awaitable<void> {
        net::steady_timer t(co_await net::this_coro::executor, run->measure_from);
        co_await t.async_wait(net::use_awaitable);
        run->recorder.start_timeline(run->measure_from);
        run->cpu_at_measure = cpu_seconds();
      },
      net::detached);
  // The lambda's copy of `run` keeps it alive until the progress line's last tick.
  net::co_spawn(
      executor, [run]() -> net::awaitable<void> { co_await run->progress(); }, net::detached);
  struct StopProgress {
    Run& run;
    ~StopProgress() { run.stop_progress = true; }
  } stop_progress{*run};
  if (o.rate_per_second) {
    co_await run->open();
  } else {
    co_await run->closed();
  }
  const double cpu = run->cpu_at_measure > 0 ? cpu_seconds() - run->cpu_at_measure : 0.0;
  const auto finished = std::min(Steady::now(), run->end_at);
  const double measured = finished > run->measure_from
                              ? std::chrono::duration<double>(finished - run->measure_from).count()
                              : 0.0;
  co_return run->report(measured, cpu);
}

}  // namespace boxoffice::loadgen

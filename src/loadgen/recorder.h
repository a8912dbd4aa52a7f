#pragma once
// What a load run measured: every request's latency and status, filed under a route class
// ("hold", "checkout", ...). Every sample is kept (no histogram buckets): a demo or a short load
// run makes at most a few million requests, a few bytes each, and its percentiles are then exact.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boxoffice::loadgen {

using Micros = std::chrono::microseconds;

/// The status filed for a request that got no response: timeout, refused or lost connection.
inline constexpr int kNoResponse = 0;

struct LatencySummary {
  uint64_t count = 0;
  Micros p50{0};
  Micros p90{0};
  Micros p99{0};
  Micros p999{0};
  Micros max{0};
};

/// Nearest-rank percentiles of `samples` (any order; sorted in place).
LatencySummary summarize(std::vector<Micros>& samples);

struct RouteSummary {
  std::string route;
  /// Of the requests that got a response: a timeout's "latency" is the timeout, not the server's.
  LatencySummary latency;
  std::map<int, uint64_t> statuses;  // kNoResponse counts the requests without one
  uint64_t requests = 0;
};

/// One second of a run: the requests that completed in it.
struct SecondSummary {
  uint64_t second = 0;                              // since the timeline's origin
  uint64_t requests = 0;                            // answered or not
  std::map<std::string, uint64_t, std::less<>> ok;  // 2xx answers per route class
  LatencySummary latency;                           // of the answered ones
};

/// Thread-safe: workers on any thread record into one Recorder.
class Recorder {
 public:
  void record(std::string_view route, int status, Micros latency);

  /// From now on every request is also filed under the second (since `origin`) it completed in,
  /// for a chart of throughput and latency over time. Seconds past kTimelineSecondsMax are not.
  void start_timeline(std::chrono::steady_clock::time_point origin);
  std::vector<SecondSummary> timeline() const;
  static constexpr size_t kTimelineSecondsMax = 24 * 3600;

  /// Every route class, in the order each was first recorded (the order of a buyer's journey).
  std::vector<RouteSummary> summary() const;
  std::optional<RouteSummary> route(std::string_view route) const;
  /// Requests recorded so far, over every route class; cheap enough to poll for a progress line.
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  /// Requests of `route` answered with `status`.
  uint64_t count(std::string_view route, int status) const;

 private:
  struct Route {
    std::string name;
    std::vector<Micros> samples;
    std::map<int, uint64_t> statuses;
  };
  Route& find_or_add(std::string_view route);       // needs mutex_
  const Route* find(std::string_view route) const;  // needs mutex_
  RouteSummary summarize_route(const Route& route) const;

  struct Second {
    uint64_t requests = 0;
    std::map<std::string, uint64_t, std::less<>> ok;
    std::vector<Micros> samples;
  };

  mutable std::mutex mutex_;
  std::vector<Route> routes_;
  std::optional<std::chrono::steady_clock::time_point> timeline_origin_;
  std::vector<Second> seconds_;  // a handful of classes: a linear search beats a map
  std::atomic<uint64_t> requests_{0};
};

}  // namespace boxoffice::loadgen

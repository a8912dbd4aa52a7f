#pragma once
// Prometheus counters of the HTTP API: requests by route and status class, and a latency
// histogram per route. Lock-free on the request path (one atomic add per counter).

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace boxoffice::http {

class Metrics {
 public:
  /// One slot per route name, plus one for requests that matched no route.
  explicit Metrics(std::vector<std::string> route_names);

  size_t unmatched() const { return names_.size() - 1; }
  void record(size_t route, int status, double seconds);
  void connection_opened() { ++connections_; }
  void connection_closed() { --connections_; }

  /// The Prometheus text exposition format.
  std::string render() const;

  static constexpr std::array<double, 12> buckets_seconds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1,    2.5};

 private:
  struct RouteCounters {
    std::array<std::atomic<uint64_t>, 6> by_class{};  // index = status / 100 (0 unused)
    std::array<std::atomic<uint64_t>, buckets_seconds.size() + 1> latency{};  // last: +Inf
    std::atomic<uint64_t> latency_sum_us{0};
  };
  std::vector<std::string> names_;
  std::unique_ptr<RouteCounters[]> counters_;
  std::atomic<int64_t> connections_{0};
};

}  // namespace boxoffice::http

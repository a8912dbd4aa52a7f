#include "http/metrics.h"

#include <fmt/format.h>

namespace boxoffice::http {

Metrics::Metrics(std::vector<std::string> route_names) : names_(std::move(route_names)) {
  names_.push_back("unmatched");
  counters_ = std::make_unique<RouteCounters[]>(names_.size());
}

void Metrics::record(size_t route, int status, double seconds) {
  auto& c = counters_[route];
  const int klass = status / 100;
  if (klass >= 1 && klass <= 5) c.by_class[klass].fetch_add(1, std::memory_order_relaxed);
  size_t bucket = 0;
  while (bucket < buckets_seconds.size() && seconds > buckets_seconds[bucket]) ++bucket;
  c.latency[bucket].fetch_add(1, std::memory_order_relaxed);
  c.latency_sum_us.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string Metrics::render() const {
  std::string out;
  out += "# HELP boxoffice_http_requests_total HTTP requests by route and status class.\n";
  out += "# TYPE boxoffice_http_requests_total counter\n";
  for (size_t r = 0; r < names_.size(); ++r) {
    for (int k = 1; k <= 5; ++k) {
      const auto n = counters_[r].by_class[k].load(std::memory_order_relaxed);
      if (n)
        out += fmt::format("boxoffice_http_requests_total{{route=\"{}\",status=\"{}xx\"}} {}\n",
                           names_[r], k, n);
    }
  }
  out +=
      "# HELP boxoffice_http_request_duration_seconds Time from a request's last byte to its "
      "response.\n";
  out += "# TYPE boxoffice_http_request_duration_seconds histogram\n";
  for (size_t r = 0; r < names_.size(); ++r) {
    const auto& c = counters_[r];
    uint64_t cumulative = 0;
    for (size_t b = 0; b < c.latency.size(); ++b)
      cumulative += c.latency[b].load(std::memory_order_relaxed);
    if (cumulative == 0) continue;
    cumulative = 0;
    for (size_t b = 0; b < c.latency.size(); ++b) {
      cumulative += c.latency[b].load(std::memory_order_relaxed);
      const auto le =
          b < buckets_seconds.size() ? fmt::format("{}", buckets_seconds[b]) : std::string{"+Inf"};
      out += fmt::format(
          "boxoffice_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n",
          names_[r], le, cumulative);
    }
    out += fmt::format("boxoffice_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n",
                       names_[r], static_cast<double>(c.latency_sum_us.load()) / 1e6);
    out += fmt::format("boxoffice_http_request_duration_seconds_count{{route=\"{}\"}} {}\n",
                       names_[r], cumulative);
  }
  out += "# HELP boxoffice_http_connections Open client connections.\n";
  out += "# TYPE boxoffice_http_connections gauge\n";
  out += fmt::format("boxoffice_http_connections {}\n", connections_.load());
  return out;
}

}  // namespace boxoffice::http

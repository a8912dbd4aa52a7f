#include "loadgen/recorder.h"

#include <algorithm>
#include <cmath>

namespace boxoffice::loadgen {

namespace {

/// Nearest rank: the smallest sample with at least `fraction` of all samples at or below it.
Micros rank(const std::vector<Micros>& sorted, double fraction) {
  const auto n = static_cast<double>(sorted.size());
  auto index = static_cast<size_t>(std::ceil(fraction * n));
  index = std::clamp<size_t>(index, 1, sorted.size());
  return sorted[index - 1];
}

}  // namespace

LatencySummary summarize(std::vector<Micros>& samples) {
  LatencySummary out;
  out.count = samples.size();
  if (samples.empty()) return out;
  std::sort(samples.begin(), samples.end());
  out.p50 = rank(samples, 0.50);
  out.p90 = rank(samples, 0.90);
  out.p99 = rank(samples, 0.99);
  out.p999 = rank(samples, 0.999);
  out.max = samples.back();
  return out;
}

void Recorder::record(std::string_view route, int status, Micros latency) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  auto& r = find_or_add(route);
  ++r.statuses[status];
  if (status != kNoResponse) r.samples.push_back(latency);
  if (!timeline_origin_) return;
  const auto second = static_cast<size_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::steady_clock::now() - *timeline_origin_)
                                              .count());
  if (second >= kTimelineSecondsMax) return;
  if (seconds_.size() <= second) seconds_.resize(second + 1);
  auto& s = seconds_[second];
  ++s.requests;
  if (status == kNoResponse) return;
  s.samples.push_back(latency);
  if (status >= 200 && status < 300) {
    auto it = s.ok.find(route);
    if (it == s.ok.end()) it = s.ok.emplace(std::string{route}, 0).first;
    ++it->second;
  }
}

void Recorder::start_timeline(std::chrono::steady_clock::time_point origin) {
  std::lock_guard lock(mutex_);
  timeline_origin_ = origin;
  seconds_.clear();
}

std::vector<SecondSummary> Recorder::timeline() const {
  std::lock_guard lock(mutex_);
  std::vector<SecondSummary> out;
  out.reserve(seconds_.size());
  for (size_t i = 0; i < seconds_.size(); ++i) {
    auto samples = seconds_[i].samples;
    out.push_back({i, seconds_[i].requests, seconds_[i].ok, summarize(samples)});
  }
  return out;
}

Recorder::Route& Recorder::find_or_add(std::string_view route) {
  for (auto& r : routes_) {
    if (r.name == route) return r;
  }
  routes_.push_back({std::string{route}, {}, {}});
  return routes_.back();
}

const Recorder::Route* Recorder::find(std::string_view route) const {
  for (const auto& r : routes_) {
    if (r.name == route) return &r;
  }
  return nullptr;
}

RouteSummary Recorder::summarize_route(const Route& route) const {
  RouteSummary out;
  out.route = route.name;
  auto samples = route.samples;  // summarize sorts: keep the recorder's copy in arrival order
  out.latency = summarize(samples);
  out.statuses = route.statuses;
  for (const auto& [status, n] : route.statuses) out.requests += n;
  return out;
}

std::vector<RouteSummary> Recorder::summary() const {
  std::lock_guard lock(mutex_);
  std::vector<RouteSummary> out;
  out.reserve(routes_.size());
  for (const auto& r : routes_) out.push_back(summarize_route(r));
  return out;
}

std::optional<RouteSummary> Recorder::route(std::string_view route) const {
  std::lock_guard lock(mutex_);
  const auto* r = find(route);
  if (!r) return std::nullopt;
  return summarize_route(*r);
}

uint64_t Recorder::count(std::string_view route, int status) const {
  std::lock_guard lock(mutex_);
  const auto* r = find(route);
  if (!r) return 0;
  const auto it = r->statuses.find(status);
  return it == r->statuses.end() ? 0 : it->second;
}

}  // namespace boxoffice::loadgen

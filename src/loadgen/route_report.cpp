#include "loadgen/route_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace boxoffice::loadgen {

namespace json = boost::json;

namespace {

std::string count_text(uint64_t n) {
  auto digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

double millis(Micros us) { return static_cast<double>(us.count()) / 1000.0; }

std::string ms_text(Micros us) { return fmt::format("{:.1f}", millis(us)); }

}  // namespace

std::string statuses_text(const std::map<int, uint64_t>& statuses) {
  std::vector<std::string> parts;
  for (const auto& [status, n] : statuses) {
    parts.push_back(
        fmt::format("{} ×{}", status == kNoResponse ? std::string{"none"} : std::to_string(status),
                    count_text(n)));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string status_key(int status) {
  return status == kNoResponse ? std::string{"none"} : std::to_string(status);
}

json::object latency_json(const LatencySummary& l) {
  return {{"count", l.count},        {"p50_ms", millis(l.p50)},   {"p90_ms", millis(l.p90)},
          {"p99_ms", millis(l.p99)}, {"p999_ms", millis(l.p999)}, {"max_ms", millis(l.max)}};
}

std::map<int, uint64_t> all_statuses(const std::vector<RouteSummary>& routes) {
  std::map<int, uint64_t> all;
  for (const auto& r : routes) {
    for (const auto& [status, n] : r.statuses) all[status] += n;
  }
  return all;
}

std::string routes_markdown(const std::vector<RouteSummary>& routes) {
  std::string out =
      "| route | requests | p50 | p90 | p99 | p99.9 | max | statuses "
      "|\n|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : routes) {
    out +=
        fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", r.route, count_text(r.requests),
                    ms_text(r.latency.p50), ms_text(r.latency.p90), ms_text(r.latency.p99),
                    ms_text(r.latency.p999), ms_text(r.latency.max), statuses_text(r.statuses));
  }
  out += fmt::format("\nStatus codes over every route: {}.", statuses_text(all_statuses(routes)));
  return out;
}

json::array routes_json(const std::vector<RouteSummary>& routes) {
  json::array list;
  for (const auto& r : routes) {
    json::object statuses;
    for (const auto& [status, n] : r.statuses) statuses[status_key(status)] = n;
    auto entry = latency_json(r.latency);
    entry["route"] = r.route;
    entry["requests"] = r.requests;
    entry["statuses"] = std::move(statuses);
    list.push_back(std::move(entry));
  }
  return list;
}

json::array timeline_json(const std::vector<SecondSummary>& timeline) {
  json::array list;
  for (const auto& s : timeline) {
    json::object ok;
    for (const auto& [route, n] : s.ok) ok[route] = n;
    auto entry = latency_json(s.latency);
    entry["second"] = s.second;
    entry["requests"] = s.requests;
    entry["ok"] = std::move(ok);
    list.push_back(std::move(entry));
  }
  return list;
}

std::string timeline_data(const std::vector<SecondSummary>& timeline, const std::string& route) {
  std::string out = fmt::format("# second requests {}_2xx p50_ms p99_ms\n", route);
  for (const auto& s : timeline) {
    const auto it = s.ok.find(route);
    out += fmt::format("{} {} {} {:.3f} {:.3f}\n", s.second, s.requests,
                       it == s.ok.end() ? 0 : it->second, millis(s.latency.p50),
                       millis(s.latency.p99));
  }
  return out;
}

}  // namespace boxoffice::loadgen

#include "http/router.h"

#include <cassert>

namespace boxoffice::http {

namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    const auto end = path.find('/', start);
    const auto stop = end == std::string_view::npos ? path.size() : end;
    parts.push_back(path.substr(start, stop - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

}  // namespace

const std::string& RouteContext::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  assert(false && "a handler asked for a parameter its pattern does not have");
  static const std::string empty;
  return empty;
}

size_t Router::add(Route route) {
  std::vector<std::string> segments;
  for (auto part : split(route.pattern)) segments.emplace_back(part);
  segments_.push_back(std::move(segments));
  routes_.push_back(std::move(route));
  return routes_.size() - 1;
}

std::variant<Router::Match, Router::NoRoute, Router::WrongMethod> Router::match(
    std::string_view method, std::string_view path) const {
  if (path.empty() || path.front() != '/') return NoRoute{};
  const auto parts = split(path);
  std::string allow;
  for (size_t i = 0; i < routes_.size(); ++i) {
    const auto& pattern = segments_[i];
    if (pattern.size() != parts.size()) continue;
    std::vector<std::pair<std::string, std::string>> params;
    bool ok = true;
    for (size_t s = 0; s < pattern.size() && ok; ++s) {
      const auto& seg = pattern[s];
      if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
        ok = !parts[s].empty();
        params.emplace_back(seg.substr(1, seg.size() - 2), std::string{parts[s]});
      } else {
        ok = seg == parts[s];
      }
    }
    if (!ok) continue;
    if (routes_[i].method == method) return Match{&routes_[i], i, std::move(params)};
    if (!allow.empty()) allow += ", ";
    allow += routes_[i].method;
  }
  if (!allow.empty()) return WrongMethod{std::move(allow)};
  return NoRoute{};
}

}  // namespace boxoffice::http

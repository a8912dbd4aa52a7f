#include "http/rate_limit.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <stdexcept>

#include "http/problem.h"
#include "http/router.h"

namespace boxoffice::http {

// --- GCRA -----------------------------------------------------------------------------------

RateDecision gcra_step(int64_t& tat_us, const RateLimit& limit, int64_t now_us) {
  const int64_t interval = limit.emission_interval.count();
  const int64_t tolerance = limit.tolerance().count();
  const int64_t tat = std::max(tat_us, now_us);
  if (tat - now_us > tolerance) return {false, Micros{tat - tolerance - now_us}, 0};
  tat_us = tat + interval;
  return {true, Micros{0}, (now_us + tolerance - tat) / interval};
}

MemoryRateLimiter::MemoryRateLimiter(MemoryRateLimiterOptions options)
    : keys_per_shard_max_(
          std::max<size_t>(1, options.keys_max / std::max<size_t>(1, options.shards))),
      shards_(std::max<size_t>(1, options.shards)) {}

RateDecision MemoryRateLimiter::check(const std::string& key, const RateLimit& limit,
                                      Timestamp now) {
  const int64_t now_us = to_unix_ms(now) * 1000;
  auto& shard = shards_[std::hash<std::string>{}(key) % shards_.size()];
  std::lock_guard lock(shard.mutex);
  if (auto it = shard.tat_us.find(key); it != shard.tat_us.end()) {
    return gcra_step(it->second, limit, now_us);
  }
  int64_t tat_us = 0;
  const auto decision = gcra_step(tat_us, limit, now_us);
  if (shard.tat_us.size() >= keys_per_shard_max_) make_room(shard, now_us);
  shard.tat_us.emplace(key, tat_us);
  return decision;
}

void MemoryRateLimiter::make_room(Shard& shard, int64_t now_us) {
  // An idle key (TAT not after now) is the same as a key never seen: forgetting it is exact.
  const auto erased =
      std::erase_if(shard.tat_us, [now_us](const auto& entry) { return entry.second <= now_us; });
  if (erased > 0) return;
  // Every key is busy (a flood of distinct keys): forget the one that would be idle soonest,
  // which gives back the least.
  const auto soonest =
      std::min_element(shard.tat_us.begin(), shard.tat_us.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  if (soonest != shard.tat_us.end()) shard.tat_us.erase(soonest);
}

size_t MemoryRateLimiter::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    n += shard.tat_us.size();
  }
  return n;
}

// --- Classes and settings -------------------------------------------------------------------

namespace {

constexpr RateClass kAllClasses[] = {RateClass::reads, RateClass::holds, RateClass::checkouts,
                                     RateClass::waitlist};
constexpr RateScope kAllScopes[] = {RateScope::buyer, RateScope::address};
/// Bounds of the syntax: beyond them a limit means nothing (or overflows the arithmetic).
constexpr int64_t kCountMax = 1'000'000;
constexpr int64_t kBurstMax = 1'000'000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

[[noreturn]] void fail(std::string_view item, std::string_view why) {
  throw std::invalid_argument(fmt::format("\"{}\": {}", item, why));
}

int64_t parse_count(std::string_view item, std::string_view text, std::string_view what,
                    int64_t max) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < 1 ||
      value > max) {
    fail(item, fmt::format("{} must be a whole number from 1 to {}, not \"{}\"", what, max, text));
  }
  return value;
}

/// "<count>/<s|m|h>[:burst=<n>]"
RateLimit parse_limit(std::string_view item, std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    fail(item, "expected <count>/<s|m|h>[:burst=<n>] or off");
  }
  const auto count = parse_count(item, text.substr(0, slash), "the count", kCountMax);
  auto rest = text.substr(slash + 1);
  const auto colon = rest.find(':');
  const auto unit = rest.substr(0, colon);
  std::chrono::seconds period{1};
  if (unit == "s") {
    period = std::chrono::seconds{1};
  } else if (unit == "m") {
    period = std::chrono::minutes{1};
  } else if (unit == "h") {
    period = std::chrono::hours{1};
  } else {
    fail(item, fmt::format("unknown unit \"{}\" (s, m or h)", unit));
  }
  int64_t burst = count;
  if (colon != std::string_view::npos) {
    constexpr std::string_view kBurst = "burst=";
    const auto option = rest.substr(colon + 1);
    if (option.substr(0, kBurst.size()) != kBurst) {
      fail(item, fmt::format("unknown option \"{}\" (burst=<n>)", option));
    }
    burst = parse_count(item, option.substr(kBurst.size()), "the burst", kBurstMax);
  }
  return RateLimit::per(count, period, burst);
}

std::optional<RateClass> class_named(std::string_view name) {
  for (auto c : kAllClasses) {
    if (to_string(c) == name) return c;
  }
  return std::nullopt;
}

std::string rate_text(const RateLimit& limit) {
  const double per_second = 1e6 / static_cast<double>(limit.emission_interval.count());
  if (per_second >= 1) return fmt::format("{:.4g}/s burst {}", per_second, limit.burst);
  return fmt::format("{:.4g}/m burst {}", per_second * 60, limit.burst);
}

}  // namespace

std::string_view to_string(RateClass c) {
  switch (c) {
    case RateClass::reads:
      return "reads";
    case RateClass::holds:
      return "holds";
    case RateClass::checkouts:
      return "checkouts";
    case RateClass::waitlist:
      return "waitlist";
  }
  return "?";
}

std::string_view to_string(RateScope s) { return s == RateScope::buyer ? "buyer" : "address"; }

std::optional<RateClass> rate_class_of(std::string_view method, std::string_view pattern) {
  if (pattern.substr(0, 4) != "/v1/") return std::nullopt;  // /healthz, /readyz, /metrics
  if (method == "GET" || method == "DELETE") return RateClass::reads;
  if (method != "POST") return std::nullopt;
  if (pattern == "/v1/events/{event_id}/holds") return RateClass::holds;
  if (pattern == "/v1/holds/{hold_id}/checkout" || pattern == "/v1/bookings/{booking_id}/cancel")
    return RateClass::checkouts;
  if (pattern == "/v1/events/{event_id}/waitlist") return RateClass::waitlist;
  return std::nullopt;  // admin writes (POST /v1/events)
}

RateLimitSettings RateLimitSettings::defaults() {
  using std::chrono::seconds;
  RateLimitSettings s;
  // Per buyer: the rates are well above what a person clicks and far below a script in a loop;
  // the bursts absorb a client's quick retries after refusals (409, 422) without a 429. Per
  // address: a carrier NAT or an office puts
  // many buyers behind one address, so these only stop one machine flooding with many accounts.
  s.limit(RateClass::reads, RateScope::buyer) = RateLimit::per(50, seconds{1}, 200);
  s.limit(RateClass::reads, RateScope::address) = RateLimit::per(1000, seconds{1}, 2000);
  s.limit(RateClass::holds, RateScope::buyer) = RateLimit::per(10, seconds{1}, 100);
  s.limit(RateClass::holds, RateScope::address) = RateLimit::per(200, seconds{1}, 400);
  s.limit(RateClass::checkouts, RateScope::buyer) = RateLimit::per(5, seconds{1}, 50);
  s.limit(RateClass::checkouts, RateScope::address) = RateLimit::per(100, seconds{1}, 200);
  s.limit(RateClass::waitlist, RateScope::buyer) = RateLimit::per(5, seconds{1}, 50);
  s.limit(RateClass::waitlist, RateScope::address) = RateLimit::per(50, seconds{1}, 100);
  return s;
}

RateLimitSettings RateLimitSettings::off() {
  RateLimitSettings s;
  s.enabled = false;
  return s;
}

RateLimitSettings parse_rate_limits(std::string_view text) {
  text = trim(text);
  if (text == "off") return RateLimitSettings::off();
  auto settings = RateLimitSettings::defaults();
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) throw std::invalid_argument("an empty item (two commas in a row?)");
    const auto equals = item.find('=');
    if (equals == std::string_view::npos) fail(item, "expected <name>=<value>");
    const auto name = trim(item.substr(0, equals));
    const auto value = trim(item.substr(equals + 1));
    if (name == "loopback") {
      if (value != "limited" && value != "exempt") {
        fail(item, "loopback is \"limited\" or \"exempt\"");
      }
      settings.limit_loopback = value == "limited";
      continue;
    }
    const auto dot = name.find('.');
    const auto rate_class = class_named(name.substr(0, dot));
    if (!rate_class) {
      fail(item, fmt::format("unknown class \"{}\" (reads, holds, checkouts, waitlist, loopback)",
                             name.substr(0, dot)));
    }
    std::vector<RateScope> scopes{kAllScopes, kAllScopes + kRateScopes};
    if (dot != std::string_view::npos) {
      const auto scope_name = name.substr(dot + 1);
      if (scope_name == "buyer") {
        scopes = {RateScope::buyer};
      } else if (scope_name == "address") {
        scopes = {RateScope::address};
      } else {
        fail(item, fmt::format("unknown scope \"{}\" (buyer or address)", scope_name));
      }
    }
    std::optional<RateLimit> limit;
    if (value != "off") limit = parse_limit(item, value);
    for (auto scope : scopes) settings.limit(*rate_class, scope) = limit;
  }
  return settings;
}

std::string describe(const RateLimitSettings& settings) {
  if (!settings.enabled) return "off";
  std::string out;
  for (auto c : kAllClasses) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{}:", to_string(c));
    for (auto s : kAllScopes) {
      const auto& limit = settings.limit(c, s);
      out += fmt::format(" {} {}", to_string(s), limit ? rate_text(*limit) : "off");
      if (s == RateScope::buyer) out += ",";
    }
  }
  out += settings.limit_loopback ? "; loopback limited" : "; loopback exempt";
  return out;
}

bool is_loopback_address(std::string_view address) {
  return address.substr(0, 4) == "127." || address == "::1" ||
         address.substr(0, 11) == "::ffff:127.";
}

// --- The gate -------------------------------------------------------------------------------

RateLimitGate::RateLimitGate(RateLimitSettings settings, std::shared_ptr<RateLimiter> limiter,
                             const Clock& clock, const std::vector<Route>& routes)
    : settings_(std::move(settings)), limiter_(std::move(limiter)), clock_(clock) {
  classes_.reserve(routes.size());
  for (const auto& route : routes) classes_.push_back(rate_class_of(route.method, route.pattern));
}

void RateLimiter::async_check(const std::string& key, const RateLimit& limit, Timestamp now,
                              CheckDone done) {
  std::exception_ptr error;
  RateDecision decision;
  try {
    decision = check(key, limit, now);
  } catch (...) {
    error = std::current_exception();
  }
  done(error, decision);
}

std::optional<RateLimitGate::Check> RateLimitGate::check_for(size_t route_index, RateScope scope,
                                                             std::string_view who) const {
  if (!limiter_ || !settings_.enabled || who.empty() || route_index >= classes_.size()) {
    return std::nullopt;
  }
  const auto rate_class = classes_[route_index];
  if (!rate_class) return std::nullopt;
  const auto& limit = settings_.limit(*rate_class, scope);
  if (!limit) return std::nullopt;
  if (scope == RateScope::address && !settings_.limit_loopback && is_loopback_address(who)) {
    return std::nullopt;
  }
  const auto now = clock_.now();
  if (!fails_closed(*rate_class) &&
      to_unix_ms(now) - store_failed_at_ms_.load() < kReadsBypassAfterFailure.count()) {
    return std::nullopt;
  }
  Check check;
  check.key.reserve(16 + who.size());
  check.key.append(to_string(*rate_class))
      .append(scope == RateScope::buyer ? ":b:" : ":a:")
      .append(who);
  check.limit = &*limit;
  check.now = now;
  check.rate_class = *rate_class;
  check.scope = scope;
  return check;
}

std::optional<HttpResponse> RateLimitGate::judge(const Check& check, std::exception_ptr error,
                                                 const RateDecision& decision) {
  if (error) {
    const int64_t now_ms = to_unix_ms(check.now);
    store_failed_at_ms_ = now_ms;
    auto logged = failure_logged_at_ms_.load();
    if (now_ms - logged >= kFailureLogInterval.count() &&
        failure_logged_at_ms_.compare_exchange_strong(logged, now_ms)) {
      std::string what = "unknown failure";
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      spdlog::warn(
          "the rate limiter's store does not answer ({}): purchase routes answer 503, reads go on "
          "unlimited",
          what);
    }
    if (!fails_closed(check.rate_class)) return std::nullopt;
    return problem(make_error(Errc::unavailable, "the rate limiter did not answer; retry later"));
  }
  if (decision.allowed) return std::nullopt;
  // Whole seconds, rounded up: a client that waits exactly this long is allowed.
  const int64_t retry_after_s =
      std::max<int64_t>(1, (decision.retry_after.count() + 999'999) / 1'000'000);
  auto response = problem(
      make_error(Errc::rate_limited,
                 fmt::format("too many {} requests from this {}; retry in {} s",
                             to_string(check.rate_class), to_string(check.scope), retry_after_s)));
  response.set_header("Retry-After", std::to_string(retry_after_s));
  return response;
}

std::optional<HttpResponse> RateLimitGate::admit(size_t route_index, RateScope scope,
                                                 std::string_view who) {
  const auto check = check_for(route_index, scope, who);
  if (!check) return std::nullopt;
  try {
    return judge(*check, nullptr, limiter_->check(check->key, *check->limit, check->now));
  } catch (const StorageError&) {
    return judge(*check, std::current_exception(), {});
  }
}

void RateLimitGate::async_admit(size_t route_index, RateScope scope, std::string_view who,
                                Admitted next) {
  auto check = check_for(route_index, scope, who);
  if (!check) return next(std::nullopt);
  const std::string key = check->key;
  const RateLimit& limit = *check->limit;
  const auto now = check->now;
  limiter_->async_check(key, limit, now,
                        [this, check = std::move(*check), next = std::move(next)](
                            std::exception_ptr error, RateDecision decision) {
                          next(judge(check, error, decision));
                        });
}

}  // namespace boxoffice::http

// GCRA on the memory limiter with a manual clock, the configuration syntax, the route classes and
// the gate's answers (429 with Retry-After, 503 or a pass when the store fails).

#include "http/rate_limit.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <stdexcept>

#include "http/router.h"

namespace boxoffice::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Timestamp kStart = from_unix_ms(1'800'000'000'000);

TEST(Gcra, AllowsTheBurstAtOnceThenRefusesWithTheExactWait) {
  MemoryRateLimiter limiter;
  const auto limit = RateLimit::per(5, seconds{1}, 3);  // T = 200 ms, 3 at once
  for (int64_t i = 0; i < 3; ++i) {
    const auto d = limiter.check("k", limit, kStart);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 2 - i);
  }
  const auto refused = limiter.check("k", limit, kStart);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, milliseconds{200});
  EXPECT_EQ(refused.remaining, 0);
  // A refused request is not counted: 150 ms later the wait is 50 ms.
  EXPECT_EQ(limiter.check("k", limit, kStart + milliseconds{150}).retry_after, milliseconds{50});
}

TEST(Gcra, RecoversOneRequestPerEmissionInterval) {
  MemoryRateLimiter limiter;
  const auto limit = RateLimit::per(10, seconds{1}, 2);  // T = 100 ms
  ASSERT_TRUE(limiter.check("k", limit, kStart).allowed);
  ASSERT_TRUE(limiter.check("k", limit, kStart).allowed);
  ASSERT_FALSE(limiter.check("k", limit, kStart + milliseconds{99}).allowed);
  const auto after_t = limiter.check("k", limit, kStart + milliseconds{100});
  EXPECT_TRUE(after_t.allowed);
  EXPECT_EQ(after_t.remaining, 0);
  EXPECT_FALSE(limiter.check("k", limit, kStart + milliseconds{100}).allowed);
  // A steady client at exactly the rate is never refused.
  for (int i = 2; i < 50; ++i) {
    EXPECT_TRUE(limiter.check("k", limit, kStart + milliseconds{100 * i}).allowed) << i;
  }
  // After a long pause the whole burst is back, and no more.
  const auto later = kStart + seconds{60};
  EXPECT_EQ(limiter.check("k", limit, later).remaining, 1);
  EXPECT_TRUE(limiter.check("k", limit, later).allowed);
  EXPECT_FALSE(limiter.check("k", limit, later).allowed);
}

TEST(Gcra, KeysAreIndependent) {
  MemoryRateLimiter limiter;
  const auto limit = RateLimit::per(1, seconds{1}, 1);
  ASSERT_TRUE(limiter.check("alice", limit, kStart).allowed);
  EXPECT_FALSE(limiter.check("alice", limit, kStart).allowed);
  EXPECT_TRUE(limiter.check("bob", limit, kStart).allowed);
  EXPECT_FALSE(limiter.check("bob", limit, kStart).allowed);
}

TEST(Gcra, PerMinuteLimitsWaitWholeIntervals) {
  MemoryRateLimiter limiter;
  const auto limit = RateLimit::per(2, seconds{60}, 1);  // one per 30 s
  ASSERT_TRUE(limiter.check("k", limit, kStart).allowed);
  EXPECT_EQ(limiter.check("k", limit, kStart + seconds{10}).retry_after, seconds{20});
}

TEST(MemoryRateLimiter, KeepsAtMostKeysMaxForgettingIdleKeysFirst) {
  MemoryRateLimiter limiter({/*keys_max=*/4, /*shards=*/1});
  const auto limit = RateLimit::per(1, seconds{1}, 1);
  for (int i = 0; i < 4; ++i) limiter.check("old" + std::to_string(i), limit, kStart);
  EXPECT_EQ(limiter.size(), 4u);
  // Two seconds on, those keys are idle: a new key forgets all of them.
  limiter.check("new", limit, kStart + seconds{2});
  EXPECT_EQ(limiter.size(), 1u);
  // All busy: the one closest to idle goes, and the bound holds.
  for (int i = 0; i < 10; ++i) {
    limiter.check("busy" + std::to_string(i), limit, kStart + seconds{2} + milliseconds{i});
  }
  EXPECT_LE(limiter.size(), 4u);
  // The newest key is still remembered (refused), so a flood cannot reset the latest clients.
  EXPECT_FALSE(limiter.check("busy9", limit, kStart + seconds{2} + milliseconds{9}).allowed);
}

TEST(RateClasses, EveryPublicRouteHasItsClass) {
  EXPECT_EQ(rate_class_of("GET", "/v1/events/{event_id}/availability"), RateClass::reads);
  EXPECT_EQ(rate_class_of("GET", "/v1/bookings"), RateClass::reads);
  EXPECT_EQ(rate_class_of("DELETE", "/v1/holds/{hold_id}"), RateClass::reads);
  EXPECT_EQ(rate_class_of("POST", "/v1/events/{event_id}/holds"), RateClass::holds);
  EXPECT_EQ(rate_class_of("POST", "/v1/holds/{hold_id}/checkout"), RateClass::checkouts);
  EXPECT_EQ(rate_class_of("POST", "/v1/bookings/{booking_id}/cancel"), RateClass::checkouts);
  EXPECT_EQ(rate_class_of("POST", "/v1/events/{event_id}/waitlist"), RateClass::waitlist);
  EXPECT_EQ(rate_class_of("POST", "/v1/events"), std::nullopt);
  EXPECT_EQ(rate_class_of("GET", "/healthz"), std::nullopt);
  EXPECT_EQ(rate_class_of("GET", "/metrics"), std::nullopt);
}

TEST(RateLimitSyntax, EmptyIsTheDefaultsAndOffIsOff) {
  EXPECT_EQ(parse_rate_limits("").limits, RateLimitSettings::defaults().limits);
  EXPECT_TRUE(parse_rate_limits("").enabled);
  EXPECT_FALSE(parse_rate_limits("off").enabled);
  EXPECT_FALSE(parse_rate_limits(" off ").enabled);
  EXPECT_EQ(describe(RateLimitSettings::off()), "off");
}

TEST(RateLimitSyntax, ItemsOverrideTheirLimitsOnly) {
  const auto s = parse_rate_limits(
      "holds.buyer=5/s:burst=10, checkouts=30/m, reads.address=off, "
      "waitlist.address=7/h,loopback=limited");
  EXPECT_EQ(s.limit(RateClass::holds, RateScope::buyer), RateLimit::per(5, seconds{1}, 10));
  EXPECT_EQ(s.limit(RateClass::holds, RateScope::address),
            RateLimitSettings::defaults().limit(RateClass::holds, RateScope::address));
  EXPECT_EQ(s.limit(RateClass::checkouts, RateScope::buyer), RateLimit::per(30, seconds{60}, 30));
  EXPECT_EQ(s.limit(RateClass::checkouts, RateScope::address), RateLimit::per(30, seconds{60}, 30));
  EXPECT_EQ(s.limit(RateClass::checkouts, RateScope::buyer)->emission_interval, seconds{2});
  EXPECT_EQ(s.limit(RateClass::reads, RateScope::address), std::nullopt);
  EXPECT_EQ(s.limit(RateClass::waitlist, RateScope::address), RateLimit::per(7, seconds{3600}, 7));
  EXPECT_TRUE(s.limit_loopback);
  EXPECT_FALSE(parse_rate_limits("").limit_loopback);
  EXPECT_NE(describe(s).find("holds: buyer 5/s burst 10,"), std::string::npos) << describe(s);
}

TEST(RateLimitSyntax, BadItemsGetOneLineNamingThem) {
  const std::pair<const char*, const char*> cases[] = {
      {"holds", "\"holds\": expected <name>=<value>"},
      {"holdz=5/s", "unknown class \"holdz\""},
      {"holds.buyr=5/s", "unknown scope \"buyr\""},
      {"holds=5", "\"holds=5\": expected <count>/<s|m|h>"},
      {"holds=5/d", "unknown unit \"d\""},
      {"holds=0/s", "the count must be a whole number from 1 to 1000000, not \"0\""},
      {"holds=x/s", "not \"x\""},
      {"holds=5/s:burst=0", "the burst must be"},
      {"holds=5/s:brust=3", "unknown option \"brust=3\""},
      {"loopback=maybe", "\"limited\" or \"exempt\""},
      {"reads=1/s,,holds=1/s", "empty item"},
      {"reads=2000000/s", "from 1 to 1000000"},
  };
  for (const auto& [text, expected] : cases) {
    try {
      parse_rate_limits(text);
      ADD_FAILURE() << text << " was accepted";
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(expected), std::string::npos) << text << " -> " << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

TEST(RateLimitGate, LoopbackAddressesAreRecognised) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.1.2.3"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_TRUE(is_loopback_address("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback_address("10.0.0.1"));
  EXPECT_FALSE(is_loopback_address("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback_address("1270::1"));
}

/// 0 when the gate lets the request through.
int answer_status(const std::optional<HttpResponse>& refusal) {
  return refusal ? refusal->status : 0;
}

/// A store that does not answer.
class FailingLimiter final : public RateLimiter {
 public:
  RateDecision check(const std::string&, const RateLimit&, Timestamp) override {
    ++calls;
    throw StorageError("connection refused");
  }
  int calls = 0;
};

std::vector<Route> some_routes() {
  std::vector<Route> routes(3);
  routes[0].method = "GET";
  routes[0].pattern = "/v1/events/{event_id}";
  routes[1].method = "POST";
  routes[1].pattern = "/v1/events/{event_id}/holds";
  routes[2].method = "GET";
  routes[2].pattern = "/healthz";
  return routes;
}

TEST(RateLimitGate, RefusesWith429AndRetryAfterInWholeSecondsRoundedUp) {
  ManualClock clock(kStart);
  auto settings = parse_rate_limits("holds.buyer=1/m:burst=2");
  RateLimitGate gate(settings, std::make_shared<MemoryRateLimiter>(), clock, some_routes());
  EXPECT_EQ(gate.admit(1, RateScope::buyer, "alice"), std::nullopt);
  EXPECT_EQ(gate.admit(1, RateScope::buyer, "alice"), std::nullopt);
  clock.advance(milliseconds{500});
  const auto refused = gate.admit(1, RateScope::buyer, "alice");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->content_type, "application/problem+json");
  const auto body = boost::json::parse(refused->body).as_object();
  EXPECT_EQ(body.at("code"), "rate_limited");
  std::string retry_after;
  for (const auto& [name, value] : refused->headers) {
    if (name == "Retry-After") retry_after = value;
  }
  EXPECT_EQ(retry_after, "60");  // 59.5 s, rounded up
  // Another buyer, the operations route and anonymous callers are not affected.
  EXPECT_EQ(gate.admit(1, RateScope::buyer, "bob"), std::nullopt);
  EXPECT_EQ(gate.admit(1, RateScope::buyer, ""), std::nullopt);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(gate.admit(2, RateScope::buyer, "alice"), std::nullopt);
}

TEST(RateLimitGate, PerAddressLimitsSkipLoopbackUnlessAsked) {
  ManualClock clock(kStart);
  auto limiter = std::make_shared<MemoryRateLimiter>();
  RateLimitGate exempt(parse_rate_limits("reads.address=1/s"), limiter, clock, some_routes());
  RateLimitGate limited(parse_rate_limits("reads.address=1/s,loopback=limited"), limiter, clock,
                        some_routes());
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(exempt.admit(0, RateScope::address, "127.0.0.1"), std::nullopt);
  EXPECT_EQ(exempt.admit(0, RateScope::address, "192.0.2.7"), std::nullopt);
  EXPECT_EQ(answer_status(exempt.admit(0, RateScope::address, "192.0.2.7")), 429);
  EXPECT_EQ(limited.admit(0, RateScope::address, "127.0.0.1"), std::nullopt);
  EXPECT_EQ(answer_status(limited.admit(0, RateScope::address, "127.0.0.1")), 429);
}

TEST(RateLimitGate, OffLetsEverythingThrough) {
  ManualClock clock(kStart);
  RateLimitGate gate(parse_rate_limits("off"), std::make_shared<MemoryRateLimiter>(), clock,
                     some_routes());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(gate.admit(1, RateScope::buyer, "alice"), std::nullopt);
}

TEST(RateLimitGate, AStoreThatFailsClosesPurchasesAndLetsReadsThrough) {
  ManualClock clock(kStart);
  auto store = std::make_shared<FailingLimiter>();
  RateLimitGate gate(RateLimitSettings::defaults(), store, clock, some_routes());
  const auto hold = gate.admit(1, RateScope::buyer, "alice");
  ASSERT_TRUE(hold);
  EXPECT_EQ(hold->status, 503);
  EXPECT_EQ(boost::json::parse(hold->body).at("code"), "unavailable");
  EXPECT_EQ(gate.admit(0, RateScope::buyer, "alice"), std::nullopt);
  // Reads do not ask a store that just failed (each would wait for its error)...
  const int calls = store->calls;
  EXPECT_EQ(gate.admit(0, RateScope::buyer, "alice"), std::nullopt);
  EXPECT_EQ(store->calls, calls);
  // ...until a while has passed; purchases always ask (they notice the store is back at once).
  EXPECT_EQ(answer_status(gate.admit(1, RateScope::buyer, "alice")), 503);
  EXPECT_EQ(store->calls, calls + 1);
  clock.advance(seconds{2});
  EXPECT_EQ(gate.admit(0, RateScope::buyer, "alice"), std::nullopt);
  EXPECT_EQ(store->calls, calls + 2);
}

}  // namespace
}  // namespace boxoffice::http

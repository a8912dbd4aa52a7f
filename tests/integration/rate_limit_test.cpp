// Rate limits in the real binary: a client far over its limit gets 429 rate_limited with
// Retry-After while a client under it gets none; per-address limits; two servers sharing one
// Redis share one limit; a Redis that stops closes purchases (503) while reads go on.
//
// The figures measured (requests allowed and refused, elapsed time) are printed and recorded as
// test properties; the assertions are only what GCRA guarantees whatever the timing: at least the
// burst is allowed, and never more than burst + rate * elapsed (plus one for rounding).

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "integration/api_fixture.h"
#include "support/redis_server.h"
#include "support/server_process.h"

namespace boxoffice::testing {
namespace {

using namespace api;

struct Tally {
  int allowed = 0;  // any answer but 429
  int refused = 0;  // 429
  double elapsed_s = 0;
  std::vector<std::string> bad_refusals;  // 429s without a proper problem or Retry-After

  void count(const Response& r) {
    if (r.status != 429) {
      ++allowed;
      return;
    }
    ++refused;
    const auto retry_after = r.header("Retry-After");
    int seconds = 0;
    try {
      seconds = std::stoi(retry_after);
    } catch (const std::exception&) {
    }
    if (seconds < 1 || r.header("Content-Type").rfind("application/problem+json", 0) != 0 ||
        r.body.find("\"code\":\"rate_limited\"") == std::string::npos) {
      bad_refusals.push_back("Retry-After \"" + retry_after + "\" " + describe(r));
    }
  }
  std::string text() const {
    return std::to_string(allowed) + " allowed, " + std::to_string(refused) + " refused in " +
           std::to_string(elapsed_s) + " s";
  }
};

/// The most GCRA may allow in `elapsed_s` from a fresh key: the burst, one per interval, and one
/// for the rounding of the interval's edges.
double allowed_max(double burst, double per_second, double elapsed_s) {
  return burst + per_second * elapsed_s + 1;
}

/// Sends `send()` as fast as one connection goes for `duration`, counting the answers.
template <class Send>
Tally hammer(std::chrono::milliseconds duration, Send send) {
  Tally tally;
  const auto started = std::chrono::steady_clock::now();
  const auto seconds_since = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  while (seconds_since() < std::chrono::duration<double>(duration).count()) send(tally);
  tally.elapsed_s = seconds_since();
  return tally;
}

std::string create_event(const ServerProcess& server) {
  auto admin = server.client();
  admin.bearer = server.token("ops", {"admin"});
  auto event = expect_status(admin.post("/v1/events", text(event_body())), 201, "create event");
  return str(event.at("id"));
}

ServerOptions embedded_with(std::vector<std::string> args) {
  ServerOptions options;
  options.engines = ServerOptions::Engines::embedded;
  options.args = std::move(args);
  return options;
}

TEST(RateLimit, AClientFarOverTheLimitGets429sWhileOneUnderItGetsNone) {
  ServerProcess server(embedded_with({"--rate-limits=holds.buyer=5/s:burst=5"}));
  const auto event_id = create_event(server);
  const auto holds = "/v1/events/" + event_id + "/holds";
  const auto body = text(quantity_body("floor", 1));

  // Alice holds (and releases) a seat every 400 ms: 2.5/s, under the 5/s.
  Tally polite;
  std::thread alice([&] {
    auto client = server.client();
    client.bearer = server.token("alice");
    for (int i = 0; i < 8; ++i) {
      const auto r = client.post(holds, body);
      polite.count(r);
      if (r.status == 201) client.del("/v1/holds/" + str(body_of(r).at("id")));
      std::this_thread::sleep_for(400ms);
    }
  });
  // Mallory sends holds as fast as one connection goes for 2 s.
  auto mallory = server.client();
  mallory.bearer = server.token("mallory");
  const auto greedy = hammer(2s, [&](Tally& t) { t.count(mallory.post(holds, body)); });
  alice.join();

  std::cout << "[ figures ] holds.buyer=5/s:burst=5: greedy " << greedy.text() << "; polite "
            << polite.text() << "\n";
  RecordProperty("greedy", greedy.text());
  RecordProperty("polite", polite.text());
  EXPECT_EQ(polite.refused, 0);
  EXPECT_EQ(polite.allowed, 8);
  EXPECT_GE(greedy.allowed, 5);
  EXPECT_LE(greedy.allowed, allowed_max(5, 5, greedy.elapsed_s));
  EXPECT_GT(greedy.refused, 0);
  for (const auto& bad : greedy.bad_refusals) ADD_FAILURE() << bad;

  // Another class is limited apart: Mallory still reads.
  EXPECT_EQ(mallory.get("/v1/events/" + event_id).status, 200);
}

TEST(RateLimit, PerAddressLimitsCountEveryoneFromOneAddress) {
  ServerProcess server(embedded_with(
      {"--rate-limits=reads.address=20/s:burst=20,reads.buyer=off,loopback=limited"}));
  const auto event_id = create_event(server);
  auto anonymous = server.client();
  auto bob = server.client();
  bob.bearer = server.token("bob");
  // An anonymous client and a buyer, both from 127.0.0.1, share the address's limit.
  const auto tally = hammer(1s, [&](Tally& t) {
    t.count(anonymous.get("/v1/events/" + event_id));
    t.count(bob.get("/v1/events/" + event_id));
  });
  std::cout << "[ figures ] reads.address=20/s:burst=20 from 127.0.0.1: " << tally.text() << "\n";
  RecordProperty("per_address", tally.text());
  EXPECT_GE(tally.allowed, 20);
  EXPECT_LE(tally.allowed, allowed_max(20, 20, tally.elapsed_s));
  for (const auto& bad : tally.bad_refusals) ADD_FAILURE() << bad;
  // Operations endpoints are never limited.
  EXPECT_EQ(anonymous.get("/healthz").status, 200);
}

TEST(RateLimit, OffTurnsEveryLimitOff) {
  ServerProcess server(embedded_with({"--rate-limits=off"}));
  const auto event_id = create_event(server);
  auto mallory = server.client();
  mallory.bearer = server.token("mallory");
  Tally tally;
  for (int i = 0; i < 150; ++i) tally.count(mallory.get("/v1/events/" + event_id));
  EXPECT_EQ(tally.refused, 0);
}

TEST(RateLimit, ABadSettingStopsServeWithOneLineNamingIt) {
  ServerOptions options = embedded_with({"--rate-limits=holds.buyr=5/s"});
  options.ready_timeout = 5s;
  try {
    ServerProcess server(options);
    ADD_FAILURE() << "serve started with a bad rate_limits";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string{e.what()}.find("unknown scope \"buyr\""), std::string::npos) << e.what();
  }
}

/// Two servers with one Redis: their seat locks are in it, and so are their rate limits.
struct TwoGateways {
  explicit TwoGateways(const std::string& limits)
      : first(embedded_with({"--redis-url=" + redis.url(), "--rate-limits=" + limits})),
        second(embedded_with({"--redis-url=" + redis.url(), "--rate-limits=" + limits})) {}
  RedisServer redis;
  ServerProcess first;
  ServerProcess second;
};

TEST(RateLimit, TwoGatewaysThroughRedisAllowTogetherWhatOneWould) {
  TwoGateways gateways("holds.buyer=2/s:burst=10");
  // Each server knows the events of its own bookings file; the limit is on the buyer only.
  const auto first_holds = "/v1/events/" + create_event(gateways.first) + "/holds";
  const auto second_holds = "/v1/events/" + create_event(gateways.second) + "/holds";
  const auto body = text(quantity_body("floor", 1));

  // One gateway alone, for comparison.
  auto solo = gateways.first.client();
  solo.bearer = gateways.first.token("solo");
  const auto one = hammer(2s, [&](Tally& t) { t.count(solo.post(first_holds, body)); });
  // The same buyer on both gateways, alternating.
  auto a = gateways.first.client();
  a.bearer = gateways.first.token("mallory");
  auto b = gateways.second.client();
  b.bearer = gateways.second.token("mallory");
  const auto both = hammer(2s, [&](Tally& t) {
    t.count(a.post(first_holds, body));
    t.count(b.post(second_holds, body));
  });
  std::cout << "[ figures ] holds.buyer=2/s:burst=10 through Redis: one gateway " << one.text()
            << "; two gateways together " << both.text() << "\n";
  RecordProperty("one_gateway", one.text());
  RecordProperty("two_gateways", both.text());
  EXPECT_GE(one.allowed, 10);
  EXPECT_LE(one.allowed, allowed_max(10, 2, one.elapsed_s));
  // Were the limits apart, the pair would allow two bursts (20).
  EXPECT_GE(both.allowed, 10);
  EXPECT_LE(both.allowed, allowed_max(10, 2, both.elapsed_s));
  for (const auto& bad : one.bad_refusals) ADD_FAILURE() << bad;
  for (const auto& bad : both.bad_refusals) ADD_FAILURE() << bad;
}

TEST(RateLimit, WithoutItsRedisPurchasesFailClosedAndReadsGoOn) {
  TwoGateways gateways("holds.buyer=100/s");
  const auto event_id = create_event(gateways.first);
  auto alice = gateways.first.client();
  alice.bearer = gateways.first.token("alice");
  const auto hold = expect_status(
      alice.post("/v1/events/" + event_id + "/holds", text(quantity_body("floor", 1))), 201,
      "hold with Redis up");

  gateways.redis.stop();
  const auto refused =
      alice.post("/v1/events/" + event_id + "/holds", text(quantity_body("floor", 1)));
  expect_problem(refused, 503, "unavailable");
  const auto checkout =
      alice.post("/v1/holds/" + str(hold.at("id")) + "/checkout", std::string{kPay});
  EXPECT_EQ(checkout.status, 503) << describe(checkout);
  // Reads that need no engine still answer: the event comes from the server's cache.
  for (int i = 0; i < 5; ++i) {
    const auto r = alice.get("/v1/events/" + event_id);
    EXPECT_EQ(r.status, 200) << describe(r);
  }
  const auto availability = alice.get("/v1/events/" + event_id + "/availability");
  std::cout << "[ figures ] with Redis stopped: hold " << refused.status << ", checkout "
            << checkout.status << ", GET event 200, GET availability " << availability.status
            << " (its counts live in Redis)\n";
}

}  // namespace
}  // namespace boxoffice::testing

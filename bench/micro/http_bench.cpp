// The per-request work of the API around a hold: decoding the request body, encoding the hold,
// verifying the buyer's token, and routing.
#include <benchmark/benchmark.h>

#include <boost/json.hpp>
#include <string>

#include "http/json_codec.h"
#include "http/jwt.h"
#include "http/router.h"

namespace boxoffice {
namespace {

const Timestamp kNow = from_unix_ms(1'800'000'000'000);

Hold sample_hold() {
  Hold hold;
  hold.id = "hld_01J9Z3K4X8M2N6P0Q4R8S2T6V0";
  hold.event_id = "evt_01J9Z3K4X8M2N6P0Q4R8S2T6V1";
  hold.buyer = "buyer-00042";
  hold.section = "orch";
  hold.seats = {"orch:A:1", "orch:A:2", "orch:A:3", "orch:A:4"};
  hold.quantity = 4;
  hold.amount = 72000;
  hold.currency = "USD";
  hold.created_at = kNow;
  hold.expires_at = kNow + std::chrono::minutes{10};
  return hold;
}

void BM_JsonEncodeHold(benchmark::State& state) {
  const auto hold = sample_hold();
  for (auto _ : state) {
    auto text = boost::json::serialize(http::to_json(hold));
    benchmark::DoNotOptimize(text);
  }
}

void BM_JsonDecodeHoldRequestSeats(benchmark::State& state) {
  const std::string body = R"({"seats": ["orch:A:1", "orch:A:2", "orch:A:3", "orch:A:4"]})";
  for (auto _ : state) {
    auto selection = http::hold_selection_from_json(body);
    benchmark::DoNotOptimize(selection);
  }
}

void BM_JsonDecodeHoldRequestQuantity(benchmark::State& state) {
  const std::string body = R"({"section": "floor", "quantity": 2})";
  for (auto _ : state) {
    auto selection = http::hold_selection_from_json(body);
    benchmark::DoNotOptimize(selection);
  }
}

/// The client's side: parsing a hold as the API answers it.
void BM_JsonParseHoldResponse(benchmark::State& state) {
  const auto text = boost::json::serialize(http::to_json(sample_hold()));
  for (auto _ : state) {
    auto value = boost::json::parse(text);
    benchmark::DoNotOptimize(value);
  }
}

void BM_JwtVerifyHs256(benchmark::State& state) {
  const std::string secret = "a-development-secret-of-32-bytes!";
  const auto token = jwt::mint_hs256(
      secret, jwt::MintOptions{"buyer-00042", {}, std::chrono::hours{1}, "boxoffice", "boxoffice"},
      kNow);
  jwt::VerifierConfig config;
  config.hs256_secret = secret;
  config.issuer = "boxoffice";
  config.audience = "boxoffice";
  for (auto _ : state) {
    auto claims = jwt::verify(token, config, kNow);
    if (!claims) state.SkipWithError("token refused");
    benchmark::DoNotOptimize(claims);
  }
}

/// The API's routes (CONTRACT.md), matched as the server does.
http::Router api_routes() {
  http::Router router;
  const std::pair<const char*, const char*> routes[] = {
      {"POST", "/v1/events"},
      {"GET", "/v1/events"},
      {"GET", "/v1/events/{event_id}"},
      {"GET", "/v1/events/{event_id}/availability"},
      {"GET", "/v1/events/{event_id}/sections/{section_id}/seats"},
      {"GET", "/v1/events/{event_id}/stats"},
      {"POST", "/v1/events/{event_id}/holds"},
      {"GET", "/v1/holds/{hold_id}"},
      {"DELETE", "/v1/holds/{hold_id}"},
      {"POST", "/v1/holds/{hold_id}/checkout"},
      {"GET", "/v1/bookings/{booking_id}"},
      {"GET", "/v1/bookings"},
      {"POST", "/v1/bookings/{booking_id}/cancel"},
      {"POST", "/v1/events/{event_id}/waitlist"},
      {"GET", "/v1/waitlist/{entry_id}"},
      {"DELETE", "/v1/waitlist/{entry_id}"},
      {"GET", "/healthz"},
      {"GET", "/readyz"},
      {"GET", "/metrics"}};
  for (const auto& [method, pattern] : routes) {
    router.add(http::Route{method, pattern, http::Access::anyone, false, false, {}});
  }
  return router;
}

void BM_RouteHold(benchmark::State& state) {
  const auto router = api_routes();
  for (auto _ : state) {
    auto match = router.match("POST", "/v1/events/evt_01J9Z3K4X8M2N6P0Q4R8S2T6V1/holds");
    benchmark::DoNotOptimize(match);
  }
}

void BM_RouteBookingPoll(benchmark::State& state) {
  const auto router = api_routes();
  for (auto _ : state) {
    auto match = router.match("GET", "/v1/bookings/bkg_01J9Z3K4X8M2N6P0Q4R8S2T6V2");
    benchmark::DoNotOptimize(match);
  }
}

BENCHMARK(BM_JsonEncodeHold);
BENCHMARK(BM_JsonDecodeHoldRequestSeats);
BENCHMARK(BM_JsonDecodeHoldRequestQuantity);
BENCHMARK(BM_JsonParseHoldResponse);
BENCHMARK(BM_JwtVerifyHs256);
BENCHMARK(BM_RouteHold);
BENCHMARK(BM_RouteBookingPoll);

}  // namespace
}  // namespace boxoffice

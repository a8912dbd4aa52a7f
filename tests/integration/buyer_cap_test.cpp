// Business-flow abuse: one buyer racing parallel holds through two gateways (behind haproxy, on
// shared Redis, PostgreSQL and NATS) never holds more than max_seats_per_buyer: the cap is taken
// in one atomic step in the seat lock store, not checked by each gateway from what it has seen.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "integration/api_fixture.h"

namespace boxoffice::testing::api {
namespace {

TEST(BuyerCap, ParallelHoldsThroughTwoGatewaysNeverPassTheCap) {
  ServerOptions options;
  options.engines = ServerOptions::Engines::production;
  options.deployment = ServerOptions::Deployment::haproxy;
  options.args = {"--rate-limits=off"};
  ServerProcess server(options);
  auto admin = server.client();
  admin.bearer = server.token("ops", {"admin"});
  const auto event_id =
      str(expect_status(admin.post("/v1/events", text(event_body({{"max_seats_per_order", 2},
                                                                  {"max_seats_per_buyer", 6}}))),
                        201, "event")
              .at("id"));
  constexpr int kThreads = 8;
  constexpr int kHoldsPerThread = 6;
  const auto token = server.token("greedy");
  const auto port = server.port();
  std::atomic<int> granted_seats{0}, granted_holds{0}, capped{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(port);  // haproxy spreads the connections over both gateways
      client.bearer = token;
      for (int i = 0; i < kHoldsPerThread; ++i) {
        const auto body =
            (t + i) % 2 == 0 ? text(quantity_body("floor", 2)) : text(quantity_body("orch", 2));
        const auto r = client.post("/v1/events/" + event_id + "/holds", body);
        if (r.status == 201) {
          granted_holds += 1;
          granted_seats += 2;
        } else if (r.status == 422 && r.body.find("limit_exceeded") != std::string::npos) {
          capped += 1;
        } else {
          other += 1;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  RecordProperty("granted_holds", granted_holds.load());
  RecordProperty("capped", capped.load());
  EXPECT_LE(granted_seats.load(), 6);
  EXPECT_EQ(granted_holds.load() + capped.load() + other.load(), kThreads * kHoldsPerThread);
  EXPECT_GE(capped.load(), kThreads * kHoldsPerThread - 3 - other.load());
  // What the store counts agrees: at most six seats are held, across both sections.
  const auto a = availability_of(admin, event_id);
  EXPECT_LE(a.at("floor").held + a.at("orch").held, 6);
}

}  // namespace
}  // namespace boxoffice::testing::api

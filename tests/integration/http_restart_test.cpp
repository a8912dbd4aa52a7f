// Restarts of the real binary (README, Restart and SIGTERM; DESIGN.md, Invariants): a kill -9
// loses no booking, keeps booked seats taken, forgets holds that were not checked out, and the
// server takes new bookings afterwards; SIGTERM drains and exits 0.

#include <thread>

#include "integration/api_fixture.h"

namespace boxoffice::testing::api {
namespace {

/// Each test has its own server, since it stops it.
class RestartTest : public ::testing::Test {
 protected:
  RestartTest()
      // In-flight payment jobs of a killed server are delivered again after this; the default
      // (30 s) would make the test wait that long.
      : server(ServerOptions{
            {"--payment-visibility-seconds=2"}, {}, {}, {}, std::chrono::seconds(10)}),
        admin(server.client()),
        alice(server.client()),
        bob(server.client()),
        anon(server.client()) {
    admin.bearer = server.token("ops", {"admin"});
    alice.bearer = server.token("alice");
    bob.bearer = server.token("bob");
  }

  void TearDown() override {
    const auto log = server.log();
    EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
    EXPECT_EQ(log.find("runtime error:"), std::string::npos) << log;
  }

  json::object make_event(const json::object& changes = {}) {
    return expect_status(admin.post("/v1/events", text(event_body(changes))), 201,
                         "POST /v1/events");
  }
  static json::object hold(HttpClient& c, const std::string& event_id, const json::object& body) {
    return expect_status(c.post("/v1/events/" + event_id + "/holds", text(body)), 201,
                         "POST holds");
  }
  static json::object checkout(HttpClient& c, const std::string& hold_id,
                               const Headers& headers = {}) {
    return expect_status(c.post("/v1/holds/" + hold_id + "/checkout", kPay, headers), 202,
                         "checkout");
  }
  static json::object get(HttpClient& c, const std::string& path) {
    return expect_status(c.get(path), 200, "GET " + path);
  }
  static std::set<std::string> booking_ids(HttpClient& c) {
    std::set<std::string> ids;
    const auto listed = get(c, "/v1/bookings");
    for (const auto& b : listed.at("bookings").as_array()) ids.insert(str(b.at("id")));
    return ids;
  }

  ServerProcess server;
  HttpClient admin, alice, bob, anon;
};

TEST_F(RestartTest, KillNineKeepsBookingsAndForgetsUncheckedHolds) {
  auto event = make_event({{"max_seats_per_order", 4}, {"max_seats_per_buyer", 6}});
  const auto id = str(event["id"]);
  auto other_event = make_event({{"name", "Second night"}});

  // Push the hold counter (and so the fencing tokens) up before the bookings are made.
  for (int i = 0; i < 6; ++i) {
    auto h = hold(bob, str(other_event["id"]), quantity_body("floor", 1));
    ASSERT_EQ(bob.del("/v1/holds/" + str(h["id"])).status, 204);
  }
  auto h1 = hold(alice, id, seats_body({"orch:A:1", "orch:A:2"}));
  const auto r1 =
      alice.post("/v1/holds/" + str(h1["id"]) + "/checkout", kPay, {{"Idempotency-Key", "pay-h1"}});
  ASSERT_EQ(r1.status, 202) << describe(r1);
  auto b1 = body_of(r1);
  auto h2 = hold(alice, id, quantity_body("floor", 3));
  auto b2 = checkout(alice, str(h2["id"]));
  auto h3 = hold(bob, id, quantity_body("orch", 3));
  // Slow to pay: most likely still pending when the server dies.
  auto b3 = expect_status(
      bob.post("/v1/holds/" + str(h3["id"]) + "/checkout", R"({"payment_method":"pm_card_slow"})"),
      202, "checkout");
  auto h4 = hold(bob, id, seats_body({"orch:B:9", "orch:B:10"}));  // never checked out
  auto h5 = hold(alice, id, quantity_body("floor", 1));            // never checked out

  auto before = availability_of(anon, id);
  ASSERT_EQ(before.at("orch").held + before.at("orch").sold, 7);
  ASSERT_EQ(before.at("floor").held + before.at("floor").sold, 4);
  // What does not change with the payment's progress.
  const auto fixed = [](json::object b) {
    for (auto key : {"status", "updated_at", "payment"}) b.erase(key);
    return b;
  };

  server.kill9();
  EXPECT_FALSE(server.running());
  // With production engines, Redis would keep the holds across a crash of the server alone: the
  // machine's crash takes Redis down too, without persistence, so the seat locks are rebuilt
  // from PostgreSQL exactly as the embedded store is rebuilt from SQLite.
  if (auto* engines = server.engines()) engines->redis().restart(RedisServer::Data::empty);
  server.restart();

  // Events survive.
  EXPECT_EQ(get(anon, "/v1/events/" + id), event);
  EXPECT_EQ(get(anon, "/v1/events/" + str(other_event["id"])), other_event);
  // Bookings survive with the same fields, still live.
  const std::vector<std::pair<HttpClient*, json::object>> booked = {
      {&alice, b1}, {&alice, b2}, {&bob, b3}};
  for (const auto& [owner, b] : booked) {
    auto now_b = get(*owner, "/v1/bookings/" + str(b.at("id")));
    EXPECT_EQ(fixed(now_b), fixed(b));
    EXPECT_TRUE(now_b.at("status") == "pending_payment" || now_b.at("status") == "confirmed")
        << text(now_b);
  }
  EXPECT_EQ(booking_ids(alice), (std::set<std::string>{str(b1["id"]), str(b2["id"])}));
  EXPECT_EQ(booking_ids(bob), (std::set<std::string>{str(b3["id"])}));
  // Checked-out holds still answer as checked out.
  EXPECT_EQ(get(alice, "/v1/holds/" + str(h1["id"]))["status"], "checked_out");

  // Booked seats are still taken; the holds that were not checked out are gone.
  auto after = availability_of(anon, id);
  EXPECT_EQ(after.at("orch").available, 15) << after.at("orch");
  EXPECT_EQ(after.at("floor").available, 7) << after.at("floor");
  auto seats = seat_map(anon, id, "orch");
  for (const auto& seat : strings(b1["seats"])) EXPECT_NE(seats[seat], "available") << seat;
  for (const auto& seat : strings(b3["seats"])) EXPECT_NE(seats[seat], "available") << seat;
  EXPECT_EQ(seats["orch:B:9"], "available");
  for (const auto& b : {b1, b3}) {
    const auto r =
        admin.post("/v1/events/" + id + "/holds", text(seats_body(strings(b.at("seats")))));
    auto problem = expect_problem(r, 409, "seats_unavailable");
    EXPECT_EQ(sorted(strings(problem["unavailable"])), sorted(strings(b.at("seats"))));
  }
  expect_problem(bob.get("/v1/holds/" + str(h4["id"])), 404, "not_found");
  expect_problem(alice.get("/v1/holds/" + str(h5["id"])), 404, "not_found");
  expect_problem(alice.post("/v1/holds/" + str(h5["id"]) + "/checkout", kPay), 404, "not_found");
  hold(admin, id, seats_body({"orch:B:9", "orch:B:10"}));

  // Bookings still count against the buyer's cap: alice has 5 of 6.
  expect_problem(alice.post("/v1/events/" + id + "/holds", text(quantity_body("floor", 2))), 422,
                 "limit_exceeded");

  // Checkout stays idempotent: per hold, and per Idempotency-Key.
  EXPECT_EQ(checkout(alice, str(h1["id"]))["id"], b1["id"]);
  const auto replay =
      alice.post("/v1/holds/" + str(h1["id"]) + "/checkout", kPay, {{"Idempotency-Key", "pay-h1"}});
  EXPECT_EQ(replay.status, 202);
  EXPECT_EQ(replay.body, r1.body);

  // New holds and checkouts work, in both kinds of section.
  auto h6 = hold(alice, id, quantity_body("floor", 1));
  auto b6 = checkout(alice, str(h6["id"]));
  EXPECT_EQ(b6["status"], "pending_payment");
  auto h7 = hold(bob, id, quantity_body("orch", 1));
  auto b7 = checkout(bob, str(h7["id"]));
  EXPECT_EQ(b7["status"], "pending_payment");
  EXPECT_EQ(booking_ids(alice).size(), 3u);

  // Every booking gets paid, those made before the crash too.
  for (const auto& [owner, b] : booked) wait_for_booking(*owner, str(b.at("id")), {"confirmed"});
  wait_for_booking(alice, str(b6["id"]), {"confirmed"});
  wait_for_booking(bob, str(b7["id"]), {"confirmed"});
  auto stats = get(admin, "/v1/events/" + id + "/stats");
  EXPECT_EQ(stats.at("bookings").at("confirmed"), 5);
  EXPECT_EQ(stats.at("bookings").at("pending_payment"), 0);
  after = once_settled(
      [&] { return availability_of(anon, id); },
      [](const Availability& a) { return a.at("floor").sold == 4 && a.at("orch").sold == 6; });
  EXPECT_EQ(after.at("floor"), (SectionCounts{"general", 10, 6, 0, 4}));
  EXPECT_EQ(after.at("orch"), (SectionCounts{"reserved", 20, 12, 2, 6}));  // B:9-10 held by admin

  // And a second crash keeps all of it.
  server.kill9();
  if (auto* engines = server.engines()) engines->redis().restart(RedisServer::Data::empty);
  server.restart();
  EXPECT_EQ(booking_ids(alice).size(), 3u);
  EXPECT_EQ(get(bob, "/v1/bookings/" + str(b3["id"])).at("status"), "confirmed");
  EXPECT_EQ(availability_of(anon, id).at("floor"), (SectionCounts{"general", 10, 6, 0, 4}));
  EXPECT_EQ(availability_of(anon, id).at("orch"), (SectionCounts{"reserved", 20, 14, 0, 6}));
}

TEST_F(RestartTest, ACheckedOutHoldAnswersTheSameAfterACrash) {
  const auto id = str(make_event()["id"]);
  auto h = hold(alice, id, seats_body({"orch:A:4", "orch:A:5"}));
  auto b = checkout(alice, str(h["id"]));
  wait_for_booking(alice, str(b["id"]), {"confirmed"});
  const auto before = get(alice, "/v1/holds/" + str(h["id"]));
  server.kill9();
  server.restart();
  const auto after = get(alice, "/v1/holds/" + str(h["id"]));
  for (const auto& field : before) {
    EXPECT_EQ(after.if_contains(field.key()) ? after.at(field.key()) : json::value(), field.value())
        << "field " << field.key() << " of GET /v1/holds/{id} changed across the restart";
  }
}

TEST_F(RestartTest, SigtermDrainsIdleConnectionsAndExitsZero) {
  const auto id = str(make_event()["id"]);
  auto b = checkout(alice, str(hold(alice, id, quantity_body("floor", 2))["id"]));

  // An idle keep-alive connection must not hold the drain up.
  RawConnection idle(server.port(), 10s);
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(idle.read_response());

  // The drain timeout is 15 s: a drain that waited for the idle connection would not exit
  // within terminate()'s 12 s (and would not exit 0).
  EXPECT_EQ(server.terminate(std::chrono::seconds(12)), 0) << server.log();
  EXPECT_TRUE(idle.closed_by_peer());
  EXPECT_NE(server.log().find("drained"), std::string::npos) << server.log();

  server.restart();
  EXPECT_TRUE(is_live(get(alice, "/v1/bookings/" + str(b["id"]))["status"]));
  const auto floor = availability_of(anon, id).at("floor");
  EXPECT_EQ(floor.held + floor.sold, 2) << floor;
}

}  // namespace
}  // namespace boxoffice::testing::api

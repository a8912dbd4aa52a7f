// The waitlist on servers of its own: time passing (a hold's expiry and an offer's lapse, with a
// 10 s offer window and 10 s holds: the one ~10 s wait of the waitlist tests) and kill -9 (the
// line, its order and an outstanding offer survive a crash).

#include <thread>

#include "integration/api_fixture.h"
#include "integration/waitlist_helpers.h"

namespace boxoffice::testing::api {
namespace {

using namespace waitlist;

class WaitlistServerTest : public ::testing::Test {
 protected:
  void start(std::vector<std::string> args) {
    ServerOptions options;
    options.args = std::move(args);
    server = std::make_unique<ServerProcess>(options);
    admin = server->client();
    admin.bearer = server->token("ops", {"admin"});
    anon = server->client();
  }

  void TearDown() override {
    if (!server) return;
    const auto log = server->log();
    EXPECT_TRUE(server->running()) << "the server died; its log:\n" << log;
    EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
    EXPECT_EQ(log.find("runtime error:"), std::string::npos) << log;
    EXPECT_EQ(log.find("LeakSanitizer"), std::string::npos) << log;
  }

  HttpClient buyer(const std::string& name) {
    auto c = server->client();
    c.bearer = server->token(name);
    return c;
  }

  /// One general section "floor" of `capacity`, at most 3 seats per order and per buyer.
  std::string event(int64_t capacity, const json::object& changes = {}) {
    json::object body{
        {"name", "Waitlist night"},
        {"starts_at", "2031-06-01T19:00:00Z"},
        {"currency", "USD"},
        {"max_seats_per_order", 3},
        {"max_seats_per_buyer", 3},
        {"sections",
         json::array{json::object{
             {"id", "floor"}, {"kind", "general"}, {"capacity", capacity}, {"price", 5000}}}}};
    for (const auto& field : changes) body[field.key()] = field.value();
    return str(
        expect_status(admin.post("/v1/events", text(body)), 201, "POST /v1/events").at("id"));
  }

  static json::object hold(HttpClient& c, const std::string& event_id, int64_t quantity) {
    return expect_status(
        c.post("/v1/events/" + event_id + "/holds", text(quantity_body("floor", quantity))), 201,
        "POST holds");
  }

  /// Holds `quantity` seats and books them; returns the confirmed booking.
  static json::object book(HttpClient& c, const std::string& event_id, int64_t quantity) {
    const auto hold_id = str(hold(c, event_id, quantity).at("id"));
    auto booking =
        expect_status(c.post("/v1/holds/" + hold_id + "/checkout", kPay), 202, "checkout");
    return wait_for_booking(c, str(booking.at("id")), {"confirmed"});
  }

  json::object stats(const std::string& event_id) {
    return expect_status(admin.get("/v1/events/" + event_id + "/stats"), 200, "stats");
  }

  std::unique_ptr<ServerProcess> server;
  HttpClient admin{0}, anon{0};
};

TEST_F(WaitlistServerTest, HoldExpiryOffersToTheLineAndALapsedOfferMovesOn) {
  start({"--waitlist-offer-seconds=10"});

  // Lapse: a seat released now is offered to A for 10 s; B is next.
  const auto lapse = event(1);
  auto seller1 = buyer("seller1");
  const auto h1 = str(hold(seller1, lapse, 1).at("id"));
  Line lapse_line;
  for (const auto* name : {"A", "B"}) {
    auto& w = lapse_line.add(name, buyer(name), 1);
    w.id = str(join(w.client, lapse, "floor", 1).at("id"));
  }
  // Expiry with someone waiting: the seller's 10 s hold lapses while C waits.
  const auto expiry = event(1, {{"hold_ttl_seconds", 10}});
  auto seller2 = buyer("seller2");
  const auto h2 = str(hold(seller2, expiry, 1).at("id"));
  auto c = buyer("C");
  const auto c_entry = str(join(c, expiry, "floor", 1).at("id"));
  // Expiry with nobody waiting.
  const auto quiet = event(1, {{"hold_ttl_seconds", 10}});
  auto seller3 = buyer("seller3");
  const auto h3 = str(hold(seller3, quiet, 1).at("id"));

  ASSERT_EQ(seller1.del("/v1/holds/" + h1).status, 204);
  lapse_line.release(1);
  ASSERT_TRUE(lapse_line.check(anon, lapse, "floor"));
  auto& a = lapse_line.get("A");
  const auto a_offer = entry_of(a.client, a.id);
  const auto window = time_of(a_offer.at("offer").at("expires_at")) - now();
  EXPECT_GT(window, 5s) << text(a_offer);
  EXPECT_LE(window, 10s) << text(a_offer);
  // Nothing has expired yet.
  EXPECT_EQ(entry_of(c, c_entry).at("status"), "waiting");
  EXPECT_EQ(line_of(anon, quiet, "floor"), (LineCounts{1, 0, 1, 0, 0}));

  // The one wait: until A's offer has lapsed and moved to B (the holds of the other events were
  // made before it and expire first).
  lapse_line.decline("A");  // lapsed: expired, and its seat goes to B
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (entry_of(a.client, a.id).at("status") == "offered" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(lapse_line.check(anon, lapse, "floor"));
  EXPECT_EQ(lapse_line.offered_names(), (std::vector<std::string>{"B"}));
  auto a_hold = hold_of(a.client, a.hold_id);
  EXPECT_NE(a_hold.at("status"), "active") << text(a_hold);
  expect_problem(a.client.post("/v1/holds/" + a.hold_id + "/checkout", kPay), 409, "hold_expired");
  auto lapse_stats = stats(lapse);
  EXPECT_EQ(num(lapse_stats.at("waitlist").at("expired")), 1) << text(lapse_stats);
  EXPECT_EQ(num(lapse_stats.at("waitlist").at("offered")), 1) << text(lapse_stats);
  EXPECT_EQ(line_of(anon, lapse, "floor"), (LineCounts{1, 0, 1, 0, 0}));

  // The expired hold became C's offer, and C can book it.
  EXPECT_EQ(hold_of(seller2, h2).at("status"), "expired");
  auto c_offered = wait_for_entry(c, c_entry, "offered");
  const auto c_hold = str(c_offered.at("offer").at("hold_id"));
  EXPECT_NE(c_hold, h2);
  auto booking = expect_status(c.post("/v1/holds/" + c_hold + "/checkout", kPay), 202, "checkout");
  EXPECT_EQ(
      wait_for_booking(c, str(booking.at("id")), {"confirmed", "payment_failed"}).at("status"),
      "confirmed");
  wait_for_entry(c, c_entry, "converted");
  EXPECT_EQ(line_of(anon, expiry, "floor"), (LineCounts{1, 0, 0, 1, 0}));

  // With nobody waiting, the expired hold's seat is the public's again.
  EXPECT_EQ(hold_of(seller3, h3).at("status"), "expired");
  EXPECT_EQ(wait_for_line(anon, quiet, "floor", LineCounts{1, 1, 0, 0, 0}),
            (LineCounts{1, 1, 0, 0, 0}));
  auto public_buyer = buyer("public");
  hold(public_buyer, quiet, 1);
}

TEST_F(WaitlistServerTest, TheLineAndAnOutstandingOfferSurviveKillNine) {
  start({});
  const auto id = event(4);
  auto seller1 = buyer("seller1");
  auto seller2 = buyer("seller2");
  auto seller3 = buyer("seller3");
  const auto b1 = book(seller1, id, 1);
  book(seller2, id, 1);
  const auto b3 = book(seller3, id, 2);

  Line line;
  const std::vector<std::pair<std::string, int64_t>> wanted = {
      {"W1", 1}, {"W2", 2}, {"W3", 1}, {"W4", 3}, {"W5", 1}};
  for (const auto& [name, quantity] : wanted) {
    auto& w = line.add(name, buyer(name), quantity);
    w.id = str(join(w.client, id, "floor", quantity).at("id"));
  }
  // A cancelled booking's seat is offered to W1.
  expect_status(seller1.post("/v1/bookings/" + str(b1.at("id")) + "/cancel", ""), 202, "cancel");
  wait_for_booking(seller1, str(b1.at("id")), {"refunded"});
  line.release(1);
  ASSERT_TRUE(line.check(anon, id, "floor"));
  auto& w1 = line.get("W1");
  const auto offer_before = entry_of(w1.client, w1.id);
  const auto hold_before = hold_of(w1.client, w1.hold_id);
  std::vector<json::object> before;
  for (auto& w : line.waiters) before.push_back(entry_of(w.client, w.id));
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{4, 0, 1, 3, 4}));

  server->kill9();
  server->restart();

  // Every entry answers as before: same status, position, offer.
  for (size_t i = 0; i < line.waiters.size(); ++i) {
    auto& w = line.waiters[i];
    auto after = entry_of(w.client, w.id);
    for (const auto* field : {"status", "position", "quantity", "section", "created_at"}) {
      EXPECT_EQ(after.if_contains(field) ? after.at(field) : json::value(),
                before[i].if_contains(field) ? before[i].at(field) : json::value())
          << w.name << "'s " << field << " changed across the restart: " << text(after);
    }
  }
  ASSERT_TRUE(line.check(anon, id, "floor", 0ms));
  EXPECT_EQ(entry_of(w1.client, w1.id).at("offer"), offer_before.at("offer"));
  auto hold_after = hold_of(w1.client, w1.hold_id);
  EXPECT_EQ(hold_after.at("status"), "active") << text(hold_after);
  EXPECT_EQ(hold_after.at("expires_at"), hold_before.at("expires_at")) << text(hold_after);
  EXPECT_EQ(hold_after.at("quantity"), hold_before.at("quantity")) << text(hold_after);
  // The offer's seat is still the line's: the public cannot take it.
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{4, 0, 1, 3, 4}));
  auto outsider = buyer("outsider");
  expect_problem(outsider.post("/v1/events/" + id + "/holds", text(quantity_body("floor", 1))), 409,
                 "sold_out");

  // The line keeps its order: 2 seats back go to W2 (2), not W3.
  expect_status(seller3.post("/v1/bookings/" + str(b3.at("id")) + "/cancel", ""), 202, "cancel");
  wait_for_booking(seller3, str(b3.at("id")), {"refunded"});
  line.release(2);
  EXPECT_TRUE(line.check(anon, id, "floor"));
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"W1", "W2"}));

  // W1's offer, made before the crash, books.
  auto booking =
      expect_status(w1.client.post("/v1/holds/" + w1.hold_id + "/checkout", kPay), 202, "checkout");
  EXPECT_EQ(wait_for_booking(w1.client, str(booking.at("id")), {"confirmed", "payment_failed"})
                .at("status"),
            "confirmed");
  wait_for_entry(w1.client, w1.id, "converted");
  auto s = stats(id);
  EXPECT_EQ(num(s.at("waitlist").at("converted")), 1) << text(s);
  EXPECT_EQ(num(s.at("waitlist").at("offered")), 1) << text(s);
  EXPECT_EQ(num(s.at("waitlist").at("waiting")), 3) << text(s);
}

}  // namespace
}  // namespace boxoffice::testing::api

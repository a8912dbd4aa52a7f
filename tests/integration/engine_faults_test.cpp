// Faults of the production engines, with real servers behind a real `boxoffice serve`:
//  - Redis restarted empty in the middle of a sale: no seat sold twice, sales resume by themselves;
//  - nats-server killed and restarted with payments in flight: no payment job lost;
//  - PostgreSQL restarted in the middle of a sale: requests fail fast with 503, then resume.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "integration/api_fixture.h"
#include "support/postgres_server.h"

namespace boxoffice::testing::api {
namespace {

using namespace std::chrono_literals;

ServerOptions production(std::vector<std::string> args = {}) {
  ServerOptions options;
  options.engines = ServerOptions::Engines::production;
  options.args = std::move(args);
  return options;
}

struct Sale {
  ServerProcess& server;
  HttpClient admin;
  std::string event_id;

  explicit Sale(ServerProcess& s) : server(s), admin(s.client()) {
    admin.bearer = server.token("ops", {"admin"});
    event_id =
        str(expect_status(admin.post("/v1/events", text(event_body())), 201, "event").at("id"));
  }
  HttpClient buyer(const std::string& name) const {
    auto c = server.client();
    c.bearer = server.token(name);
    return c;
  }
  /// Holds exactly these seats for `who` and checks them out; the booking's id.
  std::string book(HttpClient& who, std::vector<std::string> seats) const {
    auto hold = expect_status(
        who.post("/v1/events/" + event_id + "/holds", text(seats_body(seats))), 201, "hold");
    auto booking =
        expect_status(who.post("/v1/holds/" + str(hold.at("id")) + "/checkout", std::string{kPay}),
                      202, "checkout");
    return str(booking.at("id"));
  }
};

std::vector<std::string> orch_seats() {
  std::vector<std::string> seats;
  for (const char* row : {"A", "B"})
    for (int n = 1; n <= 10; ++n)
      seats.push_back(std::string{"orch:"} + row + ":" + std::to_string(n));
  return seats;
}

TEST(EngineFaults, RedisRestartedEmptyMidSaleSellsNoSeatTwiceAndResumes) {
  // Rate limits off: six buyers in a tight loop are the load here, not abuse to refuse.
  ServerProcess server(production({"--rate-limits=off"}));
  Sale sale(server);
  // Before the fault: four seats confirmed.
  auto early = sale.buyer("early");
  const auto first = sale.book(early, {"orch:A:1", "orch:A:2"});
  const auto second = sale.book(early, {"orch:B:5", "orch:B:6"});
  for (const auto& id : {first, second}) {
    EXPECT_EQ(wait_for_booking(early, id, {"confirmed", "payment_failed"}).at("status"),
              "confirmed");
  }
  const std::set<std::string> sold_before = {"orch:A:1", "orch:A:2", "orch:B:5", "orch:B:6"};

  // Buyers race for the other seats while Redis restarts with nothing.
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::map<int, int> statuses;             // hold responses by status
  std::vector<std::string> booking_ids;    // every checkout accepted
  std::vector<std::string> gate_breaches;  // a hold granted on a seat sold before the fault
  std::vector<std::thread> buyers;
  for (int b = 0; b < 6; ++b) {
    const auto token = server.token("racer" + std::to_string(b));
    const auto port = server.port();
    buyers.emplace_back([&, b, token, port] {
      auto connect = [&] {
        HttpClient c(port);
        c.bearer = token;
        return c;
      };
      auto client = connect();
      std::mt19937 rng(static_cast<unsigned>(b));
      const auto seats = orch_seats();
      while (!stop) {
        const auto& seat = seats[rng() % seats.size()];
        Response r;
        try {
          r = client.post("/v1/events/" + sale.event_id + "/holds", text(seats_body({seat})));
        } catch (const std::exception&) {
          client = connect();  // the server dropped the connection
          continue;
        }
        std::lock_guard lock(mutex);
        ++statuses[r.status];
        if (r.status != 201) continue;
        if (sold_before.count(seat)) gate_breaches.push_back(seat);
        const auto hold_id = str(body_of(r).at("id"));
        auto c = client.post("/v1/holds/" + hold_id + "/checkout", std::string{kPay});
        if (c.status == 202) booking_ids.push_back(str(body_of(c).at("id")));
      }
    });
  }
  std::this_thread::sleep_for(500ms);
  server.engines()->redis().restart(RedisServer::Data::empty);
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& t : buyers) t.join();
  EXPECT_TRUE(gate_breaches.empty())
      << "holds granted on seats sold before the restart: " << gate_breaches.size();

  // Sales resume by themselves: a new buyer gets a free seat (a 503 is allowed only while the
  // event is being rebuilt).
  auto late = sale.buyer("late");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  int resumed_status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = late.post("/v1/events/" + sale.event_id + "/holds", text(quantity_body("floor", 1)));
    resumed_status = r.status;
    if (r.status != 503) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(resumed_status, 201);

  // Every booking ends, and no seat is in two live bookings: the seat map's sold seats are
  // exactly the seats of confirmed bookings, each counted once.
  auto& admin = sale.admin;
  std::map<std::string, int> confirmed_seats;
  for (const auto& id : booking_ids) {
    auto b = wait_for_booking(admin, id, {"confirmed", "payment_failed"});
    if (b.at("status") == "confirmed")
      for (const auto& s : b.at("seats").as_array()) ++confirmed_seats[str(s)];
  }
  for (const auto& s : sold_before) ++confirmed_seats[s];
  for (const auto& [seat, count] : confirmed_seats) EXPECT_EQ(count, 1) << seat << " sold twice";
  auto seats = seat_map(admin, sale.event_id, "orch");
  for (const auto& [seat, status] : seats) {
    EXPECT_EQ(status == "sold", confirmed_seats.count(seat) == 1) << seat << " reads " << status;
  }
  const auto duplicates = server.engines()->postgres().execute(
      server.engines()->database(),
      "SELECT count(*) FROM (SELECT seat_id FROM booking_seats WHERE live GROUP BY event_id, "
      "seat_id HAVING count(*) > 1) d");
  EXPECT_EQ(duplicates.value, "0") << duplicates.sqlstate;
  RecordProperty("hold_statuses", [&] {
    std::string s;
    for (auto [status, n] : statuses) s += std::to_string(status) + ":" + std::to_string(n) + " ";
    return s;
  }());
}

TEST(EngineFaults, NatsRestartedLosesNoPaymentJob) {
  ServerProcess server(production({"--payment-visibility-seconds=2"}));
  Sale sale(server);
  auto buyer = sale.buyer("patient");
  std::vector<std::string> bookings;
  bookings.push_back(sale.book(buyer, {"orch:A:1"}));
  // The queue goes away: checkouts still commit (their jobs wait in the outbox).
  server.engines()->nats().kill9();
  for (const char* seat : {"orch:A:2", "orch:A:3", "orch:A:4"})
    bookings.push_back(sale.book(buyer, {seat}));
  std::this_thread::sleep_for(1s);
  server.engines()->nats().restart();
  for (const char* seat : {"orch:A:5", "orch:A:6"}) bookings.push_back(sale.book(buyer, {seat}));
  for (const auto& id : bookings) {
    EXPECT_EQ(wait_for_booking(buyer, id, {"confirmed", "payment_failed"}, 60s).at("status"),
              "confirmed")
        << id;
  }
}

TEST(EngineFaults, PostgresRestartedMidSaleFailsFastThenResumes) {
  // Its own server, since this test stops it; durable, since a crash of a server that does not
  // flush its WAL (the other tests' setting) loses commits, as it would in production.
  PostgresServer postgres(PostgresServer::Options{.fsync = true});
  const auto database = postgres.create_database();
  ServerProcess server(production({"--postgres-url=" + postgres.url(database)}));
  Sale sale(server);
  auto buyer = sale.buyer("steady");
  const auto before = sale.book(buyer, {"orch:A:1"});
  EXPECT_EQ(wait_for_booking(buyer, before, {"confirmed", "payment_failed"}).at("status"),
            "confirmed");

  postgres.crash();
  // Holds live in Redis and still work; what needs the Bookings DB fails fast with 503.
  auto hold = expect_status(
      buyer.post("/v1/events/" + sale.event_id + "/holds", text(seats_body({"orch:A:2"}))), 201,
      "hold while PostgreSQL is down");
  const auto hold_id = str(hold.at("id"));
  const auto started = std::chrono::steady_clock::now();
  expect_problem(buyer.post("/v1/holds/" + hold_id + "/checkout", std::string{kPay}), 503,
                 "unavailable");
  expect_problem(buyer.get("/v1/bookings"), 503, "unavailable");
  const auto refused_after = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  RecordProperty("two_refusals_ms", std::to_string(refused_after.count()));

  postgres.start_again();
  // The same hold checks out once PostgreSQL is back (the failed attempt wrote nothing and
  // kept the hold), and the sale goes on.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  Response checkout;
  do {
    checkout = buyer.post("/v1/holds/" + hold_id + "/checkout", std::string{kPay});
    if (checkout.status != 503) break;
    std::this_thread::sleep_for(200ms);
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(checkout.status, 202) << describe(checkout);
  const auto after = str(body_of(checkout).at("id"));
  const auto more = sale.book(buyer, {"orch:A:3"});
  for (const auto& id : {before, after, more}) {
    EXPECT_EQ(wait_for_booking(buyer, id, {"confirmed", "payment_failed"}).at("status"),
              "confirmed");
  }
  // Nothing half-written: exactly the three bookings, each with its one seat.
  const auto rows = postgres.execute(
      database, "SELECT count(*) || '/' || (SELECT count(*) FROM booking_seats) FROM bookings");
  EXPECT_EQ(rows.value, "3/3") << rows.sqlstate;
  auto seats = seat_map(buyer, sale.event_id, "orch", "?row=A");
  for (const char* seat : {"orch:A:1", "orch:A:2", "orch:A:3"}) EXPECT_EQ(seats[seat], "sold");
}

}  // namespace
}  // namespace boxoffice::testing::api

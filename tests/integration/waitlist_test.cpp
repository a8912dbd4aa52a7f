// The waitlist against the real binary (CONTRACT.md, Waitlist; DESIGN.md, Invariants: "the
// waitlist is served in order"): buyers join a sold-out section, every seat that comes back —
// a hold released or expired, a payment declined, a booking cancelled — is offered in join order
// (never to a later joiner while an earlier one whose quantity fits still waits), offers lapse or
// are declined and move on, entries are private to their buyer, and the line survives kill -9.
//
// Offers lapse after 10 minutes on the shared server, so an offer made there stays put unless a
// test moves it; the one test that waits for time to pass (hold expiry and offer lapse, ~10 s)
// has its own server with a 10 s offer window.

#include <latch>
#include <mutex>
#include <thread>

#include "integration/api_fixture.h"
#include "integration/waitlist_helpers.h"

namespace boxoffice::testing::api {
namespace {

using namespace waitlist;

class WaitlistTest : public ApiTest {
 protected:
  /// A client acting as a buyer of this test only.
  HttpClient buyer(const std::string& name) {
    return client_as(server().token(name + "-" + alice_id));
  }

  /// An event whose general section "floor" has `capacity` seats (and a reserved "orch"), at most
  /// 3 seats per order and per buyer.
  std::string small_event(int64_t capacity, const json::object& changes = {}) {
    json::object body{
        {"max_seats_per_order", 3},
        {"max_seats_per_buyer", 3},
        {"sections",
         json::array{
             json::object{
                 {"id", "floor"}, {"kind", "general"}, {"capacity", capacity}, {"price", 5000}},
             json::object{{"id", "orch"},
                          {"kind", "reserved"},
                          {"price", 10000},
                          {"rows", json::array{json::object{{"row", "A"}, {"seats", 2}}}}}}}};
    for (const auto& field : changes) body[field.key()] = field.value();
    return make_event_id(body);
  }

  /// Sells the section out with one hold per entry of `sizes`, each by its own buyer; returns
  /// those buyers' clients and hold ids.
  std::vector<std::pair<HttpClient, std::string>> sell_out(const std::string& event_id,
                                                           const std::vector<int64_t>& sizes,
                                                           const std::string& section = "floor") {
    std::vector<std::pair<HttpClient, std::string>> out;
    for (size_t i = 0; i < sizes.size(); ++i) {
      auto c = buyer("seller" + std::to_string(i) + "-" + section);
      auto h = hold(c, event_id, quantity_body(section, sizes[i]));
      out.emplace_back(std::move(c), str(h.at("id")));
    }
    return out;
  }
};

// --- FIFO ----------------------------------------------------------------------------------------

TEST_F(WaitlistTest, OffersFollowJoinOrderAcrossQuantities) {
  const auto id = small_event(10);
  auto sellers = sell_out(id, {2, 3, 3, 2});
  ASSERT_EQ(line_of(anon, id, "floor").available, 0);

  // A wants 3, B 2, C 1, D 3, E 1, in this order.
  Line line;
  const std::vector<std::pair<std::string, int64_t>> wanted = {
      {"A", 3}, {"B", 2}, {"C", 1}, {"D", 3}, {"E", 1}};
  for (const auto& [name, quantity] : wanted) {
    auto& w = line.add(name, buyer("waiter" + name), quantity);
    auto entry = join(w.client, id, "floor", quantity);
    w.id = str(entry.at("id"));
    EXPECT_EQ(entry.at("status"), "waiting") << text(entry);
    EXPECT_EQ(entry.at("event_id"), json::value(id));
    EXPECT_EQ(entry.at("section"), "floor");
    EXPECT_EQ(num(entry.at("quantity")), quantity);
    EXPECT_EQ(num(entry.at("position")), static_cast<int64_t>(line.waiters.size())) << text(entry);
  }
  line.check(anon, id, "floor");
  {
    auto counts = line_of(anon, id, "floor");
    EXPECT_EQ(counts.waitlisted, 5);
    EXPECT_EQ(counts.available, 0);
    EXPECT_EQ(line_of(anon, id, "orch").waitlisted, 0);
  }

  auto release = [&](size_t seller) {
    auto& [c, hold_id] = sellers[seller];
    ASSERT_EQ(c.del("/v1/holds/" + hold_id).status, 204);
  };

  // 2 come back: A (3) cannot use them, B (2) is the first who can. A stays first in line.
  release(0);
  line.release(2);
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"B"}));
  line.check(anon, id, "floor");
  // 3 come back: A, not D (same quantity, later) nor C or E (smaller, later).
  release(1);
  line.release(3);
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"B", "A"}));
  line.check(anon, id, "floor");
  // 3 come back again: C (1) is ahead of D (3), so C first; D cannot use the 2 left, E can.
  release(2);
  line.release(3);
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"B", "A", "C", "E"}));
  line.check(anon, id, "floor");

  // The seat left over is kept for D, not sold to the public.
  {
    auto counts = line_of(anon, id, "floor");
    EXPECT_EQ(counts, (LineCounts{10, 0, 10, 0, 1}));
    auto problem = expect_problem(
        bob.post("/v1/events/" + id + "/holds", text(quantity_body("floor", 1))), 409, "sold_out");
    EXPECT_EQ(problem["waitlist"], json::value("/v1/events/" + id + "/waitlist"));
  }
  // 2 more make 3: D.
  release(3);
  line.release(2);
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"B", "A", "C", "E", "D"}));
  line.check(anon, id, "floor");
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{10, 0, 10, 0, 0}));

  // Nobody waits now: seats that come back go to the public.
  auto& e = line.get("E");
  ASSERT_EQ(e.client.del("/v1/waitlist/" + e.id).status, 204);
  line.leave("E");
  line.check(anon, id, "floor");
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{10, 1, 9, 0, 0}));
  hold(bob, id, quantity_body("floor", 1));
}

TEST_F(WaitlistTest, ConcurrentJoinersAreServedInJoinOrder) {
  const auto id = small_event(12);
  const std::vector<int64_t> sizes = {2, 1, 3, 2, 1, 3};
  auto sellers = sell_out(id, sizes);

  const std::vector<int64_t> quantities = {3, 2, 1, 3, 1, 2, 2, 3, 1, 1, 2, 3};
  const auto n = quantities.size();
  std::vector<HttpClient> clients;
  for (size_t i = 0; i < n; ++i) clients.push_back(buyer("crowd" + std::to_string(i)));
  std::vector<json::object> joined(n);
  std::vector<std::string> errors(n);
  {
    std::latch start(static_cast<std::ptrdiff_t>(n));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          joined[i] = join(clients[i], id, "floor", quantities[i]);
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(errors[i].empty()) << "buyer " << i << ": " << errors[i];

  // The join order is the order of positions; every position from 1 to n, each once, and the
  // one each join answered is the one GET shows (nobody ahead has left).
  std::vector<size_t> by_position(n, n);
  for (size_t i = 0; i < n; ++i) {
    const auto position = num(joined[i].at("position"));
    ASSERT_GE(position, 1) << text(joined[i]);
    ASSERT_LE(position, static_cast<int64_t>(n)) << text(joined[i]);
    ASSERT_EQ(by_position[position - 1], n) << "position " << position << " given twice";
    by_position[position - 1] = i;
    auto now_entry = entry_of(clients[i], str(joined[i].at("id")));
    EXPECT_EQ(now_entry.at("position"), joined[i].at("position")) << text(now_entry);
  }
  Line line;
  for (auto i : by_position) {
    auto& w = line.add("crowd" + std::to_string(i), std::move(clients[i]), quantities[i]);
    w.id = str(joined[i].at("id"));
  }
  line.check(anon, id, "floor");

  // The sellers' seats come back one batch at a time; one of them through a declined payment.
  for (size_t s = 0; s < sellers.size(); ++s) {
    auto& [c, hold_id] = sellers[s];
    if (s == 2) {
      auto booking = expect_status(
          c.post("/v1/holds/" + hold_id + "/checkout", R"({"payment_method":"pm_card_declined"})"),
          202, "checkout");
      wait_for_booking(c, str(booking.at("id")), {"payment_failed"});
    } else {
      ASSERT_EQ(c.del("/v1/holds/" + hold_id).status, 204);
    }
    line.release(sizes[s]);
    line.check(anon, id, "floor");
  }
  // Then offered buyers give up their place one by one, oldest offer first, until the line is
  // empty: each time their seats go to the first who fits.
  for (int guard = 0; guard < 20 && line.waiting_count() > 0; ++guard) {
    const auto offered = line.offered_names();
    ASSERT_FALSE(offered.empty()) << "people wait and nobody holds an offer";
    auto& w = line.get(offered.front());
    ASSERT_EQ(w.client.del("/v1/waitlist/" + w.id).status, 204);
    line.leave(w.name);
    line.check(anon, id, "floor");
  }
  EXPECT_EQ(line.waiting_count(), 0u);
  // Nothing moves afterwards (one sweep later the line is still as the model says).
  std::this_thread::sleep_for(700ms);
  line.check(anon, id, "floor", 0ms);
}

// --- every release path ----------------------------------------------------------------------

TEST_F(WaitlistTest, EveryReleasePathOffersToTheLineWhenSomeoneWaits) {
  const auto id = small_event(3);
  auto s_cancel = buyer("s-cancel");
  auto s_decline = buyer("s-decline");
  auto s_delete = buyer("s-delete");
  // One seat booked and confirmed (to be cancelled), one held for a payment to be declined, one
  // held to be released.
  auto booked = checkout(s_cancel, str(hold(s_cancel, id, quantity_body("floor", 1)).at("id")));
  wait_for_booking(s_cancel, str(booked.at("id")), {"confirmed"});
  const auto h_decline = str(hold(s_decline, id, quantity_body("floor", 1)).at("id"));
  const auto h_delete = str(hold(s_delete, id, quantity_body("floor", 1)).at("id"));

  Line line;
  for (const auto* name : {"W1", "W2", "W3"}) {
    auto& w = line.add(name, buyer(name), 1);
    w.id = str(join(w.client, id, "floor", 1).at("id"));
  }
  line.check(anon, id, "floor");

  // Payment declined.
  auto failed = expect_status(s_decline.post("/v1/holds/" + h_decline + "/checkout",
                                             R"({"payment_method":"pm_card_declined"})"),
                              202, "checkout");
  wait_for_booking(s_decline, str(failed.at("id")), {"payment_failed"});
  line.release(1);
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"W1"}));
  line.check(anon, id, "floor");

  // Cancellation of a confirmed booking.
  expect_status(s_cancel.post("/v1/bookings/" + str(booked.at("id")) + "/cancel", ""), 202,
                "cancel");
  wait_for_booking(s_cancel, str(booked.at("id")), {"refunded"});
  line.release(1);
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"W1", "W2"}));
  line.check(anon, id, "floor");

  // Explicit release.
  ASSERT_EQ(s_delete.del("/v1/holds/" + h_delete).status, 204);
  line.release(1);
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"W1", "W2", "W3"}));
  line.check(anon, id, "floor");

  // Every seat is now an offer: nothing for the public, nothing sold.
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{3, 0, 3, 0, 0}));
  expect_problem(bob.post("/v1/events/" + id + "/holds", text(quantity_body("floor", 1))), 409,
                 "sold_out");
  auto stats = expect_status(admin.get("/v1/events/" + id + "/stats"), 200, "stats");
  EXPECT_EQ(num(stats.at("waitlist").at("offered")), 3) << text(stats);
  EXPECT_EQ(num(stats.at("waitlist").at("waiting")), 0) << text(stats);
}

TEST_F(WaitlistTest, EveryReleasePathReturnsSeatsToThePublicWhenNobodyWaits) {
  const auto id = small_event(3);
  auto s_cancel = buyer("s-cancel");
  auto s_decline = buyer("s-decline");
  auto s_delete = buyer("s-delete");
  auto booked = checkout(s_cancel, str(hold(s_cancel, id, quantity_body("floor", 1)).at("id")));
  wait_for_booking(s_cancel, str(booked.at("id")), {"confirmed"});
  const auto h_decline = str(hold(s_decline, id, quantity_body("floor", 1)).at("id"));
  const auto h_delete = str(hold(s_delete, id, quantity_body("floor", 1)).at("id"));
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{3, 0, 2, 1, 0}));

  auto failed = expect_status(s_decline.post("/v1/holds/" + h_decline + "/checkout",
                                             R"({"payment_method":"pm_card_declined"})"),
                              202, "checkout");
  wait_for_booking(s_decline, str(failed.at("id")), {"payment_failed"});
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{3, 1, 1, 1, 0}));

  expect_status(s_cancel.post("/v1/bookings/" + str(booked.at("id")) + "/cancel", ""), 202,
                "cancel");
  wait_for_booking(s_cancel, str(booked.at("id")), {"refunded"});
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{3, 2, 1, 0, 0}));

  ASSERT_EQ(s_delete.del("/v1/holds/" + h_delete).status, 204);
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{3, 3, 0, 0, 0}));

  // Anyone may take them, and nobody may join a line for a section with seats.
  expect_problem(bob.post("/v1/events/" + id + "/waitlist", text(quantity_body("floor", 1))), 409,
                 "seats_available");
  hold(bob, id, quantity_body("floor", 3));
  auto stats = expect_status(admin.get("/v1/events/" + id + "/stats"), 200, "stats");
  for (const auto* status : {"waiting", "offered", "converted", "expired", "left"}) {
    EXPECT_EQ(num(stats.at("waitlist").at(status)), 0) << status << " " << text(stats);
  }
}

TEST_F(WaitlistTest, AReservedSectionOffersReleasedSeatsAndFreesTheRest) {
  const auto id = small_event(1);
  auto seller = buyer("seller");
  const auto h = str(hold(seller, id, seats_body({"orch:A:1", "orch:A:2"})).at("id"));
  auto waiter = buyer("waiter");
  const auto entry_id = str(join(waiter, id, "orch", 1).at("id"));
  EXPECT_EQ(line_of(anon, id, "orch").waitlisted, 1);

  ASSERT_EQ(seller.del("/v1/holds/" + h).status, 204);
  auto entry = wait_for_entry(waiter, entry_id, "offered");
  auto offer = hold_of(waiter, str(entry.at("offer").at("hold_id")));
  ASSERT_EQ(offer.at("seats").as_array().size(), 1u) << text(offer);
  const auto offered_seat = str(offer.at("seats").at(0));
  const auto other_seat = offered_seat == "orch:A:1" ? "orch:A:2" : "orch:A:1";
  EXPECT_TRUE(offered_seat == "orch:A:1" || offered_seat == "orch:A:2") << offered_seat;

  // The line is served; the other seat is the public's again.
  auto seats = seat_map(anon, id, "orch");
  EXPECT_EQ(seats[offered_seat], "held");
  EXPECT_EQ(seats[other_seat], "available");
  EXPECT_EQ(line_of(anon, id, "orch"), (LineCounts{2, 1, 1, 0, 0}));
  expect_problem(bob.post("/v1/events/" + id + "/holds", text(seats_body({offered_seat}))), 409,
                 "seats_unavailable");
  hold(bob, id, seats_body({other_seat}));
}

// --- offers: checkout, decline -----------------------------------------------------------------

TEST_F(WaitlistTest, CheckingOutAnOfferBooksItAndConvertsTheEntry) {
  const auto id = small_event(2);
  auto sellers = sell_out(id, {2});
  const auto entry_id = str(join(alice, id, "floor", 2).at("id"));
  const auto other_id = str(join(bob, id, "floor", 1).at("id"));
  ASSERT_EQ(sellers[0].first.del("/v1/holds/" + sellers[0].second).status, 204);

  auto entry = wait_for_entry(alice, entry_id, "offered");
  const auto hold_id = str(entry.at("offer").at("hold_id"));
  const auto offer_expires = time_of(entry.at("offer").at("expires_at"));
  // The offer is alice's hold: active, her quantity, expiring when the offer does (10 minutes
  // on this server), and nobody else's.
  auto offer = hold_of(alice, hold_id);
  EXPECT_EQ(offer.at("status"), "active");
  EXPECT_EQ(num(offer.at("quantity")), 2);
  EXPECT_EQ(offer.at("section"), "floor");
  EXPECT_EQ(offer.at("event_id"), json::value(id));
  EXPECT_EQ(time_of(offer.at("expires_at")), offer_expires);
  EXPECT_GT(offer_expires, now() + std::chrono::minutes(9));
  expect_problem(bob.get("/v1/holds/" + hold_id), 404, "not_found");
  expect_problem(bob.post("/v1/holds/" + hold_id + "/checkout", kPay), 404, "not_found");
  expect_problem(bob.del("/v1/holds/" + hold_id), 404, "not_found");
  EXPECT_EQ(num(entry_of(bob, other_id).at("position")), 1);

  auto booking = checkout(alice, hold_id);
  EXPECT_EQ(booking.at("hold_id"), json::value(hold_id));
  EXPECT_EQ(num(booking.at("quantity")), 2);
  auto confirmed = wait_for_booking(alice, str(booking.at("id")), {"confirmed", "payment_failed"});
  EXPECT_EQ(confirmed.at("status"), "confirmed") << text(confirmed);
  auto converted = wait_for_entry(alice, entry_id, "converted");
  EXPECT_EQ(converted.at("offer").at("hold_id"), json::value(hold_id)) << text(converted);

  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{2, 0, 0, 2, 1}));
  auto stats = expect_status(admin.get("/v1/events/" + id + "/stats"), 200, "stats");
  EXPECT_EQ(num(stats.at("waitlist").at("converted")), 1) << text(stats);
  EXPECT_EQ(num(stats.at("waitlist").at("waiting")), 1) << text(stats);
  EXPECT_EQ(num(stats.at("bookings").at("confirmed")), 1) << text(stats);
  EXPECT_EQ(entry_of(bob, other_id).at("status"), "waiting");
}

TEST_F(WaitlistTest, DecliningAnOfferMovesItToTheNextInLine) {
  const auto id = small_event(2);
  auto sellers = sell_out(id, {2});
  Line line;
  for (const auto& [name, quantity] :
       std::vector<std::pair<std::string, int64_t>>{{"A", 2}, {"B", 2}, {"C", 1}}) {
    auto& w = line.add(name, buyer(name), quantity);
    w.id = str(join(w.client, id, "floor", quantity).at("id"));
  }
  ASSERT_EQ(sellers[0].first.del("/v1/holds/" + sellers[0].second).status, 204);
  line.release(2);
  line.check(anon, id, "floor");
  ASSERT_EQ(line.offered_names(), (std::vector<std::string>{"A"}));

  // A declines by releasing the offer's hold: the 2 seats go to B (not C, who is behind B).
  auto& a = line.get("A");
  ASSERT_EQ(a.client.del("/v1/holds/" + a.hold_id).status, 204);
  EXPECT_EQ(hold_of(a.client, a.hold_id).at("status"), "released");
  line.decline("A");
  line.check(anon, id, "floor");
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"B"}));
  // A declined offer cannot be checked out any more.
  expect_problem(a.client.post("/v1/holds/" + a.hold_id + "/checkout", kPay), 409, "hold_expired");

  auto stats = expect_status(admin.get("/v1/events/" + id + "/stats"), 200, "stats");
  EXPECT_EQ(num(stats.at("waitlist").at("expired")), 1) << text(stats);
  EXPECT_EQ(num(stats.at("waitlist").at("offered")), 1) << text(stats);
  EXPECT_EQ(num(stats.at("waitlist").at("waiting")), 1) << text(stats);
}

TEST_F(WaitlistTest, AnOfferWhosePaymentIsDeclinedGoesToTheNextInLine) {
  const auto id = small_event(1);
  auto sellers = sell_out(id, {1});
  Line line;
  for (const auto* name : {"A", "B"}) {
    auto& w = line.add(name, buyer(name), 1);
    w.id = str(join(w.client, id, "floor", 1).at("id"));
  }
  ASSERT_EQ(sellers[0].first.del("/v1/holds/" + sellers[0].second).status, 204);
  line.release(1);
  ASSERT_TRUE(line.check(anon, id, "floor"));
  auto& a = line.get("A");
  auto booking = expect_status(a.client.post("/v1/holds/" + a.hold_id + "/checkout",
                                             R"({"payment_method":"pm_card_declined"})"),
                               202, "checkout");
  wait_for_booking(a.client, str(booking.at("id")), {"payment_failed"});
  // A's entry left the line one way or another (the contract has no status for "booked, then
  // declined"); B gets the seat.
  auto b = wait_for_entry(line.get("B").client, line.get("B").id, "offered");
  auto a_now = entry_of(a.client, a.id);
  EXPECT_NE(a_now.at("status"), "waiting") << text(a_now);
  EXPECT_NE(a_now.at("status"), "offered") << text(a_now);
  EXPECT_EQ(num(hold_of(line.get("B").client, str(b.at("offer").at("hold_id"))).at("quantity")), 1);
  EXPECT_EQ(line_of(anon, id, "floor"), (LineCounts{1, 0, 1, 0, 0}));
}

// --- joining, leaving, privacy, bad input --------------------------------------------------------

TEST_F(WaitlistTest, JoinIsRefusedWhileSeatsAreAvailableAndOnceLivePerSection) {
  const auto id = small_event(2);
  const auto path = "/v1/events/" + id + "/waitlist";
  expect_problem(alice.post(path, text(quantity_body("floor", 1))), 409, "seats_available");
  // One seat left is still a seat available.
  auto sellers = sell_out(id, {1});
  expect_problem(alice.post(path, text(quantity_body("floor", 2))), 409, "seats_available");
  hold(bob, id, quantity_body("floor", 1));
  EXPECT_EQ(line_of(anon, id, "floor").waitlisted, 0);

  auto entry = join(alice, id, "floor", 2);
  EXPECT_EQ(num(entry.at("position")), 1);
  // A second live entry in the same section is refused, whatever the quantity.
  expect_problem(alice.post(path, text(quantity_body("floor", 2))), 409, "conflict");
  expect_problem(alice.post(path, text(quantity_body("floor", 1))), 409, "conflict");
  // The reserved section still has seats.
  expect_problem(alice.post(path, text(quantity_body("orch", 1))), 409, "seats_available");
  EXPECT_EQ(line_of(anon, id, "floor").waitlisted, 1);

  // Once offered, the entry is still live: no second one either.
  ASSERT_EQ(sellers[0].first.del("/v1/holds/" + sellers[0].second).status, 204);
  // The seat is kept for the line, but alice wants 2: bob, joining now for 1, is served.
  auto bob_entry = join(bob, id, "floor", 1);
  wait_for_entry(bob, str(bob_entry.at("id")), "offered");
  EXPECT_EQ(entry_of(alice, str(entry.at("id"))).at("status"), "waiting");
  expect_problem(bob.post(path, text(quantity_body("floor", 1))), 409, "conflict");
}

TEST_F(WaitlistTest, OneBuyerJoiningManyTimesAtOnceGetsOneEntry) {
  const auto id = small_event(1);
  sell_out(id, {1});
  constexpr int kTries = 6;
  std::vector<HttpClient> clients;
  for (int i = 0; i < kTries; ++i) clients.push_back(client_as(alice_token));
  std::vector<Response> answers(kTries);
  std::vector<std::string> errors(kTries);
  {
    std::latch start(kTries);
    std::vector<std::thread> threads;
    for (int i = 0; i < kTries; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          answers[i] = clients[i].post("/v1/events/" + id + "/waitlist",
                                       text(quantity_body("floor", 1 + i % 3)));
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  int created = 0;
  for (int i = 0; i < kTries; ++i) {
    ASSERT_TRUE(errors[i].empty()) << errors[i];
    if (answers[i].status == 201) {
      ++created;
    } else {
      expect_problem(answers[i], 409, "conflict");
    }
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(line_of(anon, id, "floor").waitlisted, 1);
}

TEST_F(WaitlistTest, JoinWithTheSameIdempotencyKeyAnswersTheSame) {
  const auto id = small_event(1);
  sell_out(id, {1});
  const auto path = "/v1/events/" + id + "/waitlist";
  const Headers key{{"Idempotency-Key", "join-once"}};
  const auto first = alice.post(path, text(quantity_body("floor", 2)), key);
  ASSERT_EQ(first.status, 201) << describe(first);
  const auto again = alice.post(path, text(quantity_body("floor", 2)), key);
  EXPECT_EQ(again.status, 201) << describe(again);
  EXPECT_EQ(again.body, first.body);
  expect_problem(alice.post(path, text(quantity_body("floor", 1)), key), 422,
                 "idempotency_key_reused");
  EXPECT_EQ(line_of(anon, id, "floor").waitlisted, 1);
}

TEST_F(WaitlistTest, LeavingIsHonouredAndAnOfferLeftGoesToTheNext) {
  const auto id = small_event(2);
  auto sellers = sell_out(id, {1, 1});
  Line line;
  for (const auto* name : {"A", "B", "C"}) {
    auto& w = line.add(name, buyer(name), 1);
    w.id = str(join(w.client, id, "floor", 1).at("id"));
  }
  line.check(anon, id, "floor");

  // B leaves: C moves up.
  auto& b = line.get("B");
  const auto first_b = b.id;
  ASSERT_EQ(b.client.del("/v1/waitlist/" + b.id).status, 204);
  line.leave("B");
  line.check(anon, id, "floor");
  EXPECT_EQ(entry_of(b.client, first_b).at("status"), "left");
  // Leaving twice changes nothing.
  const auto again = b.client.del("/v1/waitlist/" + first_b);
  EXPECT_NE(again.status, 204) << describe(again);
  EXPECT_GE(again.status, 400) << describe(again);
  EXPECT_EQ(entry_of(b.client, first_b).at("status"), "left");
  // B may join again, at the back.
  auto& b2 = line.add("B2", buyer("B"), 1);
  auto rejoined = join(b2.client, id, "floor", 1);
  b2.id = str(rejoined.at("id"));
  EXPECT_NE(b2.id, first_b);
  EXPECT_EQ(num(rejoined.at("position")), 3);
  line.check(anon, id, "floor");

  // A seat comes back: A's offer. A leaves while offered: the hold goes, C gets the seat.
  ASSERT_EQ(sellers[0].first.del("/v1/holds/" + sellers[0].second).status, 204);
  line.release(1);
  line.check(anon, id, "floor");
  auto& a = line.get("A");
  ASSERT_EQ(line.offered_names(), (std::vector<std::string>{"A"}));
  ASSERT_EQ(a.client.del("/v1/waitlist/" + a.id).status, 204);
  line.leave("A");
  line.check(anon, id, "floor");
  EXPECT_EQ(line.offered_names(), (std::vector<std::string>{"C"}));
  auto a_hold = hold_of(a.client, a.hold_id);
  EXPECT_NE(a_hold.at("status"), "active") << text(a_hold);
  expect_problem(a.client.post("/v1/holds/" + a.hold_id + "/checkout", kPay), 409, "hold_expired");

  auto stats = expect_status(admin.get("/v1/events/" + id + "/stats"), 200, "stats");
  const auto& w = stats.at("waitlist");
  EXPECT_EQ(num(w.at("left")), 2) << text(stats);
  EXPECT_EQ(num(w.at("offered")), 1) << text(stats);
  EXPECT_EQ(num(w.at("waiting")), 1) << text(stats);
  EXPECT_EQ(num(w.at("converted")), 0) << text(stats);
  EXPECT_EQ(num(w.at("expired")), 0) << text(stats);
  EXPECT_EQ(line_of(anon, id, "floor").waitlisted, 1);
}

TEST_F(WaitlistTest, ABuyerCannotSeeOrChangeAnotherBuyersEntry) {
  const auto id = small_event(1);
  sell_out(id, {1});
  auto entry = join(alice, id, "floor", 1);
  const auto entry_id = str(entry.at("id"));
  const auto own = entry_of(alice, entry_id);

  expect_problem(bob.get("/v1/waitlist/" + entry_id), 404, "not_found");
  expect_problem(bob.del("/v1/waitlist/" + entry_id), 404, "not_found");
  // Exactly as if it did not exist.
  expect_problem(bob.get("/v1/waitlist/wle_doesnotexist"), 404, "not_found");
  expect_problem(bob.del("/v1/waitlist/wle_doesnotexist"), 404, "not_found");
  EXPECT_EQ(anon.get("/v1/waitlist/" + entry_id).status, 401);
  EXPECT_EQ(anon.del("/v1/waitlist/" + entry_id).status, 401);
  EXPECT_EQ(anon.post("/v1/events/" + id + "/waitlist", text(quantity_body("floor", 1))).status,
            401);

  // Nothing changed; the admin reads it as alice does.
  EXPECT_EQ(entry_of(alice, entry_id), own);
  EXPECT_EQ(entry_of(admin, entry_id), own);
  EXPECT_EQ(line_of(anon, id, "floor").waitlisted, 1);
}

TEST_F(WaitlistTest, BadJoinRequestsAreRefusedAndChangeNothing) {
  const auto id = small_event(1);
  sell_out(id, {1});
  const auto path = "/v1/events/" + id + "/waitlist";
  expect_problem(alice.post(path, text(quantity_body("balcony", 1))), 404, "not_found");
  expect_problem(
      alice.post("/v1/events/evt_doesnotexist/waitlist", text(quantity_body("floor", 1))), 404,
      "not_found");
  expect_problem(alice.post(path, text(quantity_body("floor", 0))), 422, "invalid_request");
  expect_problem(alice.post(path, text(quantity_body("floor", -1))), 422, "invalid_request");
  expect_problem(alice.post(path, text(quantity_body("floor", 4))), 422, "limit_exceeded");
  expect_problem(alice.post(path, R"({"section":"floor","quantity":1,"priority":true})"), 422,
                 "invalid_request");
  expect_problem(alice.post(path, R"({"section":"floor"})"), 422, "invalid_request");
  expect_problem(alice.post(path, R"({"quantity":1})"), 422, "invalid_request");
  expect_problem(alice.post(path, R"({"section":"floor","quantity":"1"})"), 422, "invalid_request");
  expect_problem(alice.post(path, R"({"section":"floor","quantity":1.5})"), 422, "invalid_request");
  expect_problem(alice.post(path, R"([1])"), 422, "invalid_request");
  const auto broken = alice.post(path, R"({"section":"floor",)");
  EXPECT_EQ(broken.status, 400) << describe(broken);
  expect_problem(alice.get("/v1/waitlist/wle_doesnotexist"), 404, "not_found");

  EXPECT_EQ(line_of(anon, id, "floor").waitlisted, 0);
  auto stats = expect_status(admin.get("/v1/events/" + id + "/stats"), 200, "stats");
  EXPECT_EQ(num(stats.at("waitlist").at("waiting")), 0) << text(stats);
  // After all of that alice may still join, once.
  EXPECT_EQ(num(join(alice, id, "floor", 3).at("position")), 1);
}

}  // namespace
}  // namespace boxoffice::testing::api

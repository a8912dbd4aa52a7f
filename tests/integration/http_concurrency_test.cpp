// Many clients at once against the real binary (DESIGN.md, Invariants): a seat is never in two
// bookings, a general section never goes past its capacity, every availability answer adds up,
// caps hold under races, and one hold becomes at most one booking.

#include <barrier>
#include <mutex>
#include <random>
#include <thread>

#include "integration/api_fixture.h"

namespace boxoffice::testing::api {
namespace {

using ConcurrencyTest = ApiTest;

std::string holds_path(const std::string& event_id) { return "/v1/events/" + event_id + "/holds"; }

size_t bookings_for_event(HttpClient& c, const std::string& event_id) {
  const auto listed = expect_status(c.get("/v1/bookings"), 200, "GET /v1/bookings");
  size_t n = 0;
  for (const auto& b : listed.at("bookings").as_array())
    n += b.at("event_id") == json::value(event_id);
  return n;
}

/// Runs fn(i) on n threads started together; collects exceptions as failures.
template <class Fn>
void run_threads(int n, Fn fn) {
  std::barrier start(n);
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        fn(i);
      } catch (const std::exception& e) {
        std::lock_guard lock(errors_mutex);
        errors.push_back("thread " + std::to_string(i) + ": " + e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
}

TEST_F(ConcurrencyTest, RacingBuyersNeverShareASeatAndCountsAddUp) {
  // A small reserved section so exact-seat holds collide, a general section to oversell.
  const auto id = make_event_id(
      {{"max_seats_per_order", 4},
       {"max_seats_per_buyer", 1000},
       {"sections",
        json::array{
            json::object{{"id", "ga"}, {"kind", "general"}, {"capacity", 25}, {"price", 100}},
            json::object{{"id", "res"},
                         {"kind", "reserved"},
                         {"price", 200},
                         {"rows", json::array{json::object{{"row", "A"}, {"seats", 8}},
                                              json::object{{"row", "B"}, {"seats", 8}},
                                              json::object{{"row", "C"}, {"seats", 8}}}}}}}});
  constexpr int kThreads = 16;
  constexpr int kAttempts = 12;
  // Clients are made here: ServerProcess is not thread-safe.
  std::vector<std::string> tokens;
  std::vector<HttpClient> clients;
  for (int i = 0; i < kThreads; ++i) {
    tokens.push_back(server().token("racer-" + std::to_string(i) + "-" + alice_id));
    clients.push_back(client_as(tokens.back()));
  }
  auto reader_client = server().client();

  struct Outcome {
    int holds = 0, refusals = 0, released = 0;
    std::vector<json::object> bookings;  // from the checkout answers
  };
  std::vector<Outcome> outcomes(kThreads);
  std::atomic<bool> done{false};
  std::atomic<int> bad_answers{0};
  std::mutex bad_mutex;
  std::vector<std::string> bad;

  // A reader checks that every availability answer adds up while the race runs.
  std::atomic<int> reads{0};
  std::thread reader([&] {
    auto& c = reader_client;
    while (!done.load()) {
      try {
        auto a = availability_of(c, id);  // throws when available + held + sold != capacity
        if (a.at("ga").held + a.at("ga").sold > 25) throw std::runtime_error("ga oversold");
        ++reads;
      } catch (const std::exception& e) {
        std::lock_guard lock(bad_mutex);
        bad.push_back(std::string("reader: ") + e.what());
        return;
      }
    }
  });

  run_threads(kThreads, [&](int t) {
    auto& c = clients[t];
    std::mt19937 rng(static_cast<unsigned>(t * 7919 + 17));
    auto& out = outcomes[t];
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      json::object body;
      switch (rng() % 3) {
        case 0: {  // exact seats: 1-3 adjacent seats of a random row
          const char row = "ABC"[rng() % 3];
          const int n = 1 + static_cast<int>(rng() % 3);
          const int first = 1 + static_cast<int>(rng() % (9 - n));
          std::vector<std::string> seats;
          for (int s = first; s < first + n; ++s)
            seats.push_back(std::string("res:") + row + ":" + std::to_string(s));
          body = seats_body(seats);
          break;
        }
        case 1:
          body = quantity_body("res", 1 + static_cast<int64_t>(rng() % 4));
          break;
        default:
          body = quantity_body("ga", 1 + static_cast<int64_t>(rng() % 4));
          break;
      }
      const auto r = c.post(holds_path(id), text(body));
      if (r.status == 409) {
        auto code = body_of(r)["code"];
        if (code != "seats_unavailable" && code != "sold_out") {
          ++bad_answers;
          std::lock_guard lock(bad_mutex);
          bad.push_back("hold refused with " + describe(r));
        }
        ++out.refusals;
        continue;
      }
      if (r.status != 201) {
        ++bad_answers;
        std::lock_guard lock(bad_mutex);
        bad.push_back("hold answered " + describe(r));
        continue;
      }
      ++out.holds;
      const auto hold = body_of(r);
      if (rng() % 4 == 0) {  // some buyers change their mind
        const auto del = c.del("/v1/holds/" + str(hold.at("id")));
        if (del.status != 204) {
          std::lock_guard lock(bad_mutex);
          bad.push_back("release answered " + describe(del));
        }
        ++out.released;
        continue;
      }
      const auto co = c.post("/v1/holds/" + str(hold.at("id")) + "/checkout", kPay);
      if (co.status != 202) {
        std::lock_guard lock(bad_mutex);
        bad.push_back("checkout answered " + describe(co));
        continue;
      }
      auto booking = body_of(co);
      if (booking.at("seats") != hold.at("seats") ||
          booking.at("quantity") != hold.at("quantity")) {
        std::lock_guard lock(bad_mutex);
        bad.push_back("booking differs from its hold: " + text(booking) + " vs " + text(hold));
      }
      out.bookings.push_back(std::move(booking));
    }
  });
  done = true;
  reader.join();
  for (const auto& b : bad) ADD_FAILURE() << b;
  EXPECT_GT(reads.load(), 0);

  // Every booking is paid for (pm_card_ok): wait until none is pending, then count.
  for (int t = 0; t < kThreads; ++t) {
    for (const auto& b : outcomes[t].bookings) {
      EXPECT_EQ(b.at("status"), "pending_payment") << text(b);  // as checkout answered
      wait_for_booking(clients[t], str(b.at("id")), {"confirmed"});
    }
  }

  // What the buyers' own lists say, compared with what checkout answered.
  std::map<std::string, std::string> owner_of_seat;
  int64_t ga_booked = 0, res_booked = 0;
  int total_holds = 0, total_bookings = 0;
  for (int t = 0; t < kThreads; ++t) {
    total_holds += outcomes[t].holds;
    auto& c = clients[t];
    const auto listed = expect_status(c.get("/v1/bookings"), 200, "GET /v1/bookings");
    const auto& bookings = listed.at("bookings").as_array();
    EXPECT_EQ(bookings.size(), outcomes[t].bookings.size()) << "buyer " << t;
    std::set<std::string> answered;
    for (const auto& b : outcomes[t].bookings) answered.insert(str(b.at("id")));
    for (const auto& value : bookings) {
      const auto& b = value.as_object();
      EXPECT_TRUE(answered.count(str(b.at("id")))) << "listed but never answered: " << text(b);
      EXPECT_EQ(b.at("status"), "confirmed");
      EXPECT_EQ(b.at("event_id"), json::value(id));
      ++total_bookings;
      const auto quantity = num(b.at("quantity"));
      if (b.at("section") == "ga") {
        ga_booked += quantity;
        if (b.contains("seats")) {
          EXPECT_TRUE(b.at("seats").as_array().empty());
        }
      } else {
        res_booked += quantity;
        const auto seats = strings(b.at("seats"));
        EXPECT_EQ(static_cast<int64_t>(seats.size()), quantity) << text(b);
        for (const auto& seat : seats) {
          auto [it, fresh] = owner_of_seat.emplace(seat, str(b.at("id")));
          EXPECT_TRUE(fresh) << seat << " is in bookings " << it->second << " and "
                             << str(b.at("id"));
        }
      }
    }
  }
  // Not vacuous: the race really happened.
  EXPECT_GT(total_holds, 10);
  EXPECT_GT(total_bookings, 5);

  auto a = avail(id);
  EXPECT_LE(ga_booked, 25);
  // No hold is left (each was checked out or released): sold == booked, nothing held.
  EXPECT_EQ(a.at("ga"), (SectionCounts{"general", 25, 25 - ga_booked, 0, ga_booked}));
  EXPECT_EQ(a.at("res"), (SectionCounts{"reserved", 24, 24 - res_booked, 0, res_booked}));
  // The seat map agrees seat by seat.
  for (const auto& [seat, status] : seat_map(anon, id, "res")) {
    EXPECT_EQ(status, owner_of_seat.count(seat) ? "sold" : "available") << seat;
  }
  // And the admin's count of bookings matches.
  auto stats = expect_status(admin.get("/v1/events/" + id + "/stats"), 200, "stats");
  EXPECT_EQ(stats.at("bookings").at("confirmed"), total_bookings);
  EXPECT_EQ(stats.at("bookings").at("pending_payment"), 0);
  EXPECT_EQ(stats.at("revenue"), ga_booked * 100 + res_booked * 200);
}

TEST_F(ConcurrencyTest, OneBuyerRacingTheirOwnCapGetsExactlyTheCap) {
  const auto id = make_event_id({{"max_seats_per_order", 4}, {"max_seats_per_buyer", 5}});
  constexpr int kThreads = 12;
  std::atomic<int> created{0}, capped{0}, other{0};
  std::vector<HttpClient> clients;
  for (int i = 0; i < kThreads; ++i) clients.push_back(client_as(alice_token));
  run_threads(kThreads, [&](int t) {
    auto& c = clients[t];
    const auto body = t % 2 ? quantity_body("floor", 1) : quantity_body("orch", 1);
    const auto r = c.post(holds_path(id), text(body));
    if (r.status == 201) {
      ++created;
    } else if (r.status == 422 && body_of(r)["code"] == "limit_exceeded") {
      ++capped;
    } else {
      ++other;
      throw std::runtime_error(describe(r));
    }
  });
  EXPECT_EQ(created.load(), 5);
  EXPECT_EQ(capped.load(), kThreads - 5);
  EXPECT_EQ(other.load(), 0);
  auto a = avail(id);
  EXPECT_EQ(a.at("floor").held + a.at("orch").held, 5);
}

TEST_F(ConcurrencyTest, ConcurrentCheckoutsOfOneHoldMakeOneBooking) {
  const auto id = make_event_id();
  constexpr int kThreads = 8;
  std::vector<HttpClient> clients;
  for (int i = 0; i < kThreads; ++i) clients.push_back(client_as(alice_token));
  for (int round = 0; round < 3; ++round) {
    auto h = hold(alice, id, quantity_body("orch", 2));
    const auto hold_id = str(h["id"]);
    std::mutex m;
    std::set<std::string> booking_ids;
    std::atomic<int> accepted{0};
    run_threads(kThreads, [&](int t) {
      const auto r = clients[t].post("/v1/holds/" + hold_id + "/checkout", kPay);
      if (r.status == 202) {
        ++accepted;
        std::lock_guard lock(m);
        booking_ids.insert(str(body_of(r)["id"]));
        return;
      }
      // The only other acceptable answer: the first checkout is still being written.
      if (r.status != 409 || body_of(r)["code"] != "request_in_progress")
        throw std::runtime_error(describe(r));
    });
    EXPECT_GE(accepted.load(), 1);
    EXPECT_EQ(booking_ids.size(), 1u);
    // Afterwards it answers with that booking.
    auto again = checkout(alice, hold_id);
    EXPECT_TRUE(booking_ids.count(str(again["id"])));
  }
  auto listed = expect_status(alice.get("/v1/bookings"), 200, "bookings");
  EXPECT_EQ(listed.at("bookings").as_array().size(), 3u);
  const auto orch = avail(id).at("orch");
  EXPECT_EQ(orch.held + orch.sold, 6) << orch;
}

TEST_F(ConcurrencyTest, ReleaseRacingCheckoutNeverBothWin) {
  const auto id = make_event_id({{"max_seats_per_buyer", 100}});
  std::vector<HttpClient> clients;
  for (int i = 0; i < 2; ++i) clients.push_back(client_as(alice_token));
  int booked = 0, released = 0;
  for (int round = 0; round < 10; ++round) {
    auto h = hold(alice, id, quantity_body("floor", 1));
    const auto hold_id = str(h["id"]);
    Response del, co;
    run_threads(2, [&](int t) {
      if (t == 0) {
        del = clients[0].del("/v1/holds/" + hold_id);
      } else {
        co = clients[1].post("/v1/holds/" + hold_id + "/checkout", kPay);
      }
    });
    const bool deleted = del.status == 204;
    const bool checked_out = co.status == 202;
    EXPECT_NE(deleted, checked_out)
        << "DELETE: " << describe(del) << "\ncheckout: " << describe(co);
    if (!deleted) expect_problem(del, 409, "invalid_state");
    if (!checked_out) expect_problem(co, 409, "hold_expired");
    booked += checked_out;
    released += deleted;
  }
  const auto floor = avail(id).at("floor");
  EXPECT_EQ(floor.held + floor.sold, booked) << floor;
  EXPECT_EQ(bookings_for_event(alice, id), static_cast<size_t>(booked));
  EXPECT_EQ(booked + released, 10);
}

TEST_F(ConcurrencyTest, ConcurrentRequestsWithOneIdempotencyKeyHoldOnce) {
  const auto id = make_event_id();
  constexpr int kThreads = 8;
  std::mutex m;
  std::set<std::string> hold_ids;
  std::atomic<int> created{0};
  std::vector<HttpClient> clients;
  for (int i = 0; i < kThreads; ++i) clients.push_back(client_as(alice_token));
  run_threads(kThreads, [&](int t) {
    const auto r = clients[t].post(holds_path(id), text(quantity_body("floor", 2)),
                                   {{"Idempotency-Key", "once"}});
    if (r.status == 201) {
      ++created;
      std::lock_guard lock(m);
      hold_ids.insert(str(body_of(r)["id"]));
      return;
    }
    if (r.status != 409 || body_of(r)["code"] != "request_in_progress")
      throw std::runtime_error(describe(r));
  });
  EXPECT_GE(created.load(), 1);
  EXPECT_EQ(hold_ids.size(), 1u);
  EXPECT_EQ(avail(id).at("floor").held, 2);
}

}  // namespace
}  // namespace boxoffice::testing::api

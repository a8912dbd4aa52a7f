// Holds through the real binary (CONTRACT.md, Holds; README, best available, one section per
// hold, buyer caps): every way to hold, every refusal, and that a refusal holds nothing.

#include "integration/api_fixture.h"

namespace boxoffice::testing::api {
namespace {

using HoldsTest = ApiTest;

std::string holds_path(const std::string& event_id) { return "/v1/events/" + event_id + "/holds"; }

TEST_F(HoldsTest, ExactSeatsAreHeld) {
  const auto id = make_event_id();
  const auto before = now();
  const auto r = alice.post(holds_path(id), text(seats_body({"orch:A:2", "orch:A:1"})));
  ASSERT_EQ(r.status, 201) << describe(r);
  auto h = body_of(r);
  ASSERT_TRUE(h["id"].is_string());
  EXPECT_FALSE(h["id"].get_string().empty());
  EXPECT_EQ(h["event_id"], json::value(id));
  EXPECT_EQ(h["section"], "orch");
  EXPECT_EQ(sorted(strings(h["seats"])), (std::vector<std::string>{"orch:A:1", "orch:A:2"}));
  EXPECT_EQ(h["quantity"], 2);
  EXPECT_EQ(h["status"], "active");
  EXPECT_EQ(h["amount"], 20000);
  EXPECT_EQ(h["currency"], "USD");
  const auto expires = time_of(h["expires_at"]);  // hold_ttl_seconds defaults to 600
  EXPECT_GE(expires, before + 595s);
  EXPECT_LE(expires, now() + 605s);

  auto a = avail(id);
  EXPECT_EQ(a["orch"], (SectionCounts{"reserved", 20, 18, 2, 0}));
  EXPECT_EQ(a["floor"], (SectionCounts{"general", 10, 10, 0, 0}));
  auto seats = seat_map(anon, id, "orch");
  EXPECT_EQ(seats["orch:A:1"], "held");
  EXPECT_EQ(seats["orch:A:2"], "held");
  EXPECT_EQ(seats["orch:A:3"], "available");

  // GET returns the same hold.
  const auto got = alice.get("/v1/holds/" + str(h["id"]));
  ASSERT_EQ(got.status, 200) << describe(got);
  EXPECT_EQ(body_of(got), h);
}

TEST_F(HoldsTest, GeneralAdmissionHoldsAQuantityWithoutSeatIds) {
  const auto id = make_event_id();
  auto h = hold(alice, id, quantity_body("floor", 3));
  EXPECT_EQ(h["section"], "floor");
  EXPECT_EQ(h["quantity"], 3);
  EXPECT_EQ(h["amount"], 15000);
  EXPECT_EQ(h["status"], "active");
  if (h.contains("seats")) {
    EXPECT_TRUE(h["seats"].as_array().empty()) << text(h);
  }
  EXPECT_EQ(avail(id)["floor"], (SectionCounts{"general", 10, 7, 3, 0}));
  EXPECT_EQ(avail(id)["orch"], (SectionCounts{"reserved", 20, 20, 0, 0}));
}

TEST_F(HoldsTest, BestAvailablePicksTheCentreOfTheFrontmostRow) {
  const auto id = make_event_id();
  // Row A has 10 seats: the run of 4 nearest its centre is 4..7.
  auto h = hold(alice, id, quantity_body("orch", 4));
  EXPECT_EQ(sorted(strings(h["seats"])),
            (std::vector<std::string>{"orch:A:4", "orch:A:5", "orch:A:6", "orch:A:7"}));
  EXPECT_EQ(h["quantity"], 4);
  EXPECT_EQ(h["amount"], 40000);
  // Row A now has runs 1..3 and 8..10: no 4 adjacent, so row B.
  h = hold(bob, id, quantity_body("orch", 4));
  EXPECT_EQ(sorted(strings(h["seats"])),
            (std::vector<std::string>{"orch:B:4", "orch:B:5", "orch:B:6", "orch:B:7"}));
  // 3 fit in row A twice, equally far from the centre: the lower numbers win.
  h = hold(alice, id, quantity_body("orch", 3));
  EXPECT_EQ(sorted(strings(h["seats"])),
            (std::vector<std::string>{"orch:A:1", "orch:A:2", "orch:A:3"}));
  EXPECT_EQ(avail(id)["orch"], (SectionCounts{"reserved", 20, 9, 11, 0}));
}

TEST_F(HoldsTest, BestAvailableFallsBackToTheFrontmostFreeSeats) {
  const auto id = make_event_id(
      {{"sections", json::array{json::object{
                        {"id", "box"},
                        {"kind", "reserved"},
                        {"price", 700},
                        {"rows", json::array{json::object{{"row", "A"}, {"seats", 3}},
                                             json::object{{"row", "B"}, {"seats", 3}}}}}}}});
  hold(bob, id, seats_body({"box:A:2"}));
  hold(bob, id, seats_body({"box:B:2"}));
  // No row has 3 adjacent free seats: the 3 free seats nearest the front.
  auto h = hold(alice, id, quantity_body("box", 3));
  EXPECT_EQ(sorted(strings(h["seats"])),
            (std::vector<std::string>{"box:A:1", "box:A:3", "box:B:1"}));
  EXPECT_EQ(h["amount"], 2100);
  EXPECT_EQ(avail(id)["box"], (SectionCounts{"reserved", 6, 1, 5, 0}));
  EXPECT_EQ(seat_map(anon, id, "box")["box:B:3"], "available");
}

TEST_F(HoldsTest, ExpiryFollowsTheEventsHoldTtl) {
  const auto id = make_event_id({{"hold_ttl_seconds", 120}});
  const auto before = now();
  auto h = hold(alice, id, quantity_body("floor", 1));
  const auto expires = time_of(h["expires_at"]);
  EXPECT_GE(expires, before + 115s);
  EXPECT_LE(expires, now() + 125s);
}

TEST_F(HoldsTest, DeleteFreesTheSeats) {
  const auto id = make_event_id();
  auto h = hold(alice, id, seats_body({"orch:B:1", "orch:B:2"}));
  auto g = hold(alice, id, quantity_body("floor", 2));
  const auto hold_id = str(h["id"]);

  auto r = alice.del("/v1/holds/" + hold_id);
  EXPECT_EQ(r.status, 204) << describe(r);
  EXPECT_TRUE(r.body.empty()) << r.body;
  r = alice.del("/v1/holds/" + str(g["id"]));
  EXPECT_EQ(r.status, 204) << describe(r);

  auto a = avail(id);
  EXPECT_EQ(a["orch"], (SectionCounts{"reserved", 20, 20, 0, 0}));
  EXPECT_EQ(a["floor"], (SectionCounts{"general", 10, 10, 0, 0}));
  EXPECT_EQ(seat_map(anon, id, "orch")["orch:B:1"], "available");

  const auto got = alice.get("/v1/holds/" + hold_id);
  ASSERT_EQ(got.status, 200) << describe(got);
  EXPECT_EQ(body_of(got)["status"], "released");

  // Releasing twice is refused and changes nothing.
  expect_problem(alice.del("/v1/holds/" + hold_id), 409, "invalid_state");
  EXPECT_EQ(avail(id), a);

  // The seats can be held again, by anyone.
  hold(bob, id, seats_body({"orch:B:1", "orch:B:2"}));
}

TEST_F(HoldsTest, TakenSeatsAreRefusedWithTheirIds) {
  const auto id = make_event_id();
  hold(alice, id, seats_body({"orch:A:1", "orch:A:2"}));
  const auto before = avail(id);

  const auto r = bob.post(holds_path(id), text(seats_body({"orch:A:3", "orch:A:2", "orch:A:1"})));
  auto problem = expect_problem(r, 409, "seats_unavailable");
  ASSERT_TRUE(problem["unavailable"].is_array()) << describe(r);
  EXPECT_EQ(sorted(strings(problem["unavailable"])),
            (std::vector<std::string>{"orch:A:1", "orch:A:2"}));

  // All or nothing: the free seat of the request was not taken.
  EXPECT_EQ(avail(id), before);
  EXPECT_EQ(seat_map(anon, id, "orch")["orch:A:3"], "available");
  // Alice's own seats are unavailable to her too.
  expect_problem(alice.post(holds_path(id), text(seats_body({"orch:A:1"}))), 409,
                 "seats_unavailable");
  EXPECT_EQ(avail(id), before);
}

TEST_F(HoldsTest, SoldOutPointsToTheWaitlist) {
  const auto id = make_event_id();
  hold(alice, id, quantity_body("floor", 8));
  const auto before = avail(id);
  const auto r = bob.post(holds_path(id), text(quantity_body("floor", 3)));
  auto problem = expect_problem(r, 409, "sold_out");
  EXPECT_EQ(problem["waitlist"], json::value("/v1/events/" + id + "/waitlist")) << describe(r);
  EXPECT_EQ(avail(id), before);
  // What is left can still be held.
  hold(bob, id, quantity_body("floor", 2));
  EXPECT_EQ(avail(id)["floor"], (SectionCounts{"general", 10, 0, 10, 0}));
  expect_problem(bob.post(holds_path(id), text(quantity_body("floor", 1))), 409, "sold_out");
}

TEST_F(HoldsTest, BestAvailableInAFullReservedSectionIsSoldOut) {
  const auto id = make_event_id(
      {{"sections", json::array{json::object{
                        {"id", "box"},
                        {"kind", "reserved"},
                        {"price", 700},
                        {"rows", json::array{json::object{{"row", "A"}, {"seats", 3}}}}}}}});
  hold(alice, id, quantity_body("box", 2));
  const auto before = avail(id);
  auto problem =
      expect_problem(bob.post(holds_path(id), text(quantity_body("box", 2))), 409, "sold_out");
  EXPECT_EQ(problem["waitlist"], json::value("/v1/events/" + id + "/waitlist"));
  EXPECT_EQ(avail(id), before);
}

TEST_F(HoldsTest, SaleNotOpenYet) {
  const auto id = make_event_id({{"sale_opens_at", "2030-01-01T00:00:00Z"}});
  const auto before = avail(id);
  expect_problem(alice.post(holds_path(id), text(quantity_body("floor", 1))), 403, "sale_not_open");
  expect_problem(alice.post(holds_path(id), text(seats_body({"orch:A:1"}))), 403, "sale_not_open");
  expect_problem(alice.post(holds_path(id), text(quantity_body("orch", 2))), 403, "sale_not_open");
  EXPECT_EQ(avail(id), before);
  // The event itself is public already.
  EXPECT_EQ(anon.get("/v1/events/" + id).status, 200);
}

TEST_F(HoldsTest, OrderCap) {
  const auto id = make_event_id({{"max_seats_per_order", 4}, {"max_seats_per_buyer", 100}});
  const auto before = avail(id);
  expect_problem(alice.post(holds_path(id), text(quantity_body("floor", 5))), 422,
                 "limit_exceeded");
  expect_problem(alice.post(holds_path(id), text(quantity_body("orch", 5))), 422, "limit_exceeded");
  expect_problem(
      alice.post(holds_path(id),
                 text(seats_body({"orch:A:1", "orch:A:2", "orch:A:3", "orch:A:4", "orch:A:5"}))),
      422, "limit_exceeded");
  EXPECT_EQ(avail(id), before);
  hold(alice, id, quantity_body("floor", 4));
  hold(alice, id, seats_body({"orch:A:1", "orch:A:2", "orch:A:3", "orch:A:4"}));
}

TEST_F(HoldsTest, BuyerCapCountsEveryHoldAndBookingOfTheEvent) {
  const auto id = make_event_id({{"max_seats_per_order", 4}, {"max_seats_per_buyer", 6}});
  auto first = hold(alice, id, quantity_body("floor", 4));
  const auto before = avail(id);
  // 4 held + 3 > 6, across sections too.
  expect_problem(alice.post(holds_path(id), text(quantity_body("floor", 3))), 422,
                 "limit_exceeded");
  expect_problem(alice.post(holds_path(id), text(seats_body({"orch:A:1", "orch:A:2", "orch:A:3"}))),
                 422, "limit_exceeded");
  EXPECT_EQ(avail(id), before);
  // Exactly up to the cap is fine.
  auto second = hold(alice, id, quantity_body("orch", 2));
  expect_problem(alice.post(holds_path(id), text(quantity_body("floor", 1))), 422,
                 "limit_exceeded");
  // Another buyer has their own cap.
  hold(bob, id, quantity_body("floor", 4));
  // A booking still counts ...
  checkout(alice, str(second["id"]));
  expect_problem(alice.post(holds_path(id), text(quantity_body("floor", 1))), 422,
                 "limit_exceeded");
  // ... a released hold no longer does.
  ASSERT_EQ(alice.del("/v1/holds/" + str(first["id"])).status, 204);
  hold(alice, id, quantity_body("floor", 2));
  hold(alice, id, seats_body({"orch:B:1", "orch:B:2"}));
  expect_problem(alice.post(holds_path(id), text(quantity_body("floor", 1))), 422,
                 "limit_exceeded");
  // The cap is per event.
  const auto other = make_event_id({{"max_seats_per_order", 4}, {"max_seats_per_buyer", 6}});
  hold(alice, other, quantity_body("floor", 4));
}

TEST_F(HoldsTest, DefaultBuyerCapIsTheOrderCap) {
  const auto id = make_event_id({{"max_seats_per_order", 3}});
  hold(alice, id, quantity_body("floor", 3));
  const auto before = avail(id);
  expect_problem(alice.post(holds_path(id), text(quantity_body("floor", 1))), 422,
                 "limit_exceeded");
  EXPECT_EQ(avail(id), before);
}

TEST_F(HoldsTest, UnknownEventSectionOrSeatIs404) {
  const auto id = make_event_id();
  const auto before = avail(id);
  expect_problem(alice.post(holds_path("evt_does_not_exist"), text(quantity_body("floor", 1))), 404,
                 "not_found");
  expect_problem(alice.post(holds_path(id), text(quantity_body("balcony", 1))), 404, "not_found");
  for (const char* seat :
       {"orch:A:11", "orch:A:0", "orch:A:01", "orch:A:-1", "orch:A:1x", "orch:C:1", "balcony:A:1",
        "floor:A:1", "orch:A", "orch", "ORCH:A:1", "orch:a:1"}) {
    SCOPED_TRACE(seat);
    expect_problem(alice.post(holds_path(id), text(seats_body({"orch:A:5", seat}))), 404,
                   "not_found");
  }
  EXPECT_EQ(avail(id), before);
  expect_problem(alice.get("/v1/holds/hld_does_not_exist"), 404, "not_found");
  expect_problem(alice.del("/v1/holds/hld_does_not_exist"), 404, "not_found");
}

TEST_F(HoldsTest, InvalidHoldRequestsAre422AndHoldNothing) {
  const auto id = make_event_id(
      {{"sections",
        json::array{
            json::object{{"id", "floor"}, {"kind", "general"}, {"capacity", 10}, {"price", 1}},
            json::object{{"id", "orch"},
                         {"kind", "reserved"},
                         {"price", 1},
                         {"rows", json::array{json::object{{"row", "A"}, {"seats", 10}}}}},
            json::object{{"id", "balc"},
                         {"kind", "reserved"},
                         {"price", 1},
                         {"rows", json::array{json::object{{"row", "A"}, {"seats", 10}}}}}}}});
  const auto before = avail(id);
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"empty object", "{}"},
      {"no seats", R"({"seats": []})"},
      {"seats not an array", R"({"seats": "orch:A:1"})"},
      {"seat not a string", R"({"seats": [1]})"},
      {"empty seat id", R"({"seats": [""]})"},
      {"null seat", R"({"seats": [null]})"},
      {"seat listed twice", R"({"seats": ["orch:A:1", "orch:A:1"]})"},
      {"two sections", R"({"seats": ["orch:A:1", "balc:A:1"]})"},
      {"seats and section", R"({"seats": ["orch:A:1"], "section": "orch"})"},
      {"unknown field", R"({"section": "floor", "quantity": 1, "note": "hi"})"},
      {"missing quantity", R"({"section": "floor"})"},
      {"missing section", R"({"quantity": 1})"},
      {"quantity 0", R"({"section": "floor", "quantity": 0})"},
      {"negative quantity", R"({"section": "floor", "quantity": -1})"},
      {"quantity as string", R"({"section": "floor", "quantity": "2"})"},
      {"fractional quantity", R"({"section": "floor", "quantity": 2.5})"},
      {"boolean quantity", R"({"section": "floor", "quantity": true})"},
      {"quantity 101", R"({"section": "floor", "quantity": 101})"},
      {"quantity 1e30", R"({"section": "floor", "quantity": 1e30})"},
      {"quantity beyond 64 bits", R"({"section": "floor", "quantity": 99999999999999999999})"},
      {"quantity 2^63", R"({"section": "floor", "quantity": 9223372036854775808})"},
      {"quantity -2^63", R"({"section": "floor", "quantity": -9223372036854775808})"},
      {"section not a string", R"({"section": 5, "quantity": 1})"},
      {"101 seats",
       [] {
         json::array seats;
         for (int i = 0; i < 101; ++i) seats.emplace_back("orch:A:" + std::to_string(i % 10 + 1));
         return text(json::object{{"seats", seats}});
       }()},
      {"not an object", "[]"},
      {"a string", R"("floor")"},
  };
  for (const auto& [what, body] : cases) {
    SCOPED_TRACE(what);
    auto problem = expect_problem(alice.post(holds_path(id), body), 422, "invalid_request");
    EXPECT_FALSE(detail_of(problem).empty());
  }
  auto unknown = expect_problem(
      alice.post(holds_path(id), R"({"section": "floor", "quantity": 1, "note": "hi"})"), 422,
      "invalid_request");
  EXPECT_NE(detail_of(unknown).find("note"), std::string::npos) << detail_of(unknown);
  for (const char* body :
       {"{", "", "{\"section\": \"floor\", \"quantity\": 1,}", "section=floor"}) {
    SCOPED_TRACE(body);
    expect_problem(alice.post(holds_path(id), body, {{"Content-Type", "application/json"}}), 400,
                   "malformed_request");
  }
  expect_problem(
      alice.post(holds_path(id), text(quantity_body("floor", 1)), {{"Content-Type", "text/plain"}}),
      415, "unsupported_media_type");
  EXPECT_EQ(avail(id), before);
  // And the buyer's cap was not consumed by any of it.
  hold(alice, id, quantity_body("floor", 8));
}

}  // namespace
}  // namespace boxoffice::testing::api

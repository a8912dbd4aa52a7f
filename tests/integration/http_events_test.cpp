// Events, availability, seat maps and stats through the real binary (CONTRACT.md, Events).

#include <thread>

#include "integration/api_fixture.h"

namespace boxoffice::testing::api {
namespace {

using EventsTest = ApiTest;

size_t event_count(HttpClient& c) {
  auto body = expect_status(c.get("/v1/events"), 200, "GET /v1/events");
  return body.at("events").as_array().size();
}

TEST_F(EventsTest, CreateFillsDefaultsAndReturnsTheEvent) {
  const auto before = now();
  const auto r = admin.post("/v1/events", text(event_body()));
  ASSERT_EQ(r.status, 201) << describe(r);
  EXPECT_EQ(r.header("Content-Type").rfind("application/json", 0), 0u) << r.header("Content-Type");
  auto e = body_of(r);
  ASSERT_TRUE(e["id"].is_string());
  EXPECT_FALSE(e["id"].get_string().empty());
  EXPECT_EQ(e["name"], "Test night");
  EXPECT_EQ(time_of(e["starts_at"]), *parse_rfc3339("2031-06-01T19:00:00Z"));
  EXPECT_EQ(e["currency"], "USD");
  // sale_opens_at defaults to now
  const auto opens = time_of(e["sale_opens_at"]);
  EXPECT_GE(opens, before - 5s);
  EXPECT_LE(opens, now() + 5s);
  EXPECT_EQ(e["hold_ttl_seconds"], 600);
  EXPECT_EQ(e["max_seats_per_order"], 8);
  EXPECT_EQ(e["max_seats_per_buyer"], 8);
  const auto& sections = e["sections"].as_array();
  ASSERT_EQ(sections.size(), 2u);
  EXPECT_EQ(sections[0].at("id"), "floor");
  EXPECT_EQ(sections[0].at("kind"), "general");
  EXPECT_EQ(sections[0].at("capacity"), 10);
  EXPECT_EQ(sections[0].at("price"), 5000);
  EXPECT_EQ(sections[1].at("id"), "orch");
  EXPECT_EQ(sections[1].at("kind"), "reserved");
  EXPECT_EQ(sections[1].at("capacity"), 20);  // the sum of its rows
  EXPECT_EQ(sections[1].at("price"), 10000);
  EXPECT_EQ(sections[1].at("rows").as_array().size(), 2u);
}

TEST_F(EventsTest, BuyerCapDefaultsToTheGivenOrderCap) {
  auto e = make_event({{"max_seats_per_order", 3}});
  EXPECT_EQ(e["max_seats_per_order"], 3);
  EXPECT_EQ(e["max_seats_per_buyer"], 3);
}

// null for an optional field: refused (strict), or the field's default — never another value.
TEST_F(EventsTest, NullOptionalFieldsMeanTheirDefaults) {
  const auto r = admin.post("/v1/events", text(event_body({{"hold_ttl_seconds", nullptr},
                                                           {"max_seats_per_order", 3},
                                                           {"max_seats_per_buyer", nullptr}})));
  if (r.status == 422) {
    expect_problem(r, 422, "invalid_request");
    return;
  }
  ASSERT_EQ(r.status, 201) << describe(r);
  auto e = body_of(r);
  EXPECT_EQ(e["hold_ttl_seconds"], 600);
  EXPECT_EQ(e["max_seats_per_order"], 3);
  EXPECT_EQ(e["max_seats_per_buyer"], 3)
      << "max_seats_per_buyer: null should default to max_seats_per_order";
}

TEST_F(EventsTest, KeepsGivenSettings) {
  json::array sections{
      json::object{{"id", "pit"}, {"kind", "general"}, {"capacity", 7}, {"price", 0}},
      json::object{{"id", "balc"},
                   {"kind", "reserved"},
                   {"price", 123},
                   {"capacity", 5},  // given, and equal to the sum of the rows: accepted
                   {"rows", json::array{json::object{{"row", "R1"}, {"seats", 2}},
                                        json::object{{"row", "R2"}, {"seats", 3}}}}}};
  auto e = make_event({{"currency", "EUR"},
                       {"sale_opens_at", "2026-01-02T03:04:05Z"},
                       {"hold_ttl_seconds", 300},
                       {"max_seats_per_order", 6},
                       {"max_seats_per_buyer", 12},
                       {"sections", sections}});
  EXPECT_EQ(e["currency"], "EUR");
  EXPECT_EQ(time_of(e["sale_opens_at"]), *parse_rfc3339("2026-01-02T03:04:05Z"));
  EXPECT_EQ(e["hold_ttl_seconds"], 300);
  EXPECT_EQ(e["max_seats_per_order"], 6);
  EXPECT_EQ(e["max_seats_per_buyer"], 12);
  EXPECT_EQ(e["sections"].at(0).at("capacity"), 7);
  EXPECT_EQ(e["sections"].at(1).at("capacity"), 5);
  // A section without a name is named after its id.
  EXPECT_EQ(e["sections"].at(0).at("name"), "pit");

  const auto id = str(e["id"]);
  auto a = avail(id);
  EXPECT_EQ(a["pit"], (SectionCounts{"general", 7, 7, 0, 0}));
  EXPECT_EQ(a["balc"], (SectionCounts{"reserved", 5, 5, 0, 0}));
  auto seats = seat_map(anon, id, "balc");
  EXPECT_EQ(seats.size(), 5u);
  EXPECT_TRUE(seats.count("balc:R1:2"));
  EXPECT_TRUE(seats.count("balc:R2:3"));
}

TEST_F(EventsTest, GetAndListEvents) {
  auto created = make_event({{"name", "Listed night"}});
  const auto id = str(created["id"]);

  auto r = anon.get("/v1/events/" + id);
  ASSERT_EQ(r.status, 200) << describe(r);
  EXPECT_EQ(body_of(r), created);

  r = anon.get("/v1/events");
  ASSERT_EQ(r.status, 200) << describe(r);
  bool found = false;
  const auto listed = body_of(r);
  for (const auto& e : listed.at("events").as_array()) {
    if (e.at("id") == json::value(id)) {
      found = true;
      EXPECT_EQ(e.as_object(), created);
    }
  }
  EXPECT_TRUE(found) << r.body.substr(0, 2000);

  expect_problem(anon.get("/v1/events/evt_does_not_exist"), 404, "not_found");
  expect_problem(anon.get("/v1/events/evt_does_not_exist/availability"), 404, "not_found");
  expect_problem(anon.get("/v1/events/evt_does_not_exist/sections/orch/seats"), 404, "not_found");
}

TEST_F(EventsTest, AvailabilityOfANewEvent) {
  const auto id = make_event_id();
  const auto r = anon.get("/v1/events/" + id + "/availability");
  ASSERT_EQ(r.status, 200) << describe(r);
  auto body = body_of(r);
  EXPECT_EQ(body["event_id"], json::value(id));
  const auto& sections = body["sections"].as_array();
  ASSERT_EQ(sections.size(), 2u);
  for (const auto& s : sections) {
    const auto& o = s.as_object();
    for (auto key : {"id", "kind", "capacity", "available", "held", "sold", "waitlisted"}) {
      EXPECT_TRUE(o.contains(key)) << key << " missing in " << text(s);
    }
    EXPECT_EQ(o.at("available"), o.at("capacity"));
    EXPECT_EQ(o.at("held"), 0);
    EXPECT_EQ(o.at("sold"), 0);
    EXPECT_EQ(o.at("waitlisted"), 0);
  }
  EXPECT_EQ(sections[0].at("id"), "floor");
  EXPECT_EQ(sections[0].at("capacity"), 10);
  EXPECT_EQ(sections[1].at("id"), "orch");
  EXPECT_EQ(sections[1].at("capacity"), 20);
}

TEST_F(EventsTest, SeatMapListsEverySeatAndFiltersByRow) {
  const auto id = make_event_id();
  auto seats = seat_map(anon, id, "orch");
  ASSERT_EQ(seats.size(), 20u);
  for (const char* row : {"A", "B"}) {
    for (int n = 1; n <= 10; ++n) {
      const auto seat = std::string("orch:") + row + ":" + std::to_string(n);
      EXPECT_EQ(seats[seat], "available") << seat;
    }
  }
  // Seats come in order: row A first, lower numbers first.
  const auto r = anon.get("/v1/events/" + id + "/sections/orch/seats");
  const auto seat_list = body_of(r);
  const auto& list = seat_list.at("seats").as_array();
  EXPECT_EQ(list.front().at("id"), "orch:A:1");
  EXPECT_EQ(list.back().at("id"), "orch:B:10");

  auto row_b = seat_map(anon, id, "orch", "?row=B");
  ASSERT_EQ(row_b.size(), 10u);
  for (const auto& [seat, status] : row_b) EXPECT_EQ(seat.rfind("orch:B:", 0), 0u) << seat;

  // Held seats show as held.
  hold(alice, id, seats_body({"orch:B:3", "orch:B:4"}));
  row_b = seat_map(anon, id, "orch", "?row=B");
  EXPECT_EQ(row_b["orch:B:3"], "held");
  EXPECT_EQ(row_b["orch:B:4"], "held");
  EXPECT_EQ(row_b["orch:B:5"], "available");
  EXPECT_EQ(seat_map(anon, id, "orch", "?row=A")["orch:A:3"], "available");

  expect_problem(anon.get("/v1/events/" + id + "/sections/orch/seats?row=Z"), 404, "not_found");
  expect_problem(anon.get("/v1/events/" + id + "/sections/balcony/seats"), 404, "not_found");
  // A general section has no seat map: a clear client error, not a crash or an empty 200.
  const auto general = anon.get("/v1/events/" + id + "/sections/floor/seats");
  EXPECT_TRUE(general.status == 404 || general.status == 422) << describe(general);
  EXPECT_EQ(general.header("Content-Type").rfind("application/problem+json", 0), 0u);
}

TEST_F(EventsTest, StatsAreForAdminsOnly) {
  const auto id = make_event_id();
  const auto path = "/v1/events/" + id + "/stats";
  expect_problem(anon.get(path), 401, "unauthorized");
  EXPECT_FALSE(anon.get(path).header("WWW-Authenticate").empty());
  expect_problem(alice.get(path), 403, "forbidden");

  auto h = hold(alice, id, seats_body({"orch:A:1", "orch:A:2"}));
  auto b = checkout(alice, str(h["id"]));
  wait_for_booking(alice, str(b["id"]), {"confirmed"});
  hold(bob, id, quantity_body("floor", 3));

  const auto r = admin.get(path);
  ASSERT_EQ(r.status, 200) << describe(r);
  auto stats = body_of(r);
  EXPECT_EQ(stats["event_id"], json::value(id));
  const auto& sections = stats["sections"].as_array();
  ASSERT_EQ(sections.size(), 2u);
  EXPECT_EQ(sections[0].at("id"), "floor");
  EXPECT_EQ(sections[0].at("held"), 3);
  EXPECT_EQ(sections[0].at("sold"), 0);
  EXPECT_EQ(sections[1].at("id"), "orch");
  EXPECT_EQ(sections[1].at("held"), 0);
  EXPECT_EQ(sections[1].at("sold"), 2);
  ASSERT_TRUE(stats["bookings"].is_object()) << r.body;
  EXPECT_EQ(stats["bookings"].at("pending_payment"), 0);
  EXPECT_EQ(stats["bookings"].at("confirmed"), 1);
  EXPECT_EQ(stats["bookings"].at("payment_failed"), 0);
  EXPECT_EQ(stats["revenue"], 20000);

  expect_problem(admin.get("/v1/events/evt_does_not_exist/stats"), 404, "not_found");
}

// CONTRACT.md, Events: stats are "availability plus bookings by status, revenue, waitlist counts
// by status, payments (attempts, declines, dead-lettered)". The payment pipeline runs in this
// build, so its counts belong in the answer.
TEST_F(EventsTest, StatsCountPayments) {
  const auto id = make_event_id();
  auto ok = checkout(alice, str(hold(alice, id, quantity_body("floor", 1))["id"]));
  const auto declined =
      alice.post("/v1/holds/" + str(hold(alice, id, quantity_body("floor", 1))["id"]) + "/checkout",
                 R"({"payment_method":"pm_card_declined"})");
  ASSERT_EQ(declined.status, 202) << describe(declined);
  wait_for_booking(alice, str(ok["id"]), {"confirmed"});
  wait_for_booking(alice, str(body_of(declined)["id"]), {"payment_failed"});
  const auto r = admin.get("/v1/events/" + id + "/stats");
  ASSERT_EQ(r.status, 200) << describe(r);
  auto stats = body_of(r);
  EXPECT_EQ(stats["bookings"].at("confirmed"), 1);
  EXPECT_EQ(stats["bookings"].at("payment_failed"), 1);
  ASSERT_TRUE(stats.contains("payments") && stats["payments"].is_object())
      << "no \"payments\" object in the stats: " << r.body;
  const auto& payments = stats["payments"].as_object();
  for (const auto& field : payments) {
    EXPECT_TRUE(field.value().is_number()) << field.key() << " in " << r.body;
  }
  ASSERT_TRUE(payments.contains("attempts") && payments.contains("declines") &&
              payments.contains("dead_lettered"))
      << r.body;
  EXPECT_GE(num(payments.at("attempts")), 2) << r.body;  // at least one per booking
  EXPECT_EQ(payments.at("declines"), 1) << r.body;
  EXPECT_EQ(payments.at("dead_lettered"), 0) << r.body;
}

TEST_F(EventsTest, OnlyAdminsCreateEvents) {
  const auto before = event_count(anon);
  auto r = anon.post("/v1/events", text(event_body()));
  expect_problem(r, 401, "unauthorized");
  EXPECT_EQ(r.header("WWW-Authenticate").rfind("Bearer", 0), 0u) << r.header("WWW-Authenticate");
  expect_problem(alice.post("/v1/events", text(event_body())), 403, "forbidden");
  EXPECT_EQ(event_count(anon), before);
}

TEST_F(EventsTest, ContentTypeMustBeJson) {
  const auto before = event_count(anon);
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "application/xml",
                           "application/jsonx", ""}) {
    const auto r = admin.post("/v1/events", text(event_body()), {{"Content-Type", type}});
    SCOPED_TRACE(type);
    expect_problem(r, 415, "unsupported_media_type");
  }
  EXPECT_EQ(event_count(anon), before);
  // Parameters and case do not matter.
  const auto r = admin.post("/v1/events", text(event_body()),
                            {{"Content-Type", "Application/JSON; charset=utf-8"}});
  EXPECT_EQ(r.status, 201) << describe(r);
}

TEST_F(EventsTest, MalformedJsonIs400AndCreatesNothing) {
  const auto before = event_count(anon);
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  for (const std::string& body :
       {std::string("{"), std::string("{\"name\": \"x\",}"), std::string("{\"name\": 'x'}"),
        std::string("{} trailing"), std::string("{\"name\": NaN}"), std::string("not json"),
        std::string("{\"name\": \"bad \xff utf8\"}"), std::string("{/* comment */}"), deep}) {
    SCOPED_TRACE(body.substr(0, 60));
    expect_problem(admin.post("/v1/events", body), 400, "malformed_request");
  }
  // An empty body is no JSON either.
  expect_problem(admin.post("/v1/events", "", {{"Content-Type", "application/json"}}), 400,
                 "malformed_request");
  EXPECT_EQ(event_count(anon), before);
}

TEST_F(EventsTest, JsonThatIsNotAnObjectIs422) {
  const auto before = event_count(anon);
  for (const char* body : {"[]", "42", "\"event\"", "null", "true", "[{\"name\": \"x\"}]"}) {
    SCOPED_TRACE(body);
    expect_problem(admin.post("/v1/events", body), 422, "invalid_request");
  }
  EXPECT_EQ(event_count(anon), before);
}

struct BadEvent {
  const char* what;
  json::object body;
  const char* detail_mentions;  // a word the detail must contain
};

json::object with_sections(json::array sections) {
  return event_body({{"sections", std::move(sections)}});
}
json::object general(std::string id, int64_t capacity) {
  return {{"id", std::move(id)}, {"kind", "general"}, {"capacity", capacity}, {"price", 100}};
}
json::object reserved(std::string id, json::array rows) {
  return {{"id", std::move(id)}, {"kind", "reserved"}, {"price", 100}, {"rows", std::move(rows)}};
}
json::object row(std::string name, int64_t seats) {
  return {{"row", std::move(name)}, {"seats", seats}};
}

json::object without(json::object body, std::string_view key) {
  body.erase(key);
  return body;
}

TEST_F(EventsTest, InvalidEventsAre422AndCreateNothing) {
  const auto huge = json::parse("99999999999999999999");  // beyond 64 bits
  std::vector<BadEvent> cases = {
      {"unknown top-level field", event_body({{"colour", "red"}}), "colour"},
      {"unknown section field",
       with_sections({json::object{
           {"id", "floor"}, {"kind", "general"}, {"capacity", 5}, {"price", 1}, {"vip", true}}}),
       "vip"},
      {"unknown row field",
       with_sections({reserved("orch", {json::object{{"row", "A"}, {"seats", 2}, {"aisle", 1}}})}),
       "aisle"},
      {"missing name", without(event_body(), "name"), "name"},
      {"missing starts_at", without(event_body(), "starts_at"), "starts_at"},
      {"missing currency", without(event_body(), "currency"), "currency"},
      {"missing sections", without(event_body(), "sections"), "sections"},
      {"no sections", with_sections({}), "section"},
      {"name not a string", event_body({{"name", 5}}), "name"},
      {"empty name", event_body({{"name", ""}}), "name"},
      {"name too long", event_body({{"name", std::string(201, 'n')}}), "name"},
      {"lower-case currency", event_body({{"currency", "usd"}}), "currency"},
      {"two-letter currency", event_body({{"currency", "US"}}), "currency"},
      {"four-letter currency", event_body({{"currency", "USDX"}}), "currency"},
      {"numeric currency", event_body({{"currency", 840}}), "currency"},
      {"impossible date", event_body({{"starts_at", "2027-02-30T19:00:00Z"}}), "starts_at"},
      {"date without time", event_body({{"starts_at", "2027-06-01"}}), "starts_at"},
      {"hour 25", event_body({{"starts_at", "2027-06-01T25:00:00Z"}}), "starts_at"},
      {"no zone", event_body({{"starts_at", "2027-06-01T19:00:00"}}), "starts_at"},
      {"words for a time", event_body({{"starts_at", "tomorrow"}}), "starts_at"},
      {"unix time", event_body({{"starts_at", 1800000000}}), "starts_at"},
      {"bad sale_opens_at", event_body({{"sale_opens_at", "yesterday"}}), "sale_opens_at"},
      {"ttl below 10", event_body({{"hold_ttl_seconds", 9}}), "hold_ttl_seconds"},
      {"ttl above 3600", event_body({{"hold_ttl_seconds", 3601}}), "hold_ttl_seconds"},
      {"negative ttl", event_body({{"hold_ttl_seconds", -1}}), "hold_ttl_seconds"},
      {"ttl as string", event_body({{"hold_ttl_seconds", "600"}}), "hold_ttl_seconds"},
      {"fractional ttl", event_body({{"hold_ttl_seconds", 600.5}}), "hold_ttl_seconds"},
      {"ttl 1e30", event_body({{"hold_ttl_seconds", 1e30}}), "hold_ttl_seconds"},
      {"ttl beyond 64 bits", event_body({{"hold_ttl_seconds", huge}}), "hold_ttl_seconds"},
      {"order cap 0", event_body({{"max_seats_per_order", 0}}), "max_seats_per_order"},
      {"order cap 101", event_body({{"max_seats_per_order", 101}}), "max_seats_per_order"},
      {"negative order cap", event_body({{"max_seats_per_order", -3}}), "max_seats_per_order"},
      {"buyer cap 0", event_body({{"max_seats_per_buyer", 0}}), "max_seats_per_buyer"},
      {"duplicate section ids", with_sections({general("floor", 5), general("floor", 6)}), "floor"},
      {"general section with rows",
       with_sections({json::object{{"id", "floor"},
                                   {"kind", "general"},
                                   {"capacity", 5},
                                   {"price", 1},
                                   {"rows", json::array{row("A", 5)}}}}),
       "rows"},
      {"general without capacity",
       with_sections({json::object{{"id", "floor"}, {"kind", "general"}, {"price", 1}}}),
       "capacity"},
      {"general capacity 0", with_sections({general("floor", 0)}), "capacity"},
      {"general capacity -5", with_sections({general("floor", -5)}), "capacity"},
      {"reserved without rows",
       with_sections({json::object{{"id", "orch"}, {"kind", "reserved"}, {"price", 1}}}), "rows"},
      {"reserved with no rows", with_sections({reserved("orch", {})}), "rows"},
      {"reserved capacity not the sum",
       with_sections({json::object{{"id", "orch"},
                                   {"kind", "reserved"},
                                   {"price", 1},
                                   {"capacity", 7},
                                   {"rows", json::array{row("A", 5)}}}}),
       "capacity"},
      {"row of 0 seats", with_sections({reserved("orch", {row("A", 0)})}), "seats"},
      {"duplicate rows", with_sections({reserved("orch", {row("A", 2), row("A", 3)})}), "A"},
      {"row name with a colon", with_sections({reserved("orch", {row("A:1", 2)})}), "A:1"},
      {"section id with a colon", with_sections({general("or:ch", 5)}), "or:ch"},
      {"empty section id", with_sections({general("", 5)}), "id"},
      {"unknown kind",
       with_sections({json::object{{"id", "vip"}, {"kind", "vip"}, {"capacity", 5}, {"price", 1}}}),
       "kind"},
      {"missing kind", with_sections({json::object{{"id", "x"}, {"capacity", 5}, {"price", 1}}}),
       "kind"},
      {"negative price",
       with_sections(
           {json::object{{"id", "x"}, {"kind", "general"}, {"capacity", 5}, {"price", -1}}}),
       "price"},
      {"missing price",
       with_sections({json::object{{"id", "x"}, {"kind", "general"}, {"capacity", 5}}}), "price"},
      {"fractional price",
       with_sections(
           {json::object{{"id", "x"}, {"kind", "general"}, {"capacity", 5}, {"price", 2.5}}}),
       "price"},
      {"sections not an array", event_body({{"sections", "floor"}}), "sections"},
      {"section not an object", with_sections({5}), "sections[0]"},
      {"row not an object", with_sections({reserved("orch", {5})}), "rows[0]"},
  };
  const auto before = event_count(anon);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const auto r = admin.post("/v1/events", text(c.body));
    auto problem = expect_problem(r, 422, "invalid_request");
    EXPECT_NE(detail_of(problem).find(c.detail_mentions), std::string::npos)
        << c.what << ": the detail should name \"" << c.detail_mentions << "\": " << describe(r);
  }
  EXPECT_EQ(event_count(anon), before) << "a refused event was created";
}

}  // namespace
// A flash-sale deployment answers availability from a count at most availability_cache_ms old
// (with remote engines, without leaving the I/O thread): a hold shows in it once the count is
// that old, not before. The holds themselves are never answered from it.
TEST(AvailabilityCache, AnswersFromACountAtMostTheMaxAgeOld) {
  ServerOptions options;
  options.args = {"--availability-cache-ms=1500"};
  ServerProcess server(options);
  auto admin = server.client();
  admin.bearer = server.token("ops-cache", {"admin"});
  auto carol = server.client();
  carol.bearer = server.token("carol-cache");
  auto anon = server.client();
  const auto created = admin.post("/v1/events", text(event_body()));
  ASSERT_EQ(created.status, 201) << describe(created);
  const auto id = str(body_of(created).at("id"));
  const auto floor_available = [&] {
    const auto r = anon.get("/v1/events/" + id + "/availability");
    EXPECT_EQ(r.status, 200) << describe(r);
    return body_of(r).at("sections").as_array().at(0).at("available").to_number<int64_t>();
  };
  EXPECT_EQ(floor_available(), 10);
  // The server counted before it answered: the count is at least this old from here on.
  const auto counted_at = std::chrono::steady_clock::now();
  const auto held = carol.post("/v1/events/" + id + "/holds",
                               text(json::object{{"section", "floor"}, {"quantity", 2}}));
  ASSERT_EQ(held.status, 201) << describe(held);
  EXPECT_EQ(floor_available(), 10);  // the count made before the hold
  std::this_thread::sleep_until(counted_at + std::chrono::milliseconds{1600});
  EXPECT_EQ(floor_available(), 8);
  // Holds are decided by the store, never by the count: 6 of the 8 left can be held.
  const auto rest = carol.post("/v1/events/" + id + "/holds",
                               text(json::object{{"section", "floor"}, {"quantity", 6}}));
  EXPECT_EQ(rest.status, 201) << describe(rest);
}

}  // namespace boxoffice::testing::api

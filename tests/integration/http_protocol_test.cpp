// HTTP itself through the real binary: limits, malformed requests, keep-alive, pipelining,
// request ids, routing errors, operations routes, and bearer-token authentication
// (CONTRACT.md, Conventions and Operations).

#include <thread>

#include "integration/api_fixture.h"

namespace boxoffice::testing::api {
namespace {

// --- limits and malformed requests -------------------------------------------------------------

using ProtocolTest = ApiTest;

std::string fmt_chunk(const std::string& data) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx", data.size());
  return std::string(size) + "\r\n" + data + "\r\n";
}

TEST_F(ProtocolTest, AHeadOver8KiBIs431) {
  const std::string request =
      "GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(9 * 1024, 'a') + "\r\n\r\n";
  const auto raw = send_raw(port(), request);
  ASSERT_EQ(raw.rfind("HTTP/1.1 431", 0), 0u) << raw.substr(0, 300);
  EXPECT_FALSE(raw_header(raw, "X-Request-Id").empty()) << raw.substr(0, 300);
  EXPECT_NE(raw.find("application/problem+json"), std::string::npos);
  // The request line counts: a long target is refused the same way.
  const auto long_target = send_raw(
      port(), "GET /v1/events/" + std::string(9 * 1024, 'e') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(long_target.rfind("HTTP/1.1 431", 0), 0u) << long_target.substr(0, 300);
  // Just under the limit is served.
  const auto fine = anon.get("/v1/events", {{"X-Padding", std::string(7 * 1024, 'a')}});
  EXPECT_EQ(fine.status, 200) << describe(fine);
  EXPECT_EQ(anon.get("/healthz").status, 200);
}

TEST_F(ProtocolTest, ABodyOver64KiBIs413) {
  const auto id = make_event_id();
  const auto before = avail(id);
  const std::string head = "POST /v1/events/" + id +
                           "/holds HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice_token +
                           "\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n";
  // The declared length is enough to refuse: the body need not be sent.
  const auto raw = send_raw(port(), head);
  ASSERT_EQ(raw.rfind("HTTP/1.1 413", 0), 0u) << raw.substr(0, 300);
  EXPECT_FALSE(raw_header(raw, "X-Request-Id").empty());
  EXPECT_EQ(avail(id), before);

  // A body of 60 KiB is read (and judged on its content).
  const std::string padded =
      R"({"section": "floor", "quantity": 1)" + std::string(60 * 1024, ' ') + "}";
  const auto r = alice.post("/v1/events/" + id + "/holds", padded);
  EXPECT_EQ(r.status, 201) << describe(r);
}

TEST_F(ProtocolTest, RequestsThatAreNotHttpAre400) {
  for (const std::string& request :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n"),
        std::string("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")}) {
    SCOPED_TRACE(request);
    const auto raw = send_raw(port(), request);
    EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw.substr(0, 300);
  }
  EXPECT_EQ(anon.get("/healthz").status, 200);
}

TEST_F(ProtocolTest, AHeadOfTooManyFieldsIs431) {
  std::string head = "GET /v1/events HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 100; ++i) head += "X-F" + std::to_string(i) + ": 1\r\n";
  const auto raw = send_raw(port(), head + "\r\n");
  ASSERT_EQ(raw.rfind("HTTP/1.1 431", 0), 0u) << raw.substr(0, 300);
  EXPECT_NE(raw.find("header fields"), std::string::npos) << raw.substr(0, 400);
  // Forty fields are fine.
  Headers some;
  for (int i = 0; i < 40; ++i) some["X-F" + std::to_string(i)] = "1";
  EXPECT_EQ(anon.get("/v1/events", some).status, 200);
}

TEST_F(ProtocolTest, TransferEncodingWithContentLengthIsRefused) {
  const auto id = make_event_id();
  const auto before = avail(id);
  const std::string body = R"({"section":"floor","quantity":1})";
  const std::string request =
      "POST /v1/events/" + id + "/holds HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
      alice_token +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt_chunk(body) + "0\r\n\r\n";
  const auto raw = send_raw(port(), request);
  ASSERT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw.substr(0, 300);
  EXPECT_EQ(raw_header(raw, "Connection"), "close") << raw.substr(0, 300);
  EXPECT_EQ(avail(id), before);  // nothing was held
}

TEST_F(ProtocolTest, UnknownRouteIs404) {
  for (const char* path : {"/nope", "/v1", "/v1/event", "/v1/events/x/y/z", "/v2/events",
                           "/v1/events//availability"}) {
    SCOPED_TRACE(path);
    expect_problem(anon.get(path), 404, "not_found");
  }
}

TEST_F(ProtocolTest, WrongMethodIs405WithAllow) {
  const auto id = make_event_id();
  auto r = admin.request("PUT", "/v1/events", "{}");
  expect_problem(r, 405, "method_not_allowed");
  auto allow = r.header("Allow");
  EXPECT_NE(allow.find("GET"), std::string::npos) << allow;
  EXPECT_NE(allow.find("POST"), std::string::npos) << allow;

  r = admin.del("/v1/events/" + id);
  expect_problem(r, 405, "method_not_allowed");
  EXPECT_EQ(r.header("Allow"), "GET");

  r = alice.request("PATCH", "/v1/holds/hld_x");
  expect_problem(r, 405, "method_not_allowed");
  allow = r.header("Allow");
  EXPECT_NE(allow.find("GET"), std::string::npos) << allow;
  EXPECT_NE(allow.find("DELETE"), std::string::npos) << allow;

  r = alice.get("/v1/holds/hld_x/checkout");
  expect_problem(r, 405, "method_not_allowed");
  EXPECT_EQ(r.header("Allow"), "POST");
  // The event is unchanged.
  EXPECT_EQ(anon.get("/v1/events/" + id).status, 200);
}

TEST_F(ProtocolTest, KeepAliveServesManyRequestsOnOneConnection) {
  RawConnection connection(port());
  for (int i = 0; i < 5; ++i) {
    connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: keep-" + std::to_string(i) +
                    "\r\n\r\n");
    const auto response = connection.read_response();
    ASSERT_TRUE(response) << "the server closed a keep-alive connection after " << i
                          << " responses";
    EXPECT_EQ(response->rfind("HTTP/1.1 200", 0), 0u) << *response;
    EXPECT_EQ(raw_header(*response, "X-Request-Id"), "keep-" + std::to_string(i));
  }
  // An error answer does not end the connection either.
  connection.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->rfind("HTTP/1.1 404", 0), 0u) << *response;
  // Connection: close is honoured.
  connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->rfind("HTTP/1.1 200", 0), 0u) << *response;
  EXPECT_TRUE(connection.closed_by_peer());
}

TEST_F(ProtocolTest, PipelinedRequestsAreAnsweredInOrder) {
  const auto id = make_event_id();
  const std::string hold_body = R"({"section":"floor","quantity":2})";
  const std::string requests =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: first\r\n\r\n"
      "GET /v1/events/evt_missing HTTP/1.1\r\nHost: x\r\nX-Request-Id: second\r\n\r\n"
      "POST /v1/events/" +
      id + "/holds HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice_token +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(hold_body.size()) +
      "\r\nX-Request-Id: third\r\n\r\n" + hold_body + "GET /v1/events/" + id +
      "/availability HTTP/1.1\r\nHost: x\r\nX-Request-Id: fourth\r\n"
      "Connection: close\r\n\r\n";
  const auto raw = send_raw(port(), requests, 5s);
  EXPECT_EQ(statuses_in(raw), (std::vector<int>{200, 404, 201, 200})) << raw;
  const auto first = raw.find("X-Request-Id: first");
  const auto second = raw.find("X-Request-Id: second");
  const auto third = raw.find("X-Request-Id: third");
  const auto fourth = raw.find("X-Request-Id: fourth");
  ASSERT_NE(fourth, std::string::npos) << raw;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  EXPECT_LT(third, fourth);
  // The availability answered last saw the hold made before it.
  EXPECT_EQ(avail(id).at("floor").held, 2);
  EXPECT_NE(raw.find("\"held\":2", third), std::string::npos) << raw.substr(third);
}

TEST_F(ProtocolTest, RequestIdIsEchoedOrGenerated) {
  auto r = anon.get("/healthz", {{"X-Request-Id", "abc-123_X.y"}});
  EXPECT_EQ(r.header("X-Request-Id"), "abc-123_X.y");
  // Generated otherwise, and unique.
  const auto one = anon.get("/healthz").header("X-Request-Id");
  const auto two = anon.get("/healthz").header("X-Request-Id");
  EXPECT_FALSE(one.empty());
  EXPECT_FALSE(two.empty());
  EXPECT_NE(one, two);
  // An unusable id (too long, odd characters) is replaced, not echoed.
  for (const std::string& bad :
       {std::string(200, 'r'), std::string("has space"), std::string("a\"b")}) {
    r = anon.get("/healthz", {{"X-Request-Id", bad}});
    EXPECT_FALSE(r.header("X-Request-Id").empty());
    EXPECT_NE(r.header("X-Request-Id"), bad);
  }
  // Every answer carries one: errors, refusals, no-content.
  const auto id = make_event_id();
  const Headers rid{{"X-Request-Id", "trace-me"}};
  EXPECT_EQ(anon.get("/nope", rid).header("X-Request-Id"), "trace-me");
  EXPECT_EQ(anon.get("/v1/bookings", rid).header("X-Request-Id"), "trace-me");
  EXPECT_EQ(anon.request("PUT", "/healthz", "", rid).header("X-Request-Id"), "trace-me");
  EXPECT_EQ(alice.post("/v1/events/" + id + "/holds", "{", rid).header("X-Request-Id"), "trace-me");
  auto h = hold(alice, id, quantity_body("floor", 1));
  r = alice.del("/v1/holds/" + str(h["id"]), rid);
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.header("X-Request-Id"), "trace-me");
  EXPECT_FALSE(anon.get("/metrics").header("X-Request-Id").empty());
}

// A server of its own, with a 1 s request timeout.
TEST(ProtocolTimeouts, SlowAndIdleClientsAreCut) {
  ServerProcess server(
      ServerOptions{{"--request-timeout-seconds=1"}, {}, {}, {}, std::chrono::seconds(10)});
  // A head that never ends.
  RawConnection slow(server.port(), 10s);
  slow.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  // A keep-alive connection left idle after one answer.
  RawConnection idle(server.port(), 10s);
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto first = idle.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->rfind("HTTP/1.1 200", 0), 0u) << *first;

  EXPECT_TRUE(slow.wait_closed()) << "a request that never finished kept its connection open";
  EXPECT_EQ(slow.received().find("HTTP/1.1 200"), std::string::npos) << slow.received();
  EXPECT_TRUE(idle.wait_closed()) << "an idle keep-alive connection was never closed";
  // The server itself is fine.
  EXPECT_EQ(server.client().get("/healthz").status, 200);
  EXPECT_EQ(server.log().find("AddressSanitizer"), std::string::npos) << server.log();
}

// --- operations --------------------------------------------------------------------------------

TEST_F(ProtocolTest, HealthAndReadiness) {
  auto r = anon.get("/healthz");
  ASSERT_EQ(r.status, 200);
  r = anon.get("/readyz");
  ASSERT_EQ(r.status, 200) << describe(r);
  auto body = body_of(r);
  ASSERT_TRUE(body["engines"].is_object()) << r.body;
  const auto& engines = body["engines"].as_object();
  EXPECT_GE(engines.size(), 2u) << r.body;  // the seat lock store and the bookings database
  for (const auto& engine : engines) EXPECT_EQ(engine.value(), "ok") << engine.key();
  const std::vector<std::string> expected =
      production_engines_requested()
          ? std::vector<std::string>{"seat_lock_store:redis", "bookings_db:postgres",
                                     "waitlist_store:redis", "payment_queue:jetstream"}
          : std::vector<std::string>{"seat_lock_store:memory", "bookings_db:sqlite",
                                     "waitlist_store:sqlite", "payment_queue:sqlite"};
  for (const auto& name : expected) EXPECT_TRUE(engines.contains(name)) << name << " " << r.body;
}

int64_t counter(const std::string& metrics, const std::string& series) {
  for (size_t at = metrics.find(series); at != std::string::npos;
       at = metrics.find(series, at + 1)) {
    if (at != 0 && metrics[at - 1] != '\n') continue;
    const auto value_at = at + series.size();
    if (value_at >= metrics.size() || metrics[value_at] != ' ') continue;
    return std::stoll(metrics.substr(value_at + 1));
  }
  return 0;
}

TEST_F(ProtocolTest, MetricsAreCountedPrometheusText) {
  const std::string healthz_ok =
      R"(boxoffice_http_requests_total{route="GET /healthz",status="2xx"})";
  const std::string events_4xx =
      R"(boxoffice_http_requests_total{route="GET /v1/events/{event_id}",status="4xx"})";
  auto r = anon.get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type").rfind("text/plain", 0), 0u) << r.header("Content-Type");
  EXPECT_NE(r.body.find("# TYPE boxoffice_http_requests_total counter"), std::string::npos)
      << r.body;
  const auto healthz_before = counter(r.body, healthz_ok);
  const auto events_before = counter(r.body, events_4xx);

  for (int i = 0; i < 3; ++i) ASSERT_EQ(anon.get("/healthz").status, 200);
  ASSERT_EQ(anon.get("/v1/events/evt_missing").status, 404);

  r = anon.get("/metrics");
  EXPECT_EQ(counter(r.body, healthz_ok), healthz_before + 3) << r.body;
  EXPECT_EQ(counter(r.body, events_4xx), events_before + 1) << r.body;
  // Every sample line is "name{labels} value" or "name value"; comments start with '#'.
  size_t start = 0;
  while (start < r.body.size()) {
    auto end = r.body.find('\n', start);
    if (end == std::string::npos) end = r.body.size();
    const auto line = r.body.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    EXPECT_NO_THROW((void)std::stod(line.substr(space + 1))) << line;
    EXPECT_EQ(line.substr(0, 10), "boxoffice_") << line;
  }
}

// --- authentication ----------------------------------------------------------------------------

using AuthTest = ApiTest;

std::string b64(std::string_view s) { return jwt::base64url_encode(s); }

std::string claims_json(const std::string& sub, int64_t exp, const std::string& iss = "boxoffice",
                        const std::string& aud = "boxoffice", std::optional<int64_t> nbf = {}) {
  json::object claims{{"sub", sub}, {"exp", exp}, {"iat", exp - 3600}, {"iss", iss}, {"aud", aud}};
  if (nbf) claims["nbf"] = *nbf;
  return text(claims);
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void expect_unauthorized(const Response& r) {
  expect_problem(r, 401, "unauthorized");
  EXPECT_EQ(r.header("WWW-Authenticate").rfind("Bearer", 0), 0u)
      << "WWW-Authenticate: " << r.header("WWW-Authenticate");
}

TEST_F(AuthTest, BuyerRoutesNeedAToken) {
  const auto id = make_event_id();
  auto h = hold(alice, id, quantity_body("floor", 1));
  const auto before = avail(id);
  expect_unauthorized(anon.post("/v1/events/" + id + "/holds", text(quantity_body("floor", 1))));
  expect_unauthorized(anon.get("/v1/holds/" + str(h["id"])));
  expect_unauthorized(anon.del("/v1/holds/" + str(h["id"])));
  expect_unauthorized(anon.post("/v1/holds/" + str(h["id"]) + "/checkout", kPay));
  expect_unauthorized(anon.get("/v1/bookings"));
  expect_unauthorized(anon.get("/v1/bookings/bkg_x"));
  expect_unauthorized(anon.post("/v1/bookings/bkg_x/cancel", ""));
  EXPECT_EQ(avail(id), before);
  EXPECT_EQ(body_of(alice.get("/v1/holds/" + str(h["id"])))["status"], "active");
  // Public routes need none.
  EXPECT_EQ(anon.get("/v1/events").status, 200);
  EXPECT_EQ(anon.get("/v1/events/" + id).status, 200);
  EXPECT_EQ(anon.get("/v1/events/" + id + "/availability").status, 200);
  EXPECT_EQ(anon.get("/v1/events/" + id + "/sections/orch/seats").status, 200);
}

TEST_F(AuthTest, BadTokensAre401) {
  const auto id = make_event_id();
  const auto before = avail(id);
  const auto& secret = server().secret();
  const auto exp = unix_now() + 3600;
  const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";
  const std::string good_claims = claims_json(alice_id, exp);
  const auto good = jwt::sign_hs256_raw(secret, hs256, good_claims);
  const auto good_signature = good.substr(good.rfind('.') + 1);
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"expired", jwt::sign_hs256_raw(secret, hs256, claims_json(alice_id, unix_now() - 600))},
      {"not yet valid",
       jwt::sign_hs256_raw(secret, hs256,
                           claims_json(alice_id, exp, "boxoffice", "boxoffice", unix_now() + 600))},
      {"no exp",
       jwt::sign_hs256_raw(
           secret, hs256,
           text(json::object{{"sub", alice_id}, {"iss", "boxoffice"}, {"aud", "boxoffice"}}))},
      {"no sub", jwt::sign_hs256_raw(
                     secret, hs256,
                     text(json::object{{"exp", exp}, {"iss", "boxoffice"}, {"aud", "boxoffice"}}))},
      {"another secret", jwt::sign_hs256_raw("not-the-servers-secret", hs256, good_claims)},
      {"alg none", b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(good_claims) + "."},
      {"alg none with the good signature",
       b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(good_claims) + "." + good_signature},
      {"HS512 header", jwt::sign_hs256_raw(secret, R"({"alg":"HS512","typ":"JWT"})", good_claims)},
      {"RS256 header", jwt::sign_hs256_raw(secret, R"({"alg":"RS256","typ":"JWT"})", good_claims)},
      {"lower-case hs256",
       jwt::sign_hs256_raw(secret, R"({"alg":"hs256","typ":"JWT"})", good_claims)},
      {"wrong iss", jwt::sign_hs256_raw(secret, hs256, claims_json(alice_id, exp, "someone-else"))},
      {"wrong aud",
       jwt::sign_hs256_raw(secret, hs256, claims_json(alice_id, exp, "boxoffice", "other-api"))},
      {"tampered payload", b64(hs256) + "." + b64(claims_json(bob_id, exp)) + "." + good_signature},
      {"garbage", "garbage"},
      {"three garbage parts", "abc.def.ghi"},
      {"empty signature", good.substr(0, good.rfind('.') + 1)},
      {"four parts", good + ".x"},
  };
  for (const auto& [what, token] : cases) {
    SCOPED_TRACE(what);
    expect_unauthorized(anon.get("/v1/bookings", {{"Authorization", "Bearer " + token}}));
    expect_unauthorized(anon.post("/v1/events/" + id + "/holds", text(quantity_body("floor", 1)),
                                  {{"Authorization", "Bearer " + token}}));
  }
  // Not the Bearer scheme, or no token after it.
  const auto basic = "Basic " + b64(alice_id + ":password");
  for (const std::string& header :
       {basic, std::string("Bearer"), std::string("Bearer "), std::string("Token ") + good, good}) {
    SCOPED_TRACE(header.substr(0, 20));
    expect_unauthorized(anon.get("/v1/bookings", {{"Authorization", header}}));
  }
  EXPECT_EQ(avail(id), before);
  // The well-formed token is accepted (so the refusals above are about what was changed).
  const auto r = anon.get("/v1/bookings", {{"Authorization", "Bearer " + good}});
  EXPECT_EQ(r.status, 200) << describe(r);
}

TEST_F(AuthTest, AdminRoutesNeedTheAdminRole) {
  const auto before =
      expect_status(anon.get("/v1/events"), 200, "list").at("events").as_array().size();
  auto r = alice.post("/v1/events", text(event_body()));
  expect_problem(r, 403, "forbidden");
  // Another role is not admin; a role claim that is not an array is no token at all.
  auto staff = client_as(server().token(alice_id, {"staff", "Admin"}));
  expect_problem(staff.post("/v1/events", text(event_body())), 403, "forbidden");
  const auto odd = jwt::sign_hs256_raw(server().secret(), R"({"alg":"HS256","typ":"JWT"})",
                                       text(json::object{{"sub", alice_id},
                                                         {"exp", unix_now() + 3600},
                                                         {"iss", "boxoffice"},
                                                         {"aud", "boxoffice"},
                                                         {"roles", "admin"}}));
  expect_unauthorized(
      anon.post("/v1/events", text(event_body()), {{"Authorization", "Bearer " + odd}}));
  EXPECT_EQ(expect_status(anon.get("/v1/events"), 200, "list").at("events").as_array().size(),
            before);
  // An admin token works, and admin is a buyer too.
  EXPECT_EQ(admin.post("/v1/events", text(event_body())).status, 201);
  EXPECT_EQ(admin.get("/v1/bookings").status, 200);
}

TEST_F(AuthTest, ExpiryToleratesThirtySecondsOfClockSkew) {
  // exp just inside the 30 s leeway is still accepted; 31 s past is not.
  const auto& secret = server().secret();
  const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";
  const auto recent = jwt::sign_hs256_raw(secret, hs256, claims_json(alice_id, unix_now() - 10));
  EXPECT_EQ(anon.get("/v1/bookings", {{"Authorization", "Bearer " + recent}}).status, 200);
  const auto older = jwt::sign_hs256_raw(secret, hs256, claims_json(alice_id, unix_now() - 45));
  expect_unauthorized(anon.get("/v1/bookings", {{"Authorization", "Bearer " + older}}));
}

}  // namespace
}  // namespace boxoffice::testing::api

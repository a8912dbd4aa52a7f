#include <gtest/gtest.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "http/json_codec.h"
#include "http/message.h"
#include "http/problem.h"
#include "http/router.h"

namespace boxoffice::http {
namespace {

const Timestamp now = *parse_rfc3339("2026-12-04T20:00:00Z");

TEST(EventJson, FillsTheContractsDefaults) {
  auto event = event_from_json(R"({"name":"N","starts_at":"2027-06-01T19:00:00Z","currency":"USD",
      "max_seats_per_order":4,
      "sections":[{"id":"floor","kind":"general","capacity":10,"price":100}]})",
                               now);
  ASSERT_TRUE(event.ok()) << event.error().detail;
  EXPECT_EQ(event->sale_opens_at, now);
  EXPECT_EQ(event->hold_ttl_seconds, 600u);
  EXPECT_EQ(event->max_seats_per_order, 4u);
  EXPECT_EQ(event->max_seats_per_buyer, 4u);
}

TEST(EventJson, RefusesWithTheFieldNamed) {
  const std::string base = R"("name":"N","starts_at":"2027-06-01T19:00:00Z","currency":"USD")";
  auto check = [](const std::string& body, Errc code, const std::string& mentions) {
    auto event = event_from_json(body, now);
    ASSERT_FALSE(event.ok()) << body;
    EXPECT_EQ(event.error().code, code) << body;
    EXPECT_NE(event.error().detail.find(mentions), std::string::npos)
        << body << " -> " << event.error().detail;
  };
  check("{", Errc::malformed_request, "JSON");
  check("[]", Errc::invalid_request, "object");
  check(R"({"name":"N"})", Errc::invalid_request, "starts_at");
  check("{" + base + R"(,"sections":[],"colour":"red"})", Errc::invalid_request, "colour");
  check("{" + base + R"(,"sections":"x"})", Errc::invalid_request, "sections");
  check("{" + base + R"(,"hold_ttl_seconds":"600","sections":[]})", Errc::invalid_request,
        "hold_ttl_seconds");
  check("{" + base + R"(,"hold_ttl_seconds":-1,"sections":[]})", Errc::invalid_request,
        "hold_ttl_seconds");
  check("{" + base + R"(,"sections":[{"id":"a","kind":"vip","price":1}]})", Errc::invalid_request,
        "kind");
  check(
      "{" + base + R"(,"sections":[{"id":"a","kind":"reserved","price":1,"rows":[{"row":"A"}]}]})",
      Errc::invalid_request, "seats");
  check(R"({"name":"N","starts_at":"June","currency":"USD","sections":[]})", Errc::invalid_request,
        "starts_at");
}

TEST(HoldJson, ReadsBothShapes) {
  auto exact = hold_selection_from_json(R"({"seats":["orch:A:1","orch:A:2"]})");
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(std::get<ExactSeats>(*exact).seat_ids.size(), 2u);
  auto quantity = hold_selection_from_json(R"({"section":"floor","quantity":2})");
  ASSERT_TRUE(quantity.ok());
  EXPECT_EQ(std::get<SectionQuantity>(*quantity).quantity, 2u);
  for (const char* bad :
       {R"({})", R"({"seats":[]})", R"({"seats":[1]})", R"({"section":"f"})",
        R"({"section":"f","quantity":0})", R"({"section":"f","quantity":2.5})",
        R"({"seats":["a"],"section":"f"})", R"({"section":"f","quantity":1,"x":1})"}) {
    auto r = hold_selection_from_json(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_request) << bad;
  }
}

TEST(Problem, CarriesStatusCodeAndExtras) {
  Error error = make_error(Errc::seats_unavailable, "taken");
  error.unavailable = {"orch:A:1"};
  auto response = problem(error);
  EXPECT_EQ(response.status, 409);
  EXPECT_EQ(response.content_type, "application/problem+json");
  auto body = boost::json::parse(response.body).as_object();
  EXPECT_EQ(body.at("code").as_string(), "seats_unavailable");
  EXPECT_EQ(body.at("status").as_int64(), 409);
  EXPECT_EQ(body.at("unavailable").as_array().at(0).as_string(), "orch:A:1");
  EXPECT_EQ(status_of(Errc::sale_not_open), 403);
  EXPECT_EQ(status_of(Errc::limit_exceeded), 422);
  EXPECT_EQ(status_of(Errc::unauthorized), 401);
}

TEST(Router, MatchesPatternsAndReportsAllowedMethods) {
  Router router;
  router.add({"GET", "/v1/events/{event_id}", Access::anyone, false, false, {}});
  router.add({"POST", "/v1/events/{event_id}/holds", Access::buyer, false, true, {}});
  router.add({"GET", "/v1/events/{event_id}/holds", Access::buyer, false, false, {}});
  auto m = router.match("GET", "/v1/events/evt_1");
  ASSERT_TRUE(std::holds_alternative<Router::Match>(m));
  EXPECT_EQ(std::get<Router::Match>(m).params.at(0).second, "evt_1");
  EXPECT_TRUE(std::holds_alternative<Router::NoRoute>(router.match("GET", "/v1/events/")));
  EXPECT_TRUE(std::holds_alternative<Router::NoRoute>(router.match("GET", "/v1/nope")));
  EXPECT_TRUE(std::holds_alternative<Router::NoRoute>(router.match("GET", "relative")));
  auto wrong = router.match("DELETE", "/v1/events/e/holds");
  ASSERT_TRUE(std::holds_alternative<Router::WrongMethod>(wrong));
  EXPECT_EQ(std::get<Router::WrongMethod>(wrong).allow, "POST, GET");
}

// What the server writes, read back by Beast's parser as a client would read it.
boost::beast::http::response<boost::beast::http::string_body> parse_written(
    const HttpResponse& response, std::string_view request_id, bool keep_alive) {
  const std::string wire = response_head(response, request_id, keep_alive) + response.body;
  boost::beast::http::response_parser<boost::beast::http::string_body> parser;
  parser.eager(true);  // the head and the body in one put()
  boost::beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message() << " in:\n" << wire;
  EXPECT_TRUE(parser.is_done()) << wire;
  EXPECT_EQ(used, wire.size()) << wire;
  return parser.release();
}

TEST(ResponseHead, IsAWholeHttp11ResponseWithTheServersOwnFields) {
  HttpResponse response;
  response.status = 409;
  response.body = R"({"type":"about:blank"})";
  response.content_type = "application/problem+json";
  response.set_header("Retry-After", "3");
  response.set_header("Content-Length", "999");  // the server's own fields are its own
  response.set_header("X-Request-Id", "from-a-backend");
  response.set_header("Allow", "GET");
  response.set_header("allow", "GET, POST");  // of two with one name the last stands
  const auto message = parse_written(response, "req_1", /*keep_alive=*/true);
  EXPECT_EQ(message.result_int(), 409);
  EXPECT_EQ(message.reason(), "Conflict");
  EXPECT_EQ(message.version(), 11);
  EXPECT_EQ(message[boost::beast::http::field::server], "boxoffice");
  EXPECT_EQ(message[boost::beast::http::field::content_type], "application/problem+json");
  EXPECT_EQ(message["X-Request-Id"], "req_1");
  EXPECT_EQ(message.count("X-Request-Id"), 1u);
  EXPECT_EQ(message[boost::beast::http::field::retry_after], "3");
  EXPECT_EQ(message.count(boost::beast::http::field::allow), 1u);
  EXPECT_EQ(message[boost::beast::http::field::allow], "GET, POST");
  EXPECT_EQ(message[boost::beast::http::field::content_length],
            std::to_string(response.body.size()));
  EXPECT_EQ(message.body(), response.body);
  EXPECT_TRUE(message.keep_alive());
}

TEST(ResponseHead, ClosesWhenAskedAndLetsNoValueStartAFieldOfItsOwn) {
  HttpResponse response;
  response.status = 201;
  response.content_type.clear();
  response.set_header("Location", "/v1/x\r\nSet-Cookie: stolen=1\r\n");
  const auto message = parse_written(response, "req_2", /*keep_alive=*/false);
  EXPECT_EQ(message.result_int(), 201);
  EXPECT_FALSE(message.keep_alive());
  EXPECT_EQ(message.count(boost::beast::http::field::set_cookie), 0u);
  EXPECT_EQ(message.count(boost::beast::http::field::content_type), 0u);
  EXPECT_EQ(message[boost::beast::http::field::content_length], "0");
  EXPECT_EQ(message.body(), "");
}

TEST(HttpRequest, ReadsHeadersAndQueryParameters) {
  HttpRequest request;
  request.headers = {{"Content-Type", "application/json"}};
  request.query = "row=A%20B&x=1&empty";
  EXPECT_EQ(request.header("content-type"), "application/json");
  EXPECT_FALSE(request.header("Accept").has_value());
  EXPECT_EQ(request.query_param("row"), "A B");
  EXPECT_EQ(request.query_param("x"), "1");
  EXPECT_EQ(request.query_param("empty"), "");
  EXPECT_FALSE(request.query_param("y").has_value());
}

}  // namespace
}  // namespace boxoffice::http

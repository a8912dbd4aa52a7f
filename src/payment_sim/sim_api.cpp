#include "payment_sim/sim_api.h"

#include "http/json_response.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <thread>

#include "http/problem.h"

namespace boxoffice::payment_sim {

namespace json = boost::json;
using http::HttpRequest;
using http::HttpResponse;
using http::json_response;
using http::RouteContext;

namespace {

const char* to_string(Outcome outcome) {
  return outcome == Outcome::approved ? "approved" : "declined";
}

json::object charge_to_json(const ChargeRecord& charge) {
  json::object out{{"id", charge.id},
                   {"object", "charge"},
                   {"idempotency_key", charge.idempotency_key},
                   {"amount", charge.amount},
                   {"currency", charge.currency},
                   {"payment_method", charge.payment_method},
                   {"status", charge.outcome == Outcome::approved ? "succeeded" : "declined"},
                   {"refunded", charge.refunded}};
  if (charge.outcome == Outcome::declined) out["decline_code"] = charge.decline_code;
  if (charge.refunded) out["refund"] = charge.refund_id;
  return out;
}

json::object refund_to_json(const RefundRecord& refund) {
  return {{"id", refund.id},         {"object", "refund"},          {"charge", refund.charge_id},
          {"amount", refund.amount}, {"currency", refund.currency}, {"status", "succeeded"}};
}

HttpResponse refusal(const Refused& refused) {
  switch (refused.reason) {
    case Refusal::invalid_request:
      return http::problem(make_error(Errc::invalid_request, refused.detail));
    case Refusal::idempotency_key_reused:
      return http::problem(make_error(Errc::idempotency_key_reused, refused.detail));
    case Refusal::request_in_progress:
      return http::problem(make_error(Errc::request_in_progress, refused.detail));
    case Refusal::charge_not_found:
      return http::protocol_problem(404, "resource_missing", "No such charge", refused.detail);
    case Refusal::not_refundable:
      return http::protocol_problem(422, "charge_not_refundable", "The charge cannot be refunded",
                                    refused.detail);
  }
  return http::protocol_problem(500, "internal", "Internal error", "unknown refusal");
}

HttpResponse invalid(std::string detail) {
  return http::problem(make_error(Errc::invalid_request, std::move(detail)));
}

/// The body of POST /v1/charges, strictly: a field of the wrong type or an unknown one is a bug
/// in the caller that a lenient parser would hide.
std::variant<ChargeInput, HttpResponse> charge_input(const HttpRequest& request) {
  const auto key = request.header("Idempotency-Key");
  if (!key) {
    return http::problem(make_error(Errc::malformed_request,
                                    "a charge needs an Idempotency-Key header (1-255 characters)"));
  }
  boost::system::error_code ec;
  json::parse_options limits;
  limits.max_depth = 4;
  const auto value = json::parse(request.body, ec, {}, limits);
  if (ec) {
    return http::problem(
        make_error(Errc::malformed_request, "the body is not valid JSON: " + ec.message()));
  }
  const auto* body = value.if_object();
  if (!body) return invalid("the body must be a JSON object");
  ChargeInput input;
  input.idempotency_key = std::string{*key};
  for (const auto& [name, field] : *body) {
    if (name == "amount") {
      if (!field.is_int64()) return invalid("amount must be an integer (minor units)");
      input.amount = field.get_int64();
    } else if (name == "currency" || name == "payment_method") {
      if (!field.is_string()) return invalid(std::string{name} + " must be a string");
      (name == "currency" ? input.currency : input.payment_method) = field.get_string();
    } else {
      return invalid("unknown field \"" + std::string{name} + "\"");
    }
  }
  if (!body->contains("amount")) return invalid("amount is required");
  if (!body->contains("currency")) return invalid("currency is required");
  if (!body->contains("payment_method")) return invalid("payment_method is required");
  return input;
}

void sleep(Millis duration) {
  if (duration.count() > 0) std::this_thread::sleep_for(duration);
}

}  // namespace

SimulatorApi::SimulatorApi(Simulator& simulator) : simulator_(simulator) { add_routes(); }

bool SimulatorApi::needs_worker(const HttpRequest& request) const {
  return request.path != "/healthz";
}

HttpResponse SimulatorApi::handle(const HttpRequest& request) {
  try {
    auto match = router_.match(request.method, request.path);
    if (std::holds_alternative<http::Router::NoRoute>(match)) {
      return http::protocol_problem(404, "not_found", "Not found", "no route " + request.path);
    }
    if (auto* wrong = std::get_if<http::Router::WrongMethod>(&match)) {
      auto response =
          http::protocol_problem(405, "method_not_allowed", "Method not allowed",
                                 request.method + " is not allowed here; use " + wrong->allow);
      response.set_header("Allow", wrong->allow);
      return response;
    }
    auto& found = std::get<http::Router::Match>(match);
    const RouteContext context{request, Caller{}, std::move(found.params)};
    return found.route->handler(context);
  } catch (const std::exception& e) {
    spdlog::error("payment-sim: unexpected failure on {} {}: {}", request.method, request.path,
                  e.what());
    return http::protocol_problem(500, "internal", "Internal error",
                                  "an unexpected error occurred");
  }
}

void SimulatorApi::add_routes() {
  using http::Access;
  auto& sim = simulator_;
  auto& r = router_;

  r.add({"POST", "/v1/charges", Access::anyone, true, true, [&sim](const RouteContext& c) {
           auto parsed = charge_input(c.request);
           if (auto* bad = std::get_if<HttpResponse>(&parsed)) return std::move(*bad);
           const auto reply = sim.charge(std::get<ChargeInput>(parsed), sleep);
           if (const auto* failure = std::get_if<TransientFailure>(&reply)) {
             return http::problem(make_error(Errc::unavailable, failure->detail));
           }
           if (const auto* refused = std::get_if<Refused>(&reply)) return refusal(*refused);
           const auto& charged = std::get<Charged>(reply);
           // The charge is already recorded: a caller that gives up during this sleep and retries
           // with the same key gets the stored answer while this one is still waiting.
           sleep(charged.delay);
           const bool approved = charged.charge.outcome == Outcome::approved;
           auto response = json_response(approved ? 201 : 402, charge_to_json(charged.charge));
           if (charged.replayed) response.set_header("Idempotent-Replayed", "true");
           return response;
         }});
  r.add({"GET", "/v1/charges", Access::anyone, true, false, [&sim](const RouteContext& c) {
           const auto key = c.request.query_param("idempotency_key");
           if (!key || key->empty()) {
             return http::problem(
                 make_error(Errc::malformed_request, "the query must name an idempotency_key"));
           }
           const auto charge = sim.find_by_key(*key);
           if (!charge) {
             return http::protocol_problem(404, "resource_missing", "No such charge",
                                           "no charge was made with this idempotency key");
           }
           return json_response(200, charge_to_json(*charge));
         }});
  r.add({"POST", "/v1/charges/{charge_id}/refunds", Access::anyone, true, true,
         [&sim](const RouteContext& c) {
           std::optional<std::string> key;
           if (auto header = c.request.header("Idempotency-Key")) {
             if (header->empty() || header->size() > 255) {
               return invalid("the Idempotency-Key must be 1-255 characters");
             }
             key = std::string{*header};
           }
           const auto reply = sim.refund(c.param("charge_id"), std::move(key));
           if (const auto* refused = std::get_if<Refused>(&reply)) return refusal(*refused);
           const auto& refunded = std::get<Refunded>(reply);
           auto response = json_response(refunded.kind == RefundKind::existing ? 200 : 201,
                                         refund_to_json(refunded.refund));
           if (refunded.kind == RefundKind::replayed) {
             response.set_header("Idempotent-Replayed", "true");
           }
           return response;
         }});
  r.add({"GET", "/v1/ledger", Access::anyone, true, false, [&sim](const RouteContext&) {
           const auto ledger = sim.ledger();
           json::array charges;
           for (const auto& charge : ledger.charges) {
             charges.push_back(json::object{{"idempotency_key", charge.idempotency_key},
                                            {"amount", charge.amount},
                                            {"currency", charge.currency},
                                            {"payment_method", charge.payment_method},
                                            {"outcome", to_string(charge.outcome)},
                                            {"refunded", charge.refunded}});
           }
           json::array refunds;
           for (const auto& refund : ledger.refunds) {
             refunds.push_back(json::object{{"id", refund.id},
                                            {"charge", refund.charge_id},
                                            {"idempotency_key", refund.charge_idempotency_key},
                                            {"amount", refund.amount},
                                            {"currency", refund.currency}});
           }
           return json_response(
               200, json::object{{"charges", std::move(charges)}, {"refunds", std::move(refunds)}});
         }});
  r.add({"GET", "/healthz", Access::anyone, false, false, [](const RouteContext&) {
           return json_response(200, json::object{{"status", "ok"}});
         }});
}

}  // namespace boxoffice::payment_sim

#include "adapters/http_provider/http_payment_provider.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

namespace boxoffice {

namespace json = boost::json;

namespace {

constexpr size_t kQuotedBodyBytesMax = 300;

http::SyncClientOptions client_options(Millis attempt_timeout, size_t connections_max) {
  http::SyncClientOptions options;
  options.timeout = attempt_timeout;
  options.connections_max = connections_max;
  return options;
}

/// The provider's own words for a refusal: a problem's "code: detail", else the start of the body.
std::string describe(const http::ClientResponse& response) {
  std::string text = "HTTP " + std::to_string(response.status);
  boost::system::error_code ec;
  const auto body = json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    const auto& object = body.get_object();
    const auto* code = object.if_contains("code");
    const auto* detail = object.if_contains("detail");
    if (code && code->is_string()) text += " " + std::string{code->get_string()};
    if (detail && detail->is_string()) text += ": " + std::string{detail->get_string()};
    return text;
  }
  if (!response.body.empty()) text += ": " + response.body.substr(0, kQuotedBodyBytesMax);
  return text;
}

std::string problem_code(const http::ClientResponse& response) {
  boost::system::error_code ec;
  const auto body = json::parse(response.body, ec);
  if (ec || !body.is_object()) return {};
  const auto* code = body.get_object().if_contains("code");
  return code && code->is_string() ? std::string{code->get_string()} : std::string{};
}

/// A 4xx that is neither a decline nor "in progress" means we sent something the provider finds
/// wrong: a bug on our side, worth an error in the log beyond the ProviderError.
ProviderError unexpected(std::string_view what, const http::ClientResponse& response) {
  auto error = ProviderError{std::string{what} + ": " + describe(response)};
  if (response.status >= 400 && response.status < 500 && response.status != 409) {
    spdlog::error("payment provider refused our request (a bug?): {}", error.detail);
  }
  return error;
}

std::variant<Charge, ProviderError> parse_charge(std::string_view what,
                                                 const http::ClientResponse& response) {
  const auto bad = [&](std::string_view why) {
    return ProviderError{std::string{what} + ": HTTP " + std::to_string(response.status) +
                         " with a body that is not a charge (" + std::string{why} +
                         "): " + response.body.substr(0, kQuotedBodyBytesMax)};
  };
  boost::system::error_code ec;
  const auto value = json::parse(response.body, ec);
  if (ec || !value.is_object()) return bad("not a JSON object");
  const auto& object = value.get_object();
  const auto string_field = [&](std::string_view name) -> const json::string* {
    const auto* field = object.if_contains(name);
    return field && field->is_string() ? &field->get_string() : nullptr;
  };
  const auto* id = string_field("id");
  const auto* key = string_field("idempotency_key");
  const auto* currency = string_field("currency");
  const auto* status = string_field("status");
  const auto* amount = object.if_contains("amount");
  const auto* refunded = object.if_contains("refunded");
  if (!id || id->empty() || !key || !currency || !status) return bad("a string field is missing");
  if (!amount || !amount->is_int64()) return bad("amount is not an integer");
  if (!refunded || !refunded->is_bool()) return bad("refunded is not a boolean");

  Charge charge;
  charge.id = *id;
  charge.idempotency_key = *key;
  charge.amount = amount->get_int64();
  charge.currency = *currency;
  charge.refunded = refunded->get_bool();
  if (*status == "succeeded") {
    charge.status = ChargeStatus::approved;
  } else if (*status == "declined") {
    charge.status = ChargeStatus::declined;
    const auto* code = string_field("decline_code");
    charge.decline_reason = code ? std::string{*code} : "declined";
  } else {
    return bad("unknown status \"" + std::string{*status} + "\"");
  }
  return charge;
}

}  // namespace

HttpPaymentProvider::HttpPaymentProvider(std::string_view base_url, Millis attempt_timeout,
                                         size_t connections_max)
    : client_(base_url, client_options(attempt_timeout, connections_max)),
      attempt_timeout_(attempt_timeout) {}

std::variant<Charge, ProviderError> HttpPaymentProvider::charge(const ChargeRequest& request) {
  const std::string what = "charge " + request.idempotency_key;
  const json::object body{{"amount", request.amount},
                          {"currency", request.currency},
                          {"payment_method", request.payment_method}};
  auto result = client_.post("/v1/charges", json::serialize(body),
                             {{"Idempotency-Key", request.idempotency_key}}, attempt_timeout_);
  if (const auto* error = std::get_if<http::ClientError>(&result)) {
    return ProviderError{what + ": " + error->detail};
  }
  const auto& response = std::get<http::ClientResponse>(result);
  if (response.status != 201 && response.status != 402) return unexpected(what, response);
  auto parsed = parse_charge(what, response);
  if (auto* charge = std::get_if<Charge>(&parsed)) {
    // A charge for another key, or an outcome contradicting the status, is not an answer to trust.
    const bool consistent = charge->idempotency_key == request.idempotency_key &&
                            (charge->status == ChargeStatus::approved) == (response.status == 201);
    if (!consistent) {
      return ProviderError{what + ": the provider answered HTTP " +
                           std::to_string(response.status) + " with charge " + charge->id +
                           " for key " + charge->idempotency_key};
    }
  }
  return parsed;
}

std::variant<std::optional<Charge>, ProviderError> HttpPaymentProvider::find_charge(
    const std::string& idempotency_key) {
  const std::string what = "find charge " + idempotency_key;
  auto result = client_.get("/v1/charges?idempotency_key=" + http::percent_encode(idempotency_key),
                            {}, attempt_timeout_);
  if (const auto* error = std::get_if<http::ClientError>(&result)) {
    return ProviderError{what + ": " + error->detail};
  }
  const auto& response = std::get<http::ClientResponse>(result);
  // "No such charge" decides that a booking was never paid, so it must be the provider's word for
  // it: a 404 from a wrong URL or a proxy must not pass for one.
  if (response.status == 404 && problem_code(response) == "resource_missing") return std::nullopt;
  if (response.status != 200) return unexpected(what, response);
  auto parsed = parse_charge(what, response);
  if (auto* error = std::get_if<ProviderError>(&parsed)) return std::move(*error);
  auto& charge = std::get<Charge>(parsed);
  if (charge.idempotency_key != idempotency_key) {
    return ProviderError{what + ": the provider answered with the charge of key " +
                         charge.idempotency_key};
  }
  return std::optional<Charge>{std::move(charge)};
}

std::variant<std::optional<Charge>, ProviderError> HttpPaymentProvider::refund(
    const std::string& idempotency_key) {
  auto found = find_charge(idempotency_key);
  if (auto* error = std::get_if<ProviderError>(&found)) return std::move(*error);
  auto& charge = std::get<std::optional<Charge>>(found);
  if (!charge || charge->status != ChargeStatus::approved) return std::optional<Charge>{};
  if (charge->refunded) return std::move(charge);

  const std::string what = "refund " + idempotency_key;
  auto result = client_.post("/v1/charges/" + http::percent_encode(charge->id) + "/refunds", "",
                             {{"Idempotency-Key", "refund:" + idempotency_key}}, attempt_timeout_);
  if (const auto* error = std::get_if<http::ClientError>(&result)) {
    return ProviderError{what + ": " + error->detail};
  }
  const auto& response = std::get<http::ClientResponse>(result);
  if (response.status != 200 && response.status != 201) return unexpected(what, response);
  boost::system::error_code ec;
  const auto body = json::parse(response.body, ec);
  const auto* refunded_charge =
      !ec && body.is_object() ? body.get_object().if_contains("charge") : nullptr;
  if (!refunded_charge || !refunded_charge->is_string() ||
      refunded_charge->get_string() != charge->id) {
    return ProviderError{what + ": HTTP " + std::to_string(response.status) +
                         " with a body that is not a refund of " + charge->id + ": " +
                         response.body.substr(0, kQuotedBodyBytesMax)};
  }
  charge->refunded = true;
  return std::move(charge);
}

}  // namespace boxoffice

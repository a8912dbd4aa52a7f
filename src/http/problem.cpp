#include "http/problem.h"

#include <boost/json/serialize.hpp>

namespace boxoffice::http {

namespace {

struct ErrorInfo {
  int status;
  const char* title;
};

ErrorInfo info_of(Errc code) {
  switch (code) {
    case Errc::invalid_request:
      return {422, "The request breaks a rule"};
    case Errc::malformed_request:
      return {400, "The request could not be read"};
    case Errc::not_found:
      return {404, "Not found"};
    case Errc::seats_unavailable:
      return {409, "Seats unavailable"};
    case Errc::sold_out:
      return {409, "Sold out"};
    case Errc::sale_not_open:
      return {403, "The sale is not open"};
    case Errc::limit_exceeded:
      return {422, "Limit exceeded"};
    case Errc::hold_expired:
      return {409, "The hold is no longer valid"};
    case Errc::seats_available:
      return {409, "Seats are available"};
    case Errc::invalid_state:
      return {409, "Not allowed in the current state"};
    case Errc::conflict:
      return {409, "Conflict"};
    case Errc::idempotency_key_reused:
      return {422, "Idempotency key reused with another request"};
    case Errc::request_in_progress:
      return {409, "A request with this idempotency key is in progress"};
    case Errc::unauthorized:
      return {401, "Unauthorized"};
    case Errc::forbidden:
      return {403, "Forbidden"};
    case Errc::overloaded:
      return {503, "Overloaded"};
    case Errc::rate_limited:
      return {429, "Too many requests"};
    case Errc::unavailable:
      return {503, "Service unavailable"};
  }
  return {500, "Internal error"};
}

HttpResponse make(int status, std::string_view code, std::string_view title, std::string detail,
                  boost::json::object extra) {
  boost::json::object body;
  body["type"] = "/problems/" + std::string{code};
  body["title"] = title;
  body["status"] = status;
  body["detail"] = std::move(detail);
  body["code"] = code;
  for (auto& field : extra) body[field.key()] = std::move(field.value());
  HttpResponse response;
  response.status = status;
  response.content_type = "application/problem+json";
  response.body = boost::json::serialize(body);
  return response;
}

}  // namespace

int status_of(Errc code) { return info_of(code).status; }

HttpResponse problem(const Error& error, boost::json::object extra) {
  const auto info = info_of(error.code);
  if (error.code == Errc::seats_unavailable) {
    boost::json::array ids;
    for (const auto& id : error.unavailable) ids.emplace_back(id);
    extra["unavailable"] = std::move(ids);
  }
  auto response = make(info.status, to_string(error.code), info.title,
                       error.detail.empty() ? info.title : error.detail, std::move(extra));
  if (error.code == Errc::unauthorized) {
    response.set_header("WWW-Authenticate", "Bearer realm=\"boxoffice\"");
  }
  if (error.code == Errc::overloaded || error.code == Errc::unavailable) {
    response.set_header("Retry-After", "1");
  }
  return response;
}

HttpResponse protocol_problem(int status, std::string_view code, std::string_view title,
                              std::string detail) {
  return make(status, code, title, std::move(detail), {});
}

}  // namespace boxoffice::http

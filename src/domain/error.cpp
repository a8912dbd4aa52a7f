#include "domain/error.h"

namespace boxoffice {

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::invalid_request:
      return "invalid_request";
    case Errc::malformed_request:
      return "malformed_request";
    case Errc::not_found:
      return "not_found";
    case Errc::seats_unavailable:
      return "seats_unavailable";
    case Errc::sold_out:
      return "sold_out";
    case Errc::sale_not_open:
      return "sale_not_open";
    case Errc::limit_exceeded:
      return "limit_exceeded";
    case Errc::hold_expired:
      return "hold_expired";
    case Errc::seats_available:
      return "seats_available";
    case Errc::invalid_state:
      return "invalid_state";
    case Errc::conflict:
      return "conflict";
    case Errc::idempotency_key_reused:
      return "idempotency_key_reused";
    case Errc::request_in_progress:
      return "request_in_progress";
    case Errc::unauthorized:
      return "unauthorized";
    case Errc::forbidden:
      return "forbidden";
    case Errc::overloaded:
      return "overloaded";
    case Errc::rate_limited:
      return "rate_limited";
    case Errc::unavailable:
      return "unavailable";
  }
  return "internal";
}

}  // namespace boxoffice

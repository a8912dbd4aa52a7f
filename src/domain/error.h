#pragma once
// Business outcomes are values, not exceptions: every use case returns Result<T>, and the HTTP
// layer turns an Error into a problem+json response in exactly one place (http/problem.cpp).
// Infrastructure failures (an engine that does not answer) are thrown as StorageError by the
// adapters and become 503 in that same place.

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace boxoffice {

enum class Errc {
  invalid_request,         // 422: the body or a parameter breaks a rule
  malformed_request,       // 400: not JSON, wrong content type...
  not_found,               // 404: missing, or somebody else's
  seats_unavailable,       // 409: + unavailable seat ids
  sold_out,                // 409: the section has no seats left
  sale_not_open,           // 403
  limit_exceeded,          // 422: order or buyer cap
  hold_expired,            // 409: the hold is no longer valid
  seats_available,         // 409: joining a waitlist while seats can be held
  invalid_state,           // 409: the object's status does not allow this
  conflict,                // 409: an object with this id already exists
  idempotency_key_reused,  // 422
  request_in_progress,     // 409
  unauthorized,            // 401
  forbidden,               // 403
  overloaded,              // 503: a bounded queue is full
  rate_limited,            // 429: over a rate limit (+ Retry-After)
  unavailable,             // 503: an engine does not answer
};

std::string_view to_string(Errc code);

struct Error {
  Errc code;
  std::string detail;
  std::vector<std::string> unavailable;  // seats_unavailable only
};

inline Error make_error(Errc code, std::string detail = {}) {
  return Error{code, std::move(detail), {}};
}

/// Thrown by adapters when their engine fails (I/O error, corrupt file, timeout). Never used for
/// business outcomes.
class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace boxoffice

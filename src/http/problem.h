#pragma once
// The one place where errors become HTTP status codes: application/problem+json (RFC 9457).

#include <boost/json/object.hpp>

#include "domain/error.h"
#include "http/message.h"

namespace boxoffice::http {

int status_of(Errc code);

/// {"type","title","status","detail","code"} plus `extra` fields; seats_unavailable adds
/// "unavailable".
HttpResponse problem(const Error& error, boost::json::object extra = {});

/// A problem for a protocol-level refusal that has no domain code (404 route, 405, 413, 431...).
HttpResponse protocol_problem(int status, std::string_view code, std::string_view title,
                              std::string detail);

}  // namespace boxoffice::http

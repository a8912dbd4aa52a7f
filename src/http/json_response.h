#pragma once
// Building JSON responses, for every RequestHandler (the Booking API, the payment simulator).

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "http/message.h"

namespace boxoffice::http {

inline HttpResponse json_response(int status, const boost::json::value& body) {
  HttpResponse response;
  response.status = status;
  response.body = boost::json::serialize(body);
  return response;
}

inline HttpResponse no_content() {
  HttpResponse response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

}  // namespace boxoffice::http

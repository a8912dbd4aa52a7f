#pragma once

#include "http/message.h"

namespace boxoffice::http {

/// What the HTTP server serves: the Booking API, or the payment simulator.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  /// True when answering may block on an engine: the server runs it on its worker pool.
  virtual bool needs_worker(const HttpRequest& request) const = 0;
  /// Never throws: every failure is an HTTP response.
  virtual HttpResponse handle(const HttpRequest& request) = 0;
  virtual void connection_opened() {}
  virtual void connection_closed() {}
};

}  // namespace boxoffice::http

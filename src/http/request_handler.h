#pragma once

#include <functional>
#include <optional>

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

  /// The answer of async_handle, from any thread: a response, or nullopt when the request must
  /// be answered by handle() on a worker after all (nothing was done yet).
  using AsyncDone = std::function<void(std::optional<HttpResponse> response)>;
  /// True when the request is best answered by async_handle (asked before needs_worker).
  virtual bool answers_async(const HttpRequest&) const { return false; }
  /// Answers without blocking the calling thread; `done` runs once, maybe before this returns.
  /// `request` lives until then.
  virtual void async_handle(const HttpRequest& request, AsyncDone done) { done(handle(request)); }
  virtual void connection_opened() {}
  virtual void connection_closed() {}
};

}  // namespace boxoffice::http

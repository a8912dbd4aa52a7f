#pragma once
// Maps (method, path) to a route. Patterns are segments, literal or "{name}":
// "/v1/events/{event_id}/holds". Few routes, so matching is a scan of pre-split patterns.

#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/caller.h"
#include "http/message.h"

namespace boxoffice::http {

enum class Access { anyone, buyer, admin };

struct RouteContext {
  const HttpRequest& request;
  Caller caller;
  std::vector<std::pair<std::string, std::string>> params;

  const std::string& param(std::string_view name) const;
};

using Handler = std::function<HttpResponse(const RouteContext&)>;
/// How an asynchronous handler answers: once, from any thread, with the exception a synchronous
/// handler would have thrown (then `response` is ignored) or with the response.
using Respond = std::function<void(std::exception_ptr error, HttpResponse response)>;
/// Starts answering and returns; engine calls go out without blocking the calling thread. It
/// copies what it needs from the context (which lives only during the call).
using AsyncHandler = std::function<void(const RouteContext&, Respond)>;

struct Route {
  std::string method;
  std::string pattern;
  Access access = Access::anyone;
  /// The handler may call a blocking engine (a database): run it on the worker pool.
  bool blocking = false;
  /// Creates something: honours Idempotency-Key.
  bool creates = false;
  Handler handler;
  /// When every route blocks (the engines are remote): true when, for these path parameters, the
  /// handler will answer from memory, so it runs on the I/O thread after all.
  std::function<bool(const std::vector<std::pair<std::string, std::string>>& params)>
      answers_from_memory = nullptr;
  /// When every route blocks (the engines are remote): answers the same as `handler` without a
  /// worker, from the I/O thread and the engine clients' own threads (the rate limits are asked
  /// without blocking too). Not used for a request with an Idempotency-Key (its store blocks).
  AsyncHandler async_handler = nullptr;
};

class Router {
 public:
  /// Returns the route's index (stable, for metrics).
  size_t add(Route route);

  struct Match {
    const Route* route;
    size_t index;
    std::vector<std::pair<std::string, std::string>> params;
  };
  struct NoRoute {};
  struct WrongMethod {
    std::string allow;  // "GET, POST"
  };
  std::variant<Match, NoRoute, WrongMethod> match(std::string_view method,
                                                  std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;
};

}  // namespace boxoffice::http

#pragma once
// Maps (method, path) to a route. Patterns are segments, literal or "{name}":
// "/v1/events/{event_id}/holds". Few routes, so matching is a scan of pre-split patterns.

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

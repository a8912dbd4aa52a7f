#include "http/gateway.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <stdexcept>

#include "domain/ids.h"
#include "http/json_response.h"
#include "http/problem.h"

namespace boxoffice::http {

namespace json = boost::json;

namespace {

// The routes of booking_routes.cpp, by shape: the gateway needs each one's access and rate class
// before it forwards. A route missing here answers 404 through a gateway (the suites that run
// through a separate gateway process catch that).
struct RouteShape {
  const char* method;
  const char* pattern;
  Access access;
};
constexpr RouteShape kRoutes[] = {
    {"POST", "/v1/events", Access::admin},
    {"GET", "/v1/events", Access::anyone},
    {"GET", "/v1/events/{event_id}", Access::anyone},
    {"GET", "/v1/events/{event_id}/availability", Access::anyone},
    {"GET", "/v1/events/{event_id}/sections/{section_id}/seats", Access::anyone},
    {"GET", "/v1/events/{event_id}/stats", Access::admin},
    {"POST", "/v1/events/{event_id}/holds", Access::buyer},
    {"GET", "/v1/holds/{hold_id}", Access::buyer},
    {"DELETE", "/v1/holds/{hold_id}", Access::buyer},
    {"POST", "/v1/holds/{hold_id}/checkout", Access::buyer},
    {"GET", "/v1/bookings/{booking_id}", Access::buyer},
    {"GET", "/v1/bookings", Access::buyer},
    {"POST", "/v1/bookings/{booking_id}/cancel", Access::buyer},
    {"POST", "/v1/events/{event_id}/waitlist", Access::buyer},
    {"GET", "/v1/waitlist/{entry_id}", Access::buyer},
    {"DELETE", "/v1/waitlist/{entry_id}", Access::buyer},
    {"GET", "/healthz", Access::anyone},
    {"GET", "/readyz", Access::anyone},
    {"GET", "/metrics", Access::anyone},
};

// Request headers a backend needs besides those the gateway sets itself.
constexpr const char* kForwardedRequestHeaders[] = {"Content-Type", "Idempotency-Key", "Accept"};

// Response headers that describe the backend's connection, not the answer.
bool is_hop_by_hop(std::string_view name) {
  for (const char* skip : {"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length",
                           "Content-Type", "Server", "Date", "TE", "Trailer", "Upgrade"}) {
    if (same_field_name(name, skip)) return true;
  }
  return false;
}

// As the server accepts an incoming X-Request-Id (server.cpp).
bool is_valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string_view role_name(RouteOwner owner) {
  return owner == RouteOwner::waitlist ? "waitlist" : "booking";
}

}  // namespace

RouteOwner owner_of(std::string_view pattern) {
  if (!pattern.starts_with("/v1/")) return RouteOwner::operations;
  if (pattern.starts_with("/v1/waitlist/") || pattern.ends_with("/waitlist")) {
    return RouteOwner::waitlist;
  }
  return RouteOwner::booking;
}

namespace {

struct Readiness {
  json::object engines;
  std::string failing;

  void add(const std::string& name, bool ready) {
    engines[name] = ready ? "ok" : "unavailable";
    if (!ready) failing += (failing.empty() ? "" : ", ") + name;
  }
  void run(const std::vector<ReadinessCheck>& checks) {
    for (const auto& check : checks) {
      bool ready = false;
      try {
        ready = check.ready();
      } catch (const std::exception&) {
        ready = false;
      }
      add(check.name, ready);
    }
  }
  HttpResponse response() {
    if (!failing.empty()) {
      auto response =
          protocol_problem(503, "not_ready", "Not ready", "engines not answering: " + failing);
      auto body = json::parse(response.body).as_object();
      body["engines"] = std::move(engines);
      response.body = json::serialize(body);
      return response;
    }
    return json_response(200, json::object{{"status", "ready"}, {"engines", std::move(engines)}});
  }
};

}  // namespace

HttpResponse readiness_response(const std::vector<ReadinessCheck>& checks) {
  Readiness readiness;
  readiness.run(checks);
  return readiness.response();
}

struct Gateway::Backend {
  RouteOwner owner;
  std::string url;                     // empty: in this process
  std::unique_ptr<SyncClient> client;  // set when remote
};

Gateway::Gateway(GatewayOptions options, const Clock& clock, RequestHandler* local)
    : options_(std::move(options)), clock_(clock), local_(local) {
  for (const auto& shape : kRoutes) {
    router_.add({shape.method, shape.pattern, shape.access, false, false, {}});
    owners_.push_back(owner_of(shape.pattern));
  }
  auto make_backend = [this](RouteOwner owner, const std::string& url) {
    auto backend = std::make_unique<Backend>();
    backend->owner = owner;
    backend->url = url;
    if (!url.empty()) {
      SyncClientOptions client;
      client.connections_max = options_.backend_connections_max;
      client.timeout = options_.forward_timeout;
      backend->client = std::make_unique<SyncClient>(url, client);
    } else if (!local_) {
      throw std::invalid_argument(std::string{role_name(owner)} +
                                  " routes have neither a backend URL nor a role in this process");
    }
    return backend;
  };
  booking_ = make_backend(RouteOwner::booking, options_.booking_url);
  waitlist_ = make_backend(RouteOwner::waitlist, options_.waitlist_url);
  std::vector<std::string> names;
  for (const auto& route : router_.routes()) names.push_back(route.method + " " + route.pattern);
  metrics_ = std::make_unique<Metrics>(std::move(names));
  rate_gate_ = std::make_unique<RateLimitGate>(options_.rate_limits, options_.rate_limiter, clock_,
                                               router_.routes());
}

Gateway::~Gateway() = default;

bool Gateway::needs_worker(const HttpRequest& request) const {
  const auto match = router_.match(request.method, request.path);
  const auto* found = std::get_if<Router::Match>(&match);
  if (!found) return false;
  switch (owners_[found->index]) {
    case RouteOwner::operations:
      return found->route->pattern == "/readyz";  // asks engines and backends
    case RouteOwner::booking:
      return booking_->client || local_->needs_worker(request);
    case RouteOwner::waitlist:
      return waitlist_->client || local_->needs_worker(request);
  }
  return true;
}

HttpResponse Gateway::handle(const HttpRequest& request) {
  // A StorageError here is, for instance, the shared rate limiter's store on a read route that
  // does not fail closed.
  return answer_and_record(request, *metrics_,
                           [&](size_t& route_index) { return dispatch(request, route_index); });
}

HttpResponse Gateway::dispatch(const HttpRequest& request, size_t& route_index) {
  auto match = match_route(router_, request);
  if (auto* refusal = std::get_if<HttpResponse>(&match)) return std::move(*refusal);
  auto& found = std::get<Router::Match>(match);
  route_index = found.index;
  const Route& route = *found.route;
  const RouteOwner owner = owners_[found.index];
  if (owner == RouteOwner::operations) return operations(route);
  Backend& backend = owner == RouteOwner::waitlist ? *waitlist_ : *booking_;
  // A role in this process runs the whole pipeline itself (JWT, limits, idempotency) once.
  if (!backend.client) return local_->handle(request);

  // Exactly the Api's order (api.cpp): per address before authentication, per buyer after.
  if (auto refused = rate_gate_->admit(found.index, RateScope::address, request.remote_address)) {
    return std::move(*refused);
  }
  auto authenticated = authenticate(request, options_.jwt, clock_.now());
  if (auto* refusal = std::get_if<HttpResponse>(&authenticated)) return std::move(*refusal);
  const auto& caller = std::get<Caller>(authenticated);
  if (auto refused = check_access(route.access, caller)) return std::move(*refused);
  if (auto refused = rate_gate_->admit(found.index, RateScope::buyer, caller.buyer)) {
    return std::move(*refused);
  }
  return forward(backend, request, caller);
}

HttpResponse Gateway::forward(Backend& backend, const HttpRequest& request, const Caller& caller) {
  HeaderList headers;
  for (const char* name : kForwardedRequestHeaders) {
    if (auto value = request.header(name)) headers.emplace_back(name, std::string{*value});
  }
  // The backend logs and answers under the id the client sees: the client's, or one made here.
  const auto incoming_id = request.header("X-Request-Id");
  const std::string request_id =
      incoming_id && is_valid_request_id(*incoming_id) ? std::string{*incoming_id} : new_id("req");
  headers.emplace_back("X-Request-Id", request_id);
  headers.emplace_back("X-Forwarded-For", request.remote_address);
  headers.emplace_back(std::string{kInternalSecretHeader}, options_.internal_secret);
  if (!caller.anonymous()) headers.emplace_back(std::string{kCallerHeader}, encode_caller(caller));
  const std::string target =
      request.query.empty() ? request.path : request.path + "?" + request.query;

  auto result = backend.client->request(request.method, target, request.body, headers);
  if (auto* error = std::get_if<ClientError>(&result)) {
    spdlog::warn("gateway: {} (request {})", error->detail, request_id);
    // Whether a backend that timed out acted on the request is unknown: a retry with the same
    // Idempotency-Key is safe either way.
    auto response = problem(
        make_error(Errc::unavailable, "the " + std::string{role_name(backend.owner)} +
                                          " service did not answer; retry later (with the same "
                                          "Idempotency-Key for a purchase)"));
    response.set_header("X-Request-Id", request_id);
    return response;
  }
  auto& answer = std::get<ClientResponse>(result);
  HttpResponse response;
  response.status = answer.status;
  response.content_type = std::string{answer.header("Content-Type").value_or("")};
  response.body = std::move(answer.body);
  for (auto& [name, value] : answer.headers) {
    if (!is_hop_by_hop(name)) response.set_header(std::move(name), std::move(value));
  }
  return response;
}

HttpResponse Gateway::operations(const Route& route) {
  if (route.pattern == "/readyz") {
    // The whole deployment behind this door: this process's dependencies, each backend, and
    // the engines each backend reports.
    Readiness readiness;
    readiness.run(options_.readiness);
    for (const auto* backend : {booking_.get(), waitlist_.get()}) {
      if (!backend->client) continue;
      const auto result = backend->client->get("/readyz", {}, options_.readiness_timeout);
      const auto* answer = std::get_if<ClientResponse>(&result);
      if (answer) {
        boost::system::error_code ec;
        const auto body = json::parse(answer->body, ec);
        if (!ec && body.is_object() && body.as_object().contains("engines") &&
            body.at("engines").is_object()) {
          for (const auto& [name, state] : body.at("engines").as_object()) {
            readiness.add(std::string{name}, state == "ok");
          }
        }
      }
      readiness.add(std::string{role_name(backend->owner)} + "_role",
                    answer && answer->status == 200);
    }
    return readiness.response();
  }
  if (route.pattern == "/metrics") {
    HttpResponse response;
    response.content_type = "text/plain; version=0.0.4";
    response.body = metrics_->render();
    return response;
  }
  return json_response(200, json::object{{"status", "ok"}});
}

bool OperationsHandler::needs_worker(const HttpRequest& request) const {
  return request.path == "/readyz";
}

HttpResponse OperationsHandler::handle(const HttpRequest& request) {
  if (request.path == "/healthz" && request.method == "GET") {
    return json_response(200, json::object{{"status", "ok"}});
  }
  if (request.path == "/readyz" && request.method == "GET") return readiness_response(checks_);
  return protocol_problem(404, "not_found", "Not found",
                          "no route " + request.path + " (this process runs no API role)");
}

}  // namespace boxoffice::http

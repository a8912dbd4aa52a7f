#pragma once
// The gateway role when other roles run in other processes: the public door that authenticates
// (JWT) and rate-limits exactly as the in-process Api does, then forwards each route to the role
// that owns it — waitlist routes to the `waitlist` role, every other /v1 route to the `booking`
// role — over pooled keep-alive HTTP/1.1 connections. A backend role in another process trusts a
// request only when it carries the internal secret (api.h: kInternalSecretHeader), and takes the
// caller the gateway verified from kCallerHeader. A role in this same process gets the request
// untouched and runs the whole pipeline itself.
//
// Also OperationsHandler: /healthz and /readyz only, for a process that serves no API route
// (`--roles payments`).

#include <memory>
#include <string>
#include <vector>

#include "http/api.h"
#include "http/metrics.h"
#include "http/rate_limit.h"
#include "http/request_handler.h"
#include "http/router.h"
#include "http/sync_client.h"
#include "ports/clock.h"

namespace boxoffice::http {

/// Which role answers a route.
enum class RouteOwner { booking, waitlist, operations };
RouteOwner owner_of(std::string_view pattern);

struct GatewayOptions {
  jwt::VerifierConfig jwt;
  RateLimitSettings rate_limits;
  std::shared_ptr<RateLimiter> rate_limiter;
  /// Sent to every backend in another process; they refuse /v1 requests without it.
  std::string internal_secret;
  /// "http://host:port" of each role in another process; empty: the role is in this process
  /// (the `local` handler answers its routes).
  std::string booking_url, waitlist_url;
  /// Connections to one backend, idle or busy. A request finding them all busy waits for one
  /// within forward_timeout. The worker pool bounds how many are ever busy at once anyway.
  size_t backend_connections_max = 64;
  /// One forwarded request: waiting for a connection, connecting, sending, and the backend's
  /// answer. A backend that does not answer in time gets its request a 503, never a hang.
  Millis forward_timeout{std::chrono::seconds{10}};
  /// How long /readyz waits for each backend's own /readyz.
  Millis readiness_timeout{std::chrono::seconds{1}};
  /// This process's own dependencies (the shared rate limiter's store, engines of local roles);
  /// /readyz adds one check per backend.
  std::vector<ReadinessCheck> readiness;
};

class Gateway final : public RequestHandler {
 public:
  /// `local` answers the routes of roles in this process (nullptr when there are none); it must
  /// outlive the gateway. Throws std::invalid_argument for a malformed backend URL.
  Gateway(GatewayOptions options, const Clock& clock, RequestHandler* local);
  ~Gateway() override;

  bool needs_worker(const HttpRequest& request) const override;
  HttpResponse handle(const HttpRequest& request) override;
  void connection_opened() override { metrics_->connection_opened(); }
  void connection_closed() override { metrics_->connection_closed(); }

 private:
  struct Backend;
  HttpResponse dispatch(const HttpRequest& request, size_t& route_index);
  HttpResponse forward(Backend& backend, const HttpRequest& request, const Caller& caller);
  HttpResponse operations(const Route& route);

  GatewayOptions options_;
  const Clock& clock_;
  RequestHandler* local_;
  Router router_;  // route shapes only: the handlers are the backends'
  std::vector<RouteOwner> owners_;
  std::unique_ptr<Backend> booking_, waitlist_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<RateLimitGate> rate_gate_;
};

/// Serves /healthz and /readyz (its `checks`); every other path is 404.
class OperationsHandler final : public RequestHandler {
 public:
  explicit OperationsHandler(std::vector<ReadinessCheck> checks) : checks_(std::move(checks)) {}
  bool needs_worker(const HttpRequest& request) const override;
  HttpResponse handle(const HttpRequest& request) override;

 private:
  std::vector<ReadinessCheck> checks_;
};

/// /readyz's answer: 200 {"status":"ready","engines":{name:"ok"}} or a 503 not_ready problem
/// naming what does not answer.
HttpResponse readiness_response(const std::vector<ReadinessCheck>& checks);

}  // namespace boxoffice::http

#pragma once
// The Booking API's request pipeline, independent of sockets: route → authenticate → idempotency
// → handler → problem mapping → metrics. The server calls needs_worker() to decide where a
// request runs (an I/O thread, or the bounded worker pool for blocking engines) and handle() to
// answer it.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "http/jwt.h"
#include "http/message.h"
#include "http/metrics.h"
#include "http/rate_limit.h"
#include "http/request_handler.h"
#include "http/router.h"
#include "ports/clock.h"
#include "ports/idempotency_store.h"
#include "services/booking_service.h"
#include "services/waitlist_service.h"

namespace boxoffice::http {

/// Answers /readyz: the engines this process depends on, and whether each answers.
struct ReadinessCheck {
  std::string name;
  std::function<bool()> ready;
};

struct ApiOptions {
  jwt::VerifierConfig jwt;
  Millis idempotency_lease{std::chrono::seconds{60}};
  std::vector<ReadinessCheck> readiness;
  /// The seat lock store is a remote engine (Redis): every route may block on it, so every route
  /// runs on the worker pool, not only those marked blocking (which touch the Bookings DB).
  bool every_route_blocks = false;
  /// Rate limits (rate_limit.h); no limiter: none.
  RateLimitSettings rate_limits;
  std::shared_ptr<RateLimiter> rate_limiter;
  /// Set when this Api serves behind a gateway in another process (roles run apart): every /v1
  /// request must carry this secret in X-Boxoffice-Internal-Secret (else 403), its caller is the
  /// one X-Boxoffice-Caller names, and JWT and rate limits are left to the gateway, which did
  /// them. Operations routes (/healthz, /readyz, /metrics) answer without it.
  std::string internal_secret;
};

/// How a gateway hands a request to a backend role in another process (gateway.h).
inline constexpr std::string_view kCallerHeader = "X-Boxoffice-Caller";
inline constexpr std::string_view kInternalSecretHeader = "X-Boxoffice-Internal-Secret";
/// X-Boxoffice-Caller's value, "sub=<percent-encoded sub>;admin=<0|1>". An anonymous caller is
/// sent without the header.
std::string encode_caller(const Caller& caller);
std::optional<Caller> decode_caller(std::string_view value);

/// The caller named by the request's bearer token (anonymous without one), or the 401 to send.
std::variant<Caller, HttpResponse> authenticate(const HttpRequest& request,
                                                const jwt::VerifierConfig& config, Timestamp now);
/// The 401 or 403 when `caller` may not use a route with this access; nullopt when they may.
std::optional<HttpResponse> check_access(Access access, const Caller& caller);

/// The answer to a request whose handling threw `error`: 503 for an engine that did not answer
/// (StorageError), 500 for anything else; logged.
HttpResponse failure_response(const HttpRequest& request, std::exception_ptr error);

/// What every front of the API (the Api, the Gateway) does around its own dispatch: an engine
/// that does not answer becomes 503, anything else unexpected 500, and the answer is counted in
/// `metrics` under the route index `dispatch` sets (unmatched until it sets one).
HttpResponse answer_and_record(const HttpRequest& request, Metrics& metrics,
                               const std::function<HttpResponse(size_t& route_index)>& dispatch);

/// The request's route, or the answer when there is none: 404, or 405 with Allow.
std::variant<Router::Match, HttpResponse> match_route(const Router& router,
                                                      const HttpRequest& request);

class Api final : public RequestHandler {
 public:
  Api(ApiOptions options, const Clock& clock, BookingService& bookings, WaitlistService& waitlist,
      IdempotencyStore& idempotency);

  /// True when the request's route may block on an engine.
  bool needs_worker(const HttpRequest& request) const override;
  HttpResponse handle(const HttpRequest& request) override;
  /// With remote engines: routes that have an async_handler (holds), unless an Idempotency-Key
  /// makes them read and write the idempotency store (which blocks).
  bool answers_async(const HttpRequest& request) const override;
  /// The same pipeline as handle(); the route's async_handler answers. A Seat Lock Store that
  /// lost the event's state declines (the worker's handle() rebuilds it).
  void async_handle(const HttpRequest& request, AsyncDone done) override;
  void connection_opened() override { metrics_->connection_opened(); }
  void connection_closed() override { metrics_->connection_closed(); }

  Metrics& metrics() { return *metrics_; }

 private:
  /// A request that passed routing, authentication, access and rate limits.
  struct Prepared {
    const Route* route;
    RouteContext context;
    /// The route and caller, or the refusal to send.
    using Outcome = std::variant<HttpResponse, Prepared>;
    using Done = std::function<void(Outcome)>;
  };
  /// Everything before the handler: routing (sets route_index), the caller, access and rate
  /// limits. `done` runs once. `async`: the rate limiter's store is asked without blocking, so
  /// `done` may run later on its client's thread (a failure after that point is answered as a
  /// response); otherwise before this returns.
  void prepare(const HttpRequest& request, size_t& route_index, bool async, Prepared::Done done);
  /// The rate gate's check, blocking or not.
  void admit(bool async, size_t route_index, RateScope scope, std::string_view who,
             RateLimitGate::Admitted next);
  HttpResponse dispatch(const HttpRequest& request, size_t& route_index);
  HttpResponse run_idempotent(const Route& route, const RouteContext& context,
                              std::string_view key);
  void add_routes();

  ApiOptions options_;
  const Clock& clock_;
  BookingService& bookings_;
  WaitlistService& waitlist_;
  IdempotencyStore& idempotency_;
  Router router_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<RateLimitGate> rate_gate_;
};

}  // namespace boxoffice::http

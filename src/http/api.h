#pragma once
// The Booking API's request pipeline, independent of sockets: route → authenticate → idempotency
// → handler → problem mapping → metrics. The server calls needs_worker() to decide where a
// request runs (an I/O thread, or the bounded worker pool for blocking engines) and handle() to
// answer it.

#include <memory>
#include <string>

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
};

class Api final : public RequestHandler {
 public:
  Api(ApiOptions options, const Clock& clock, BookingService& bookings, WaitlistService& waitlist,
      IdempotencyStore& idempotency);

  /// True when the request's route may block on an engine.
  bool needs_worker(const HttpRequest& request) const override;
  HttpResponse handle(const HttpRequest& request) override;
  void connection_opened() override { metrics_->connection_opened(); }
  void connection_closed() override { metrics_->connection_closed(); }

  Metrics& metrics() { return *metrics_; }

 private:
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

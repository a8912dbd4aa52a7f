#pragma once
// The simulator's HTTP API, Stripe-like (amounts in minor units, problem+json errors):
//
//   POST /v1/charges                      Idempotency-Key required;
//                                         {"amount", "currency", "payment_method"}
//        201 the charge, "status": "succeeded"
//        402 the charge, "status": "declined", "decline_code": "card_declined"
//        400 not JSON, or no Idempotency-Key        422 invalid_request, idempotency_key_reused
//        409 request_in_progress                    503 unavailable (injected; nothing recorded)
//        The same key and request again: the first status and body, "Idempotent-Replayed: true".
//   GET  /v1/charges?idempotency_key=K    200 the charge as it is now; 404 resource_missing
//   POST /v1/charges/{charge_id}/refunds  Idempotency-Key optional
//        201 the refund {"id": "re_...", "charge", "amount", "currency", "status": "succeeded"};
//        200 the same refund when the charge was already refunded (201 again when the retry
//        carries the Idempotency-Key that created it); 404 resource_missing;
//        422 charge_not_refundable (declined), idempotency_key_reused
//   GET  /v1/ledger                       {"charges": [{"idempotency_key", "amount", "currency",
//                                         "payment_method", "outcome", "refunded"}],
//                                         "refunds": [{"id", "charge", "idempotency_key",
//                                         "amount", "currency"}]}  (CONTRACT.md)
//   GET  /healthz                         {"status": "ok"}

#include "http/request_handler.h"
#include "http/router.h"
#include "payment_sim/simulator.h"

namespace boxoffice::payment_sim {

class SimulatorApi final : public http::RequestHandler {
 public:
  explicit SimulatorApi(Simulator& simulator);

  /// Every route but /healthz may sleep (latency, slow_delay) or wait for the simulator's lock.
  bool needs_worker(const http::HttpRequest& request) const override;
  http::HttpResponse handle(const http::HttpRequest& request) override;

 private:
  void add_routes();

  Simulator& simulator_;
  http::Router router_;
};

}  // namespace boxoffice::payment_sim

#pragma once
// PaymentProvider over HTTP, speaking the Stripe-like API of `boxoffice payment-sim`
// (payment_sim/sim_api.h). A real provider is another adapter of the same port.

#include <cstddef>
#include <string_view>

#include "domain/time.h"
#include "http/sync_client.h"
#include "ports/payment_provider.h"

namespace boxoffice {

class HttpPaymentProvider final : public PaymentProvider {
 public:
  /// `base_url`: "http://host:port". Every HTTP call (one attempt) gives up after
  /// `attempt_timeout`; retrying is the caller's business. Throws std::invalid_argument for a
  /// base URL the HTTP client cannot use.
  explicit HttpPaymentProvider(std::string_view base_url, Millis attempt_timeout = Millis{2000},
                               size_t connections_max = 8);

  /// 201 → approved, 402 → declined; anything else (409 in progress, 5xx, a timeout, a body that
  /// is not a charge) is a ProviderError.
  std::variant<Charge, ProviderError> charge(const ChargeRequest& request) override;
  std::variant<std::optional<Charge>, ProviderError> find_charge(
      const std::string& idempotency_key) override;
  /// Finds the charge, then refunds it with Idempotency-Key "refund:<key>".
  std::variant<std::optional<Charge>, ProviderError> refund(
      const std::string& idempotency_key) override;

 private:
  http::SyncClient client_;
  Millis attempt_timeout_;
};

}  // namespace boxoffice

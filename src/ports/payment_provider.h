#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace boxoffice {

struct ChargeRequest {
  /// The booking id: the provider makes at most one charge per key, whatever the retries.
  std::string idempotency_key;
  int64_t amount = 0;  // minor units
  std::string currency;
  std::string payment_method;
};

enum class ChargeStatus { approved, declined };

struct Charge {
  std::string id;
  std::string idempotency_key;
  int64_t amount = 0;
  std::string currency;
  ChargeStatus status = ChargeStatus::declined;
  bool refunded = false;
  std::string decline_reason;  // declined only
};

/// A failure that says nothing about the charge: timeout, connection refused, 5xx, garbage.
/// Retrying with the same idempotency key is safe.
struct ProviderError {
  std::string detail;
};

/// Payment provider: charges, looks up and refunds, always by the booking's idempotency key.
/// Every call has a timeout and returns ProviderError rather than blocking past it.
/// Thread-safe; calls block (run them on a worker, never on an I/O thread).
class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;

  /// Approved or declined; the same key returns the first charge's result again.
  virtual std::variant<Charge, ProviderError> charge(const ChargeRequest& request) = 0;

  /// What really happened to the charge with this key: nullopt when none was ever made.
  virtual std::variant<std::optional<Charge>, ProviderError> find_charge(
      const std::string& idempotency_key) = 0;

  /// Refunds the approved charge with this key, once: refunding again returns the same result.
  /// A key with no approved charge is returned as nullopt (nothing to refund).
  virtual std::variant<std::optional<Charge>, ProviderError> refund(
      const std::string& idempotency_key) = 0;
};

}  // namespace boxoffice

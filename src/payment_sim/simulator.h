#pragma once
// The card processor that `boxoffice payment-sim` pretends to be: its rules, without I/O. The
// HTTP side (sim_api.h) maps these values to a Stripe-like API and does the waiting.

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "domain/time.h"

namespace boxoffice::payment_sim {

// The test payment methods of CONTRACT.md; any other is an invalid request.
inline constexpr std::string_view kCardOk = "pm_card_ok";
inline constexpr std::string_view kCardDeclined = "pm_card_declined";
// Approved, but answered only after SimulatorOptions::slow_delay.
inline constexpr std::string_view kCardSlow = "pm_card_slow";
// Fails transiently (nothing recorded) kFlakyFailures times per idempotency key, then approved.
inline constexpr std::string_view kCardFlaky = "pm_card_flaky";
inline constexpr int kFlakyFailures = 2;

struct SimulatorOptions {
  /// Every charge request waits this long, like a real processor's network and risk checks. A new
  /// charge waits while its key is in flight, which is when a concurrent retry gets 409.
  Millis latency{0};
  /// Fraction of new charge requests answered 503 before anything is recorded.
  double error_rate = 0.0;
  /// Fraction of new charges that are recorded but answered only after slow_delay: the caller
  /// times out without knowing the outcome, and must ask again with the same key.
  double timeout_rate = 0.0;
  /// Longer than the provider adapter's default per-attempt timeout (2000 ms).
  Millis slow_delay{3000};
  /// Same seed and same sequence of requests: same injected failures. nullopt: a random seed.
  std::optional<uint64_t> seed;
  /// The ledger is memory: beyond this many charges, new ones are refused with 503.
  size_t charges_max = 1'000'000;
};

/// A new charge to make (or find again) under an idempotency key.
struct ChargeInput {
  std::string idempotency_key;
  int64_t amount = 0;  // minor units
  std::string currency;
  std::string payment_method;
};

enum class Outcome { approved, declined };

struct ChargeRecord {
  std::string id;  // "ch_..."
  std::string idempotency_key;
  int64_t amount = 0;
  std::string currency;
  std::string payment_method;
  Outcome outcome = Outcome::declined;
  std::string decline_code;  // declined only: "card_declined"
  bool refunded = false;
  std::string refund_id;  // when refunded
};

struct RefundRecord {
  std::string id;  // "re_..."
  std::string charge_id;
  std::string charge_idempotency_key;
  int64_t amount = 0;
  std::string currency;
  /// The Idempotency-Key of the refund request that created it, if it had one.
  std::optional<std::string> idempotency_key;
};

/// A charge made now, or the one made earlier under the same key (`replayed`: the charge as it
/// was first answered, so the response repeats byte for byte).
struct Charged {
  ChargeRecord charge;
  bool replayed = false;
  /// How long to hold the answer back: slow_delay for pm_card_slow and injected timeouts, the
  /// latency for a replay (a new charge has already waited it in flight), else zero.
  Millis delay{0};
};

/// Nothing was recorded; retrying with the same key is safe.
struct TransientFailure {
  std::string detail;
};

enum class Refusal {
  invalid_request,         // 422: a field breaks a rule (unknown payment method included)
  idempotency_key_reused,  // 422: the key was used with a different request
  request_in_progress,     // 409: the first request with this key has not been answered
  charge_not_found,        // 404
  not_refundable,          // 422: the charge was declined
};

struct Refused {
  Refusal reason;
  std::string detail;
};

using ChargeReply = std::variant<Charged, TransientFailure, Refused>;

enum class RefundKind {
  created,   // a refund made now
  replayed,  // asked again with the Idempotency-Key that created it
  existing,  // asked again without it: the charge's one refund
};

struct Refunded {
  RefundRecord refund;
  RefundKind kind = RefundKind::created;
};

using RefundReply = std::variant<Refunded, Refused>;

struct Ledger {
  std::vector<ChargeRecord> charges;  // every charge actually made, in order
  std::vector<RefundRecord> refunds;
};

/// Thread-safe. Never sleeps: it says how long to wait, and calls `wait` for the in-flight part.
class Simulator {
 public:
  explicit Simulator(SimulatorOptions options = {});

  /// Makes the charge once per idempotency key; the same key and request later gets the same
  /// charge back. `wait` is called without the lock, while the key is in flight, with the latency
  /// (not at all when the latency is zero).
  ChargeReply charge(const ChargeInput& input, const std::function<void(Millis)>& wait = {});

  /// The charge made under this key, as it is now (refunded or not).
  std::optional<ChargeRecord> find_by_key(std::string_view idempotency_key) const;

  /// One refund per approved charge: asking again returns that refund.
  RefundReply refund(std::string_view charge_id, std::optional<std::string> idempotency_key);

  Ledger ledger() const;

  const SimulatorOptions& options() const { return options_; }
  uint64_t seed() const { return seed_; }

 private:
  double draw();  // uniform in [0, 1), from the seeded generator; needs mutex_

  const SimulatorOptions options_;
  const uint64_t seed_;

  mutable std::mutex mutex_;
  std::mt19937_64 random_;
  std::vector<ChargeRecord> charges_;
  std::vector<ChargeRecord> first_replies_;  // parallel to charges_: the charge as first answered
  std::vector<ChargeInput> requests_;        // parallel to charges_: for idempotency mismatches
  std::unordered_map<std::string, size_t> by_key_;
  std::unordered_map<std::string, size_t> by_id_;
  std::unordered_set<std::string> in_flight_;
  std::unordered_map<std::string, int> flaky_failures_;  // until the charge is made
  std::vector<RefundRecord> refunds_;
  std::unordered_map<std::string, size_t> refund_by_charge_id_;
  std::unordered_map<std::string, std::string> refund_key_to_charge_id_;
};

}  // namespace boxoffice::payment_sim

#include "payment_sim/simulator.h"

#include "domain/ids.h"

namespace boxoffice::payment_sim {

namespace {

// Stripe's ceiling for one charge (99,999,999 minor units): anything above is a caller's bug.
constexpr int64_t kAmountMax = 99'999'999;

bool is_known_method(std::string_view method) {
  return method == kCardOk || method == kCardDeclined || method == kCardSlow ||
         method == kCardFlaky;
}

std::optional<std::string> invalid_field(const ChargeInput& input) {
  const auto& key = input.idempotency_key;
  if (key.empty() || key.size() > 255) return "the Idempotency-Key must be 1-255 characters";
  for (const unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) return "the Idempotency-Key must be visible ASCII characters";
  }
  if (input.amount <= 0 || input.amount > kAmountMax) {
    return "amount must be an integer from 1 to " + std::to_string(kAmountMax) + " (minor units)";
  }
  bool currency_ok = input.currency.size() == 3;
  for (const char c : input.currency) currency_ok = currency_ok && c >= 'A' && c <= 'Z';
  if (!currency_ok) return "currency must be an ISO 4217 code in capitals, like \"USD\"";
  if (!is_known_method(input.payment_method)) {
    return "unknown payment_method \"" + input.payment_method +
           "\"; the simulator knows pm_card_ok, pm_card_declined, pm_card_slow, pm_card_flaky";
  }
  return std::nullopt;
}

bool same_request(const ChargeInput& a, const ChargeInput& b) {
  return a.amount == b.amount && a.currency == b.currency && a.payment_method == b.payment_method;
}

uint64_t pick_seed(const std::optional<uint64_t>& seed) {
  if (seed) return *seed;
  std::random_device device;
  return (uint64_t{device()} << 32) | device();
}

}  // namespace

Simulator::Simulator(SimulatorOptions options)
    : options_(std::move(options)), seed_(pick_seed(options_.seed)), random_(seed_) {}

double Simulator::draw() {
  // 53 random bits make an exact double in [0, 1); std::uniform_real_distribution is not
  // specified bit for bit, and a seed should replay the same run with any standard library.
  return static_cast<double>(random_() >> 11) * 0x1.0p-53;
}

ChargeReply Simulator::charge(const ChargeInput& input, const std::function<void(Millis)>& wait) {
  if (auto problem = invalid_field(input)) return Refused{Refusal::invalid_request, *problem};
  const auto& key = input.idempotency_key;
  {
    std::lock_guard lock(mutex_);
    if (auto found = by_key_.find(key); found != by_key_.end()) {
      if (!same_request(requests_[found->second], input)) {
        return Refused{Refusal::idempotency_key_reused,
                       "this Idempotency-Key was used with a different amount, currency or "
                       "payment method"};
      }
      return Charged{first_replies_[found->second], true, options_.latency};
    }
    if (in_flight_.contains(key)) {
      return Refused{Refusal::request_in_progress,
                     "the first request with this Idempotency-Key has not been answered yet"};
    }
    in_flight_.insert(key);
  }

  if (wait && options_.latency.count() > 0) wait(options_.latency);

  std::lock_guard lock(mutex_);
  in_flight_.erase(key);
  // Both draws happen on every new charge, so the outcomes of a seeded run depend only on the
  // order of requests, not on the rates' values or the methods used.
  const bool inject_error = draw() < options_.error_rate;
  const bool inject_timeout = draw() < options_.timeout_rate;
  if (inject_error) return TransientFailure{"injected transient error (error_rate)"};
  if (input.payment_method == kCardFlaky) {
    auto& failures = flaky_failures_[key];
    if (failures < kFlakyFailures) {
      ++failures;
      return TransientFailure{"pm_card_flaky: transient failure " + std::to_string(failures) +
                              " of " + std::to_string(kFlakyFailures)};
    }
    flaky_failures_.erase(key);
  }
  if (charges_.size() >= options_.charges_max) {
    return TransientFailure{"the simulator's ledger is full (" +
                            std::to_string(options_.charges_max) + " charges); restart it"};
  }

  ChargeRecord charge;
  charge.id = new_id("ch");
  charge.idempotency_key = key;
  charge.amount = input.amount;
  charge.currency = input.currency;
  charge.payment_method = input.payment_method;
  if (input.payment_method == kCardDeclined) {
    charge.outcome = Outcome::declined;
    charge.decline_code = "card_declined";
  } else {
    charge.outcome = Outcome::approved;
  }
  const size_t index = charges_.size();
  charges_.push_back(charge);
  first_replies_.push_back(charge);
  requests_.push_back(input);
  by_key_.emplace(key, index);
  by_id_.emplace(charge.id, index);

  const bool slow = input.payment_method == kCardSlow || inject_timeout;
  return Charged{std::move(charge), false, slow ? options_.slow_delay : Millis{0}};
}

std::optional<ChargeRecord> Simulator::find_by_key(std::string_view idempotency_key) const {
  std::lock_guard lock(mutex_);
  const auto found = by_key_.find(std::string{idempotency_key});
  if (found == by_key_.end()) return std::nullopt;
  return charges_[found->second];
}

RefundReply Simulator::refund(std::string_view charge_id,
                              std::optional<std::string> idempotency_key) {
  std::lock_guard lock(mutex_);
  const auto found = by_id_.find(std::string{charge_id});
  if (found == by_id_.end()) {
    return Refused{Refusal::charge_not_found, "no charge " + std::string{charge_id}};
  }
  auto& charge = charges_[found->second];
  if (idempotency_key) {
    const auto used = refund_key_to_charge_id_.find(*idempotency_key);
    if (used != refund_key_to_charge_id_.end() && used->second != charge.id) {
      return Refused{Refusal::idempotency_key_reused,
                     "this Idempotency-Key was used to refund another charge"};
    }
  }
  if (charge.outcome != Outcome::approved) {
    return Refused{Refusal::not_refundable,
                   "charge " + charge.id + " was declined: nothing to refund"};
  }
  if (const auto existing = refund_by_charge_id_.find(charge.id);
      existing != refund_by_charge_id_.end()) {
    const auto& refund = refunds_[existing->second];
    const bool same_key = idempotency_key && refund.idempotency_key == idempotency_key;
    return Refunded{refund, same_key ? RefundKind::replayed : RefundKind::existing};
  }

  RefundRecord refund;
  refund.id = new_id("re");
  refund.charge_id = charge.id;
  refund.charge_idempotency_key = charge.idempotency_key;
  refund.amount = charge.amount;
  refund.currency = charge.currency;
  refund.idempotency_key = idempotency_key;
  charge.refunded = true;
  charge.refund_id = refund.id;
  refund_by_charge_id_.emplace(charge.id, refunds_.size());
  if (idempotency_key) refund_key_to_charge_id_.emplace(*idempotency_key, charge.id);
  refunds_.push_back(refund);
  return Refunded{std::move(refund), RefundKind::created};
}

Ledger Simulator::ledger() const {
  std::lock_guard lock(mutex_);
  return Ledger{charges_, refunds_};
}

}  // namespace boxoffice::payment_sim

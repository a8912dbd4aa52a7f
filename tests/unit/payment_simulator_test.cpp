// The card processor's rules (payment_sim/simulator.h), without HTTP and without sleeping: the
// simulator says how long to wait and these tests only read the number.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "payment_sim/simulator.h"

namespace boxoffice::payment_sim {
namespace {

using namespace std::chrono_literals;

ChargeInput input(std::string key, std::string method = "pm_card_ok", int64_t amount = 5000,
                  std::string currency = "USD") {
  return {std::move(key), amount, std::move(currency), std::move(method)};
}

// By value: the reply is usually a temporary.
Charged charged(const ChargeReply& reply) {
  const auto* ok = std::get_if<Charged>(&reply);
  if (!ok) {
    ADD_FAILURE() << "expected a charge, got alternative " << reply.index();
    return {};
  }
  return *ok;
}

Refusal refusal(const ChargeReply& reply) {
  const auto* refused = std::get_if<Refused>(&reply);
  if (!refused) {
    ADD_FAILURE() << "expected a refusal, got alternative " << reply.index();
    return Refusal::charge_not_found;
  }
  return refused->reason;
}

bool transient(const ChargeReply& reply) { return std::holds_alternative<TransientFailure>(reply); }

TEST(PaymentSimulator, CardOkIsApprovedAtOnce) {
  Simulator sim;
  const auto& charge = charged(sim.charge(input("b1")));
  EXPECT_EQ(charge.charge.outcome, Outcome::approved);
  EXPECT_EQ(charge.charge.idempotency_key, "b1");
  EXPECT_EQ(charge.charge.amount, 5000);
  EXPECT_EQ(charge.charge.currency, "USD");
  EXPECT_EQ(charge.charge.payment_method, "pm_card_ok");
  EXPECT_EQ(charge.charge.id.rfind("ch_", 0), 0u) << charge.charge.id;
  EXPECT_FALSE(charge.replayed);
  EXPECT_EQ(charge.delay, 0ms);
}

TEST(PaymentSimulator, CardDeclinedIsDeclinedWithACode) {
  Simulator sim;
  const auto& charge = charged(sim.charge(input("b1", "pm_card_declined")));
  EXPECT_EQ(charge.charge.outcome, Outcome::declined);
  EXPECT_EQ(charge.charge.decline_code, "card_declined");
}

TEST(PaymentSimulator, CardSlowIsRecordedAtOnceButAnsweredAfterTheSlowDelay) {
  SimulatorOptions options;
  options.slow_delay = 1234ms;
  Simulator sim(options);
  const auto& first = charged(sim.charge(input("b1", "pm_card_slow")));
  EXPECT_EQ(first.charge.outcome, Outcome::approved);
  EXPECT_EQ(first.delay, 1234ms);
  ASSERT_TRUE(sim.find_by_key("b1").has_value()) << "recorded before the answer goes out";

  // The caller timed out and retries: the stored result, without the delay.
  const auto& retry = charged(sim.charge(input("b1", "pm_card_slow")));
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.charge.id, first.charge.id);
  EXPECT_EQ(retry.delay, 0ms);
  EXPECT_EQ(sim.ledger().charges.size(), 1u);
}

TEST(PaymentSimulator, DefaultSlowDelayOutlastsTheAdaptersAttemptTimeout) {
  EXPECT_GT(SimulatorOptions{}.slow_delay, 2000ms);
}

TEST(PaymentSimulator, CardFlakyFailsTwiceRecordingNothingThenIsApproved) {
  Simulator sim;
  EXPECT_TRUE(transient(sim.charge(input("b1", "pm_card_flaky"))));
  EXPECT_TRUE(sim.ledger().charges.empty());
  EXPECT_FALSE(sim.find_by_key("b1").has_value());
  EXPECT_TRUE(transient(sim.charge(input("b1", "pm_card_flaky"))));
  EXPECT_TRUE(sim.ledger().charges.empty());
  const auto& third = charged(sim.charge(input("b1", "pm_card_flaky")));
  EXPECT_EQ(third.charge.outcome, Outcome::approved);
  EXPECT_FALSE(third.replayed);
  EXPECT_TRUE(charged(sim.charge(input("b1", "pm_card_flaky"))).replayed);
  EXPECT_EQ(sim.ledger().charges.size(), 1u);

  // The count is per key: another booking with a flaky card fails twice too.
  EXPECT_TRUE(transient(sim.charge(input("b2", "pm_card_flaky"))));
}

TEST(PaymentSimulator, BadInputIsRefusedAndRecordsNothing) {
  Simulator sim;
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_stolen"))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_ok", 0))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_ok", -5))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_ok", 100'000'000))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_ok", 5000, "usd"))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_ok", 5000, "EURO"))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input(""))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input(std::string(256, 'k')))), Refusal::invalid_request);
  EXPECT_EQ(refusal(sim.charge(input("has space"))), Refusal::invalid_request);
  EXPECT_TRUE(sim.ledger().charges.empty());
  // A refused request does not burn its key.
  EXPECT_FALSE(charged(sim.charge(input("b1"))).replayed);
  EXPECT_FALSE(charged(sim.charge(input(std::string(255, 'k')))).replayed);
}

TEST(PaymentSimulator, SameKeyAndRequestReplaysTheFirstAnswerWithoutASecondCharge) {
  Simulator sim;
  const auto first = charged(sim.charge(input("b1", "pm_card_declined")));
  const auto again = charged(sim.charge(input("b1", "pm_card_declined")));
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.charge.id, first.charge.id);
  EXPECT_EQ(again.charge.outcome, Outcome::declined);
  EXPECT_EQ(again.charge.decline_code, "card_declined");
  EXPECT_EQ(sim.ledger().charges.size(), 1u);
}

TEST(PaymentSimulator, SameKeyWithAnotherRequestIsRefused) {
  Simulator sim;
  charged(sim.charge(input("b1", "pm_card_ok", 5000)));
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_ok", 5001))), Refusal::idempotency_key_reused);
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_ok", 5000, "EUR"))),
            Refusal::idempotency_key_reused);
  EXPECT_EQ(refusal(sim.charge(input("b1", "pm_card_declined", 5000))),
            Refusal::idempotency_key_reused);
  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.charges.size(), 1u);
  EXPECT_EQ(ledger.charges[0].amount, 5000);
}

TEST(PaymentSimulator, AKeyInFlightIsRefusedUntilTheFirstRequestIsDecided) {
  SimulatorOptions options;
  options.latency = 50ms;
  Simulator sim(options);
  std::vector<Millis> waits;
  std::optional<ChargeReply> concurrent;
  const auto first = sim.charge(input("b1"), [&](Millis latency) {
    waits.push_back(latency);
    // Another attempt with the key arrives while the first is in flight.
    concurrent = sim.charge(input("b1"));
  });
  EXPECT_EQ(waits, std::vector<Millis>{50ms});
  ASSERT_TRUE(concurrent.has_value());
  EXPECT_EQ(refusal(*concurrent), Refusal::request_in_progress);
  EXPECT_EQ(charged(first).charge.outcome, Outcome::approved);
  // Decided: now a retry is a replay, answered after the latency (a real round trip).
  const auto& retry = charged(sim.charge(input("b1")));
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.delay, 50ms);
  EXPECT_EQ(sim.ledger().charges.size(), 1u);
}

TEST(PaymentSimulator, TheLedgerHasOneEntryPerChargeMadeInOrder) {
  Simulator sim;
  charged(sim.charge(input("a", "pm_card_ok", 100)));
  charged(sim.charge(input("a", "pm_card_ok", 100)));
  charged(sim.charge(input("b", "pm_card_declined", 200)));
  for (int i = 0; i < 3; ++i) (void)sim.charge(input("c", "pm_card_flaky", 300));
  charged(sim.charge(input("d", "pm_card_slow", 400)));
  (void)sim.charge(input("e", "pm_card_unknown", 500));

  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.charges.size(), 4u);
  const std::vector<std::string> keys{"a", "b", "c", "d"};
  const std::vector<Outcome> outcomes{Outcome::approved, Outcome::declined, Outcome::approved,
                                      Outcome::approved};
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(ledger.charges[i].idempotency_key, keys[i]);
    EXPECT_EQ(ledger.charges[i].outcome, outcomes[i]);
    EXPECT_EQ(ledger.charges[i].amount, static_cast<int64_t>(100 * (i + 1)));
    EXPECT_FALSE(ledger.charges[i].refunded);
  }
  EXPECT_TRUE(ledger.refunds.empty());
}

TEST(PaymentSimulator, AnApprovedChargeIsRefundedOnce) {
  Simulator sim;
  const auto charge = charged(sim.charge(input("b1"))).charge;
  const auto first = std::get<Refunded>(sim.refund(charge.id, "refund:b1"));
  EXPECT_EQ(first.kind, RefundKind::created);
  EXPECT_EQ(first.refund.id.rfind("re_", 0), 0u);
  EXPECT_EQ(first.refund.charge_id, charge.id);
  EXPECT_EQ(first.refund.amount, 5000);

  const auto replay = std::get<Refunded>(sim.refund(charge.id, "refund:b1"));
  EXPECT_EQ(replay.kind, RefundKind::replayed);
  EXPECT_EQ(replay.refund.id, first.refund.id);
  const auto keyless = std::get<Refunded>(sim.refund(charge.id, std::nullopt));
  EXPECT_EQ(keyless.kind, RefundKind::existing);
  EXPECT_EQ(keyless.refund.id, first.refund.id);

  const auto ledger = sim.ledger();
  ASSERT_EQ(ledger.refunds.size(), 1u);
  EXPECT_EQ(ledger.refunds[0].charge_idempotency_key, "b1");
  ASSERT_EQ(ledger.charges.size(), 1u);
  EXPECT_TRUE(ledger.charges[0].refunded);
  EXPECT_TRUE(sim.find_by_key("b1")->refunded);
  EXPECT_EQ(sim.find_by_key("b1")->refund_id, first.refund.id);
  // The charge request replayed later still repeats its first answer.
  const auto replayed_charge = charged(sim.charge(input("b1")));
  EXPECT_TRUE(replayed_charge.replayed);
  EXPECT_FALSE(replayed_charge.charge.refunded);
}

TEST(PaymentSimulator, DeclinedAndUnknownChargesAreNotRefundable) {
  Simulator sim;
  const auto declined = charged(sim.charge(input("b1", "pm_card_declined"))).charge;
  EXPECT_EQ(std::get<Refused>(sim.refund(declined.id, std::nullopt)).reason,
            Refusal::not_refundable);
  EXPECT_EQ(std::get<Refused>(sim.refund("ch_nope", std::nullopt)).reason,
            Refusal::charge_not_found);
  EXPECT_TRUE(sim.ledger().refunds.empty());
  EXPECT_FALSE(sim.find_by_key("b1")->refunded);
}

TEST(PaymentSimulator, ARefundKeyCannotRefundAnotherCharge) {
  Simulator sim;
  const auto a = charged(sim.charge(input("a"))).charge;
  const auto b = charged(sim.charge(input("b"))).charge;
  ASSERT_TRUE(std::holds_alternative<Refunded>(sim.refund(a.id, "k")));
  EXPECT_EQ(std::get<Refused>(sim.refund(b.id, "k")).reason, Refusal::idempotency_key_reused);
  EXPECT_EQ(sim.ledger().refunds.size(), 1u);
}

std::vector<bool> failure_pattern(uint64_t seed, double error_rate, int requests) {
  SimulatorOptions options;
  options.seed = seed;
  options.error_rate = error_rate;
  Simulator sim(options);
  std::vector<bool> failed;
  for (int i = 0; i < requests; ++i) {
    failed.push_back(transient(sim.charge(input("k" + std::to_string(i)))));
  }
  size_t failures = 0;
  for (bool f : failed) failures += f;
  EXPECT_EQ(sim.ledger().charges.size(), failed.size() - failures)
      << "an injected error records nothing";
  return failed;
}

TEST(PaymentSimulator, InjectedErrorsFollowTheSeed) {
  const auto run = failure_pattern(42, 0.3, 200);
  EXPECT_EQ(failure_pattern(42, 0.3, 200), run);
  EXPECT_NE(failure_pattern(43, 0.3, 200), run);
  const auto failures = std::count(run.begin(), run.end(), true);
  EXPECT_GT(failures, 30);  // 60 expected; these bounds are ~5 standard deviations away
  EXPECT_LT(failures, 95);

  const auto none = failure_pattern(42, 0.0, 50);
  EXPECT_EQ(std::count(none.begin(), none.end(), true), 0);
  const auto all = failure_pattern(42, 1.0, 50);
  EXPECT_EQ(std::count(all.begin(), all.end(), true), 50);
}

TEST(PaymentSimulator, AnInjectedErrorLeavesTheKeyFreeForTheRetry) {
  SimulatorOptions options;
  options.seed = 7;
  options.error_rate = 0.5;
  Simulator sim(options);
  int attempts = 0;
  ChargeReply reply = TransientFailure{};
  while (transient(reply) && attempts < 64) {
    reply = sim.charge(input("b1"));
    ++attempts;
  }
  EXPECT_FALSE(charged(reply).replayed);
  EXPECT_EQ(sim.ledger().charges.size(), 1u);
}

TEST(PaymentSimulator, InjectedTimeoutsRecordTheChargeAndDelayTheAnswer) {
  SimulatorOptions options;
  options.seed = 1;
  options.timeout_rate = 1.0;
  options.slow_delay = 900ms;
  Simulator sim(options);
  const auto& first = charged(sim.charge(input("b1", "pm_card_declined")));
  EXPECT_EQ(first.delay, 900ms);
  EXPECT_EQ(sim.ledger().charges.size(), 1u);
  EXPECT_EQ(charged(sim.charge(input("b1", "pm_card_declined"))).delay, 0ms);
}

TEST(PaymentSimulator, AFullLedgerRefusesNewChargesTransiently) {
  SimulatorOptions options;
  options.charges_max = 2;
  Simulator sim(options);
  charged(sim.charge(input("a")));
  charged(sim.charge(input("b")));
  EXPECT_TRUE(transient(sim.charge(input("c"))));
  EXPECT_TRUE(charged(sim.charge(input("a"))).replayed);
}

}  // namespace
}  // namespace boxoffice::payment_sim

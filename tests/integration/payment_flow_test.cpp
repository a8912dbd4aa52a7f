// The payment pipeline end to end: `boxoffice serve` charging through a separate, real
// `boxoffice payment-sim` process, checked against the simulator's audit ledger.
#include <gtest/gtest.h>

#include "integration/api_fixture.h"
#include "support/child_process.h"
#include "support/free_port.h"
#include "support/payment_sim_process.h"

namespace boxoffice::testing::api {
namespace {

/// A real payment-sim process on a free port.
struct PaymentSim : PaymentSimProcess {
  PaymentSim() : PaymentSimProcess(BOXOFFICE_BINARY, {"--slow-delay-ms=2500"}) {}
};

class PaymentFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    // A short visibility timeout so a job whose worker died is delivered again within the test;
    // it is still longer than one attempt (the provider timeout, 2 s).
    options.args = {"--payment-provider-url=" + sim.url(), "--payment-visibility-seconds=3"};
    server = std::make_unique<ServerProcess>(options);
    admin = server->client();
    admin.bearer = server->token("ops", {"admin"});
    alice = server->client();
    alice.bearer = server->token("alice-payments");
    auto event = expect_status(admin.post("/v1/events", text(event_body())), 201, "create event");
    event_id = str(event.at("id"));
  }

  /// Holds one general seat and checks it out with `method`; returns the booking id.
  std::string book(const std::string& method) {
    auto hold = expect_status(
        alice.post("/v1/events/" + event_id + "/holds", text(quantity_body("floor", 1))), 201,
        "hold");
    auto booking = expect_status(alice.post("/v1/holds/" + str(hold.at("id")) + "/checkout",
                                            text(json::object{{"payment_method", method}})),
                                 202, "checkout");
    EXPECT_EQ(booking.at("status"), "pending_payment");
    return str(booking.at("id"));
  }

  PaymentSim sim;
  std::unique_ptr<ServerProcess> server;
  HttpClient admin{0}, alice{0};
  std::string event_id;
};

TEST_F(PaymentFlowTest, EachTestMethodReachesItsFinalStatus) {
  const auto ok = book("pm_card_ok");
  const auto declined = book("pm_card_declined");
  const auto flaky = book("pm_card_flaky");
  const auto slow = book("pm_card_slow");

  auto b_ok = wait_for_booking(alice, ok, {"confirmed", "payment_failed"});
  EXPECT_EQ(b_ok.at("status"), "confirmed");
  EXPECT_EQ(num(b_ok.at("payment").at("attempts")), 1);

  auto b_declined = wait_for_booking(alice, declined, {"confirmed", "payment_failed"});
  EXPECT_EQ(b_declined.at("status"), "payment_failed");
  EXPECT_NE(str(b_declined.at("payment").at("last_error")).find("declined"), std::string::npos);

  auto b_flaky = wait_for_booking(alice, flaky, {"confirmed", "payment_failed"});
  EXPECT_EQ(b_flaky.at("status"), "confirmed");
  EXPECT_EQ(num(b_flaky.at("payment").at("attempts")), 3);

  auto b_slow = wait_for_booking(alice, slow, {"confirmed", "payment_failed"});
  EXPECT_EQ(b_slow.at("status"), "confirmed");
  EXPECT_GE(num(b_slow.at("payment").at("attempts")), 2);  // the first attempt timed out

  // One charge per booking in the ledger, whatever the retries.
  auto charges = sim.charges();
  for (const auto& id : {ok, declined, flaky, slow}) EXPECT_EQ(charges.count(id), 1u) << id;
  EXPECT_EQ(charges.find(declined)->second.at("outcome"), "declined");
  EXPECT_EQ(charges.find(flaky)->second.at("outcome"), "approved");

  // Seats: three sold, the declined one back in the pool. The seat lock store learns of a
  // payment's outcome just after the booking does (the Bookings DB decides first), so poll.
  auto a = availability_of(admin, event_id);
  for (int i = 0; i < 100 && (a.at("floor").sold != 3 || a.at("floor").held != 0); ++i) {
    std::this_thread::sleep_for(20ms);
    a = availability_of(admin, event_id);
  }
  EXPECT_EQ(a.at("floor").sold, 3);
  EXPECT_EQ(a.at("floor").held, 0);
  EXPECT_EQ(a.at("floor").available, 7);
}

TEST_F(PaymentFlowTest, AWorkerKilledMidChargeChargesExactlyOnce) {
  // pm_card_slow: the simulator records the charge at once and answers 2.5 s later, so the
  // process dies with the charge made and its job unacknowledged.
  const auto slow = book("pm_card_slow");
  for (int i = 0; i < 200 && sim.charges().count(slow) == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(sim.charges().count(slow), 1u) << "the charge never reached the simulator";
  server->kill9();
  server->restart();
  alice = server->client();
  alice.bearer = server->token("alice-payments");
  auto booking = wait_for_booking(alice, slow, {"confirmed", "payment_failed"}, 30s);
  EXPECT_EQ(booking.at("status"), "confirmed");
  auto charges = sim.charges();
  EXPECT_EQ(charges.count(slow), 1u);
  EXPECT_EQ(charges.find(slow)->second.at("outcome"), "approved");
  EXPECT_EQ(charges.find(slow)->second.at("refunded"), false);
}

TEST_F(PaymentFlowTest, CancelRefundsExactlyOnceAndFreesTheSeat) {
  const auto id = book("pm_card_ok");
  wait_for_booking(alice, id, {"confirmed"});
  auto cancelled = expect_status(alice.post("/v1/bookings/" + id + "/cancel", ""), 202, "cancel");
  EXPECT_EQ(cancelled.at("status"), "cancelled");
  auto refunded = wait_for_booking(alice, id, {"refunded"});
  EXPECT_EQ(refunded.at("status"), "refunded");
  // Cancelling again changes nothing.
  expect_problem(alice.post("/v1/bookings/" + id + "/cancel", ""), 409, "invalid_state");
  std::this_thread::sleep_for(300ms);
  auto charges = sim.charges();
  ASSERT_EQ(charges.count(id), 1u);
  EXPECT_EQ(charges.find(id)->second.at("refunded"), true);
  EXPECT_EQ(sim.refunds(), 1u);
  auto a = availability_of(admin, event_id);
  EXPECT_EQ(a.at("floor").sold, 0);
  EXPECT_EQ(a.at("floor").available, 10);
  auto stats = expect_status(admin.get("/v1/events/" + event_id + "/stats"), 200, "stats");
  EXPECT_EQ(num(stats.at("bookings").at("refunded")), 1);
  EXPECT_EQ(num(stats.at("revenue")), 0);
}

}  // namespace
}  // namespace boxoffice::testing::api

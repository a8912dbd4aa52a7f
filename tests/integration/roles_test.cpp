// The roles apart, where they differ from one process: the command line refuses role sets that
// cannot work, a backend role trusts only its gateway, a gateway whose backend is down answers 503
// at once, and `--roles payments` serves no API route yet settles payments. (The HTTP, payment and
// waitlist suites run through a split deployment too: integration_tests.split_* in ctest.)

#include <gtest/gtest.h>

#include <thread>

#include "integration/api_fixture.h"
#include "support/child_process.h"
#include "support/free_port.h"
#include "support/temp_dir.h"

namespace boxoffice::testing::api {
namespace {

constexpr std::string_view kSecret = "0123456789abcdef-internal";

struct Exit {
  int code = -1;
  std::string log;
};

Exit serve(std::vector<std::string> args) {
  TempDir dir;
  args.insert(args.begin(), {BOXOFFICE_BINARY, "serve", "--listen=127.0.0.1:0",
                             "--data-dir=" + (dir.path() / "data").string()});
  ChildProcess child(args, {}, dir.path() / "log");
  const auto code = child.wait_exit(20s);
  if (!code) child.kill(SIGKILL);
  return {code.value_or(-1), child.log()};
}

TEST(RolesCommandLineTest, RefusesRoleSetsThatCannotWork) {
  auto run = serve({"--roles=gateway,bookings"});
  EXPECT_EQ(run.code, 2) << run.log;
  EXPECT_NE(run.log.find("unknown role \"bookings\""), std::string::npos) << run.log;

  run = serve({"--roles=booking", "--internal-secret=" + std::string{kSecret}});
  EXPECT_EQ(run.code, 2) << run.log;
  EXPECT_NE(run.log.find("redis_url and postgres_url"), std::string::npos) << run.log;

  run = serve({"--roles=gateway", "--internal-secret=" + std::string{kSecret},
               "--waitlist-url=http://127.0.0.1:9"});
  EXPECT_EQ(run.code, 2) << run.log;
  EXPECT_NE(run.log.find("booking_url"), std::string::npos) << run.log;

  run = serve({"--roles=gateway", "--booking-url=http://127.0.0.1:9",
               "--waitlist-url=http://127.0.0.1:9", "--internal-secret=short"});
  EXPECT_EQ(run.code, 2) << run.log;
  EXPECT_NE(run.log.find("internal_secret"), std::string::npos) << run.log;

  run = serve({"--roles=gateway", "--booking-url=https://127.0.0.1:9",
               "--waitlist-url=http://127.0.0.1:9", "--internal-secret=" + std::string{kSecret}});
  EXPECT_EQ(run.code, 2) << run.log;
  EXPECT_NE(run.log.find("https"), std::string::npos) << run.log;
}

TEST(RolesTest, GatewayAnswers503AtOnceWhenItsBackendIsDown) {
  // Nothing listens on these ports: the gateway alone needs no engine.
  ServerOptions options;
  options.deployment = ServerOptions::Deployment::one_process;
  options.engines = ServerOptions::Engines::embedded;
  options.args = {"--roles=gateway",
                  "--booking-url=http://127.0.0.1:" + std::to_string(free_port()),
                  "--waitlist-url=http://127.0.0.1:" + std::to_string(free_port()),
                  "--internal-secret=" + std::string{kSecret}};
  ServerProcess gateway(options);
  auto anon = gateway.client();
  auto buyer = gateway.client();
  buyer.bearer = gateway.token("alice");

  const auto started = std::chrono::steady_clock::now();
  auto r = anon.get("/v1/events");
  expect_problem(r, 503, "unavailable");
  r = buyer.post("/v1/events/evt_x/waitlist", R"({"section":"floor","quantity":1})");
  expect_problem(r, 503, "unavailable");
  EXPECT_FALSE(r.header("X-Request-Id").empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);

  // Authentication still happens at the gateway, before any forwarding.
  auto forged = gateway.client();
  forged.bearer = "not.a.token";
  expect_problem(forged.get("/v1/bookings"), 401, "unauthorized");

  EXPECT_EQ(anon.get("/healthz").status, 200);
  r = anon.get("/readyz");
  EXPECT_EQ(r.status, 503) << describe(r);
  EXPECT_NE(r.body.find("booking_role"), std::string::npos) << r.body;
}

class SplitRolesTest : public ::testing::Test {
 protected:
  static ServerProcess& deployment() {
    if (!shared_) {
      ServerOptions options;
      options.deployment = ServerOptions::Deployment::split;
      shared_ = std::make_unique<ServerProcess>(options);
    }
    return *shared_;
  }
  static void TearDownTestSuite() { shared_.reset(); }

  static inline std::unique_ptr<ServerProcess> shared_;
};

TEST_F(SplitRolesTest, BackendRoleTrustsOnlyItsGateway) {
  auto& server = deployment();
  auto* split = server.split();
  ASSERT_NE(split, nullptr);
  HttpClient booking(split->port_of("booking"));

  // A valid token is not enough: JWTs are the gateway's business.
  booking.bearer = server.token("ops", {"admin"});
  expect_problem(booking.get("/v1/events"), 403, "forbidden");
  expect_problem(booking.post("/v1/events", text(event_body())), 403, "forbidden");
  expect_problem(booking.get("/v1/events", {{"X-Boxoffice-Internal-Secret", "wrong"}}), 403,
                 "forbidden");
  EXPECT_EQ(booking.get("/healthz").status, 200);

  // With the secret, the identity the request names is the caller.
  const Headers as_admin{{"X-Boxoffice-Internal-Secret", split->internal_secret()},
                         {"X-Boxoffice-Caller", "sub=ops;admin=1"}};
  booking.bearer.clear();
  auto created = booking.post("/v1/events", text(event_body()), as_admin);
  const auto id = str(expect_status(created, 201, "POST /v1/events on the booking role").at("id"));
  const Headers as_buyer{{"X-Boxoffice-Internal-Secret", split->internal_secret()},
                         {"X-Boxoffice-Caller", "sub=alice;admin=0"}};
  expect_problem(booking.post("/v1/events", text(event_body()), as_buyer), 403, "forbidden");

  // And the gateway forwards to it: the event is there, through the front door.
  auto anon = server.client();
  EXPECT_EQ(anon.get("/v1/events/" + id).status, 200);
}

TEST_F(SplitRolesTest, PaymentsRoleServesNoApiButSettlesPayments) {
  auto& server = deployment();
  HttpClient payments(server.split()->port_of("payments"));
  expect_problem(payments.get("/v1/events"), 404, "not_found");
  EXPECT_EQ(payments.get("/healthz").status, 200);
  EXPECT_EQ(payments.get("/readyz").status, 200);

  auto admin = server.client();
  admin.bearer = server.token("ops", {"admin"});
  const auto id =
      str(expect_status(admin.post("/v1/events", text(event_body())), 201, "event").at("id"));
  auto alice = server.client();
  alice.bearer = server.token("alice-payments");
  const auto hold = expect_status(
      alice.post("/v1/events/" + id + "/holds", text(quantity_body("floor", 2))), 201, "hold");
  const auto booking =
      expect_status(alice.post("/v1/holds/" + str(hold.at("id")) + "/checkout", std::string{kPay}),
                    202, "checkout");
  // Only the payments role's processor can confirm it.
  const auto done = wait_for_booking(alice, str(booking.at("id")), {"confirmed"}, 20s);
  EXPECT_EQ(str(done.at("status")), "confirmed");
}

}  // namespace
}  // namespace boxoffice::testing::api

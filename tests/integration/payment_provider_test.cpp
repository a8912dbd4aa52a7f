// HttpPaymentProvider and SyncClient against the payment simulator's real HTTP server, run on
// threads of this process (the `boxoffice payment-sim` process is tested with the CLI).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "adapters/http_provider/http_payment_provider.h"
#include "http/sync_client.h"
#include "payment_sim/sim_server.h"
#include "support/free_port.h"

namespace boxoffice {
namespace {

using namespace std::chrono_literals;
using payment_sim::InProcessPaymentSim;
using payment_sim::Outcome;
using payment_sim::SimulatorOptions;
using SteadyClock = std::chrono::steady_clock;

// Short enough for a quick suite, in the same proportion as the defaults (3000 vs 2000 ms).
constexpr Millis kSlowDelay = 1200ms;
constexpr Millis kAttemptTimeout = 400ms;

SimulatorOptions fast_options() {
  SimulatorOptions options;
  options.slow_delay = kSlowDelay;
  options.seed = 1;
  return options;
}

ChargeRequest request(std::string key, std::string method = "pm_card_ok", int64_t amount = 5000) {
  return {std::move(key), amount, "USD", std::move(method)};
}

template <class... T>
std::string describe(const std::variant<T...>& result) {
  if (const auto* error = std::get_if<ProviderError>(&result)) return error->detail;
  return "not a ProviderError";
}

Charge expect_charge(const std::variant<Charge, ProviderError>& result) {
  if (const auto* charge = std::get_if<Charge>(&result)) return *charge;
  ADD_FAILURE() << "ProviderError: " << std::get<ProviderError>(result).detail;
  return {};
}

Millis elapsed_since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<Millis>(SteadyClock::now() - start);
}

class PaymentProviderTest : public ::testing::Test {
 protected:
  InProcessPaymentSim sim{fast_options()};
  HttpPaymentProvider provider{sim.base_url(), kAttemptTimeout};
};

TEST_F(PaymentProviderTest, CardOkIsApproved) {
  const auto charge = expect_charge(provider.charge(request("bkg_ok", "pm_card_ok", 12345)));
  EXPECT_EQ(charge.status, ChargeStatus::approved);
  EXPECT_EQ(charge.idempotency_key, "bkg_ok");
  EXPECT_EQ(charge.amount, 12345);
  EXPECT_EQ(charge.currency, "USD");
  EXPECT_FALSE(charge.refunded);
  EXPECT_EQ(charge.id.rfind("ch_", 0), 0u) << charge.id;

  const auto found = provider.find_charge("bkg_ok");
  ASSERT_TRUE(std::holds_alternative<std::optional<Charge>>(found)) << describe(found);
  const auto& maybe = std::get<std::optional<Charge>>(found);
  ASSERT_TRUE(maybe.has_value());
  EXPECT_EQ(maybe->id, charge.id);
  EXPECT_EQ(maybe->status, ChargeStatus::approved);
}

TEST_F(PaymentProviderTest, CardDeclinedIsDeclined) {
  const auto charge = expect_charge(provider.charge(request("bkg_declined", "pm_card_declined")));
  EXPECT_EQ(charge.status, ChargeStatus::declined);
  EXPECT_EQ(charge.decline_reason, "card_declined");
  // Asking again is safe: the same charge, not a second one.
  EXPECT_EQ(expect_charge(provider.charge(request("bkg_declined", "pm_card_declined"))).id,
            charge.id);
  EXPECT_EQ(sim.simulator().ledger().charges.size(), 1u);
}

TEST_F(PaymentProviderTest, CardSlowTimesOutThenTheSameKeyGetsTheChargeAtOnce) {
  auto start = SteadyClock::now();
  const auto first = provider.charge(request("bkg_slow", "pm_card_slow"));
  const auto first_took = elapsed_since(start);
  ASSERT_TRUE(std::holds_alternative<ProviderError>(first));
  EXPECT_NE(describe(first).find("no answer within"), std::string::npos) << describe(first);
  EXPECT_GE(first_took, kAttemptTimeout - 10ms);
  EXPECT_LT(first_took, kSlowDelay - 200ms) << "the timeout was not enforced";

  start = SteadyClock::now();
  const auto retry = expect_charge(provider.charge(request("bkg_slow", "pm_card_slow")));
  EXPECT_EQ(retry.status, ChargeStatus::approved);
  EXPECT_LT(elapsed_since(start), kAttemptTimeout);

  const auto ledger = sim.simulator().ledger();
  ASSERT_EQ(ledger.charges.size(), 1u);
  EXPECT_EQ(ledger.charges[0].idempotency_key, "bkg_slow");
  EXPECT_EQ(ledger.charges[0].outcome, Outcome::approved);
}

TEST_F(PaymentProviderTest, CardFlakyFailsTwiceThenIsApprovedWithOneCharge) {
  const auto first = provider.charge(request("bkg_flaky", "pm_card_flaky"));
  ASSERT_TRUE(std::holds_alternative<ProviderError>(first));
  EXPECT_NE(describe(first).find("503"), std::string::npos) << describe(first);
  EXPECT_TRUE(std::holds_alternative<ProviderError>(
      provider.charge(request("bkg_flaky", "pm_card_flaky"))));
  EXPECT_EQ(expect_charge(provider.charge(request("bkg_flaky", "pm_card_flaky"))).status,
            ChargeStatus::approved);
  EXPECT_EQ(sim.simulator().ledger().charges.size(), 1u);
}

TEST_F(PaymentProviderTest, FindChargeOfAKeyNeverChargedIsNothing) {
  const auto found = provider.find_charge("bkg_never");
  ASSERT_TRUE(std::holds_alternative<std::optional<Charge>>(found)) << describe(found);
  EXPECT_FALSE(std::get<std::optional<Charge>>(found).has_value());
}

TEST_F(PaymentProviderTest, KeysNeedingPercentEncodingAreFoundAgain) {
  const std::string key = "bkg&idempotency_key=x/?#%+";
  const auto charge = expect_charge(provider.charge(request(key)));
  const auto found = provider.find_charge(key);
  ASSERT_TRUE(std::holds_alternative<std::optional<Charge>>(found)) << describe(found);
  ASSERT_TRUE(std::get<std::optional<Charge>>(found).has_value());
  EXPECT_EQ(std::get<std::optional<Charge>>(found)->id, charge.id);
}

TEST_F(PaymentProviderTest, RefundingTwiceMakesOneRefund) {
  const auto charge = expect_charge(provider.charge(request("bkg_refund")));
  for (int i = 0; i < 2; ++i) {
    const auto refunded = provider.refund("bkg_refund");
    ASSERT_TRUE(std::holds_alternative<std::optional<Charge>>(refunded)) << describe(refunded);
    const auto& result = std::get<std::optional<Charge>>(refunded);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->id, charge.id);
    EXPECT_TRUE(result->refunded);
  }
  const auto ledger = sim.simulator().ledger();
  ASSERT_EQ(ledger.refunds.size(), 1u);
  EXPECT_EQ(ledger.refunds[0].charge_id, charge.id);
  ASSERT_EQ(ledger.charges.size(), 1u);
  EXPECT_TRUE(ledger.charges[0].refunded);
  EXPECT_TRUE(std::get<std::optional<Charge>>(provider.find_charge("bkg_refund"))->refunded);
}

TEST_F(PaymentProviderTest, NothingToRefundForADeclinedOrUnknownCharge) {
  expect_charge(provider.charge(request("bkg_declined", "pm_card_declined")));
  for (const auto* key : {"bkg_declined", "bkg_never"}) {
    const auto refunded = provider.refund(key);
    ASSERT_TRUE(std::holds_alternative<std::optional<Charge>>(refunded)) << describe(refunded);
    EXPECT_FALSE(std::get<std::optional<Charge>>(refunded).has_value()) << key;
  }
  EXPECT_TRUE(sim.simulator().ledger().refunds.empty());
}

TEST_F(PaymentProviderTest, ReusingAKeyForAnotherChargeIsAnErrorNotADecline) {
  expect_charge(provider.charge(request("bkg_reused", "pm_card_ok", 100)));
  const auto reused = provider.charge(request("bkg_reused", "pm_card_ok", 200));
  ASSERT_TRUE(std::holds_alternative<ProviderError>(reused));
  EXPECT_NE(describe(reused).find("idempotency_key_reused"), std::string::npos) << describe(reused);
  const auto unknown = provider.charge(request("bkg_unknown", "pm_card_gold"));
  ASSERT_TRUE(std::holds_alternative<ProviderError>(unknown));
  EXPECT_NE(describe(unknown).find("422"), std::string::npos) << describe(unknown);
  EXPECT_EQ(sim.simulator().ledger().charges.size(), 1u);
}

TEST(PaymentProvider, AConcurrentAttemptWithAKeyInFlightIsAnError) {
  auto options = fast_options();
  options.latency = 600ms;
  InProcessPaymentSim sim{options};
  HttpPaymentProvider provider{sim.base_url(), 2000ms};
  auto first = std::async(std::launch::async,
                          [&] { return provider.charge(request("bkg_twice", "pm_card_ok")); });
  std::this_thread::sleep_for(200ms);
  const auto second = provider.charge(request("bkg_twice", "pm_card_ok"));
  ASSERT_TRUE(std::holds_alternative<ProviderError>(second));
  EXPECT_NE(describe(second).find("409"), std::string::npos) << describe(second);
  EXPECT_EQ(expect_charge(first.get()).status, ChargeStatus::approved);
  EXPECT_EQ(sim.simulator().ledger().charges.size(), 1u);
}

TEST(PaymentProvider, ADeadEndpointIsAnErrorAtOnce) {
  HttpPaymentProvider provider{"http://127.0.0.1:" + std::to_string(testing::free_port())};
  const auto start = SteadyClock::now();
  const auto result = provider.charge(request("bkg_dead"));
  ASSERT_TRUE(std::holds_alternative<ProviderError>(result));
  EXPECT_NE(describe(result).find("connect"), std::string::npos) << describe(result);
  EXPECT_LT(elapsed_since(start), 1000ms);
  EXPECT_TRUE(std::holds_alternative<ProviderError>(provider.find_charge("bkg_dead")));
  EXPECT_TRUE(std::holds_alternative<ProviderError>(provider.refund("bkg_dead")));
}

TEST(PaymentProvider, A404ThatIsNotTheProvidersNoSuchChargeIsAnError) {
  // A wrong base path answers 404 for every route: that must not read as "never charged".
  InProcessPaymentSim sim{fast_options()};
  HttpPaymentProvider provider{sim.base_url() + "/wrong"};
  const auto found = provider.find_charge("bkg_1");
  ASSERT_TRUE(std::holds_alternative<ProviderError>(found));
  EXPECT_NE(describe(found).find("404"), std::string::npos) << describe(found);
}

// ---------------------------------------------------------------------------------------------
// The simulator's HTTP API as a client sees it

boost::json::value json_of(const http::ClientResponse& response) {
  return boost::json::parse(response.body);
}

http::ClientResponse expect_response(const http::ClientResult& result) {
  if (const auto* response = std::get_if<http::ClientResponse>(&result)) return *response;
  ADD_FAILURE() << "ClientError: " << std::get<http::ClientError>(result).detail;
  return {};
}

TEST(PaymentSimApi, ReplaysTheFirstResponseAndServesTheContractsLedger) {
  InProcessPaymentSim sim{fast_options()};
  http::SyncClient client{sim.base_url()};
  const std::string body = R"({"amount": 700, "currency": "USD", "payment_method": "pm_card_ok"})";
  const auto first = expect_response(client.post("/v1/charges", body, {{"Idempotency-Key", "k1"}}));
  EXPECT_EQ(first.status, 201);
  const auto again = expect_response(client.post("/v1/charges", body, {{"Idempotency-Key", "k1"}}));
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(again.header("Idempotent-Replayed").value_or(""), "true");
  const auto charge = json_of(first).as_object();
  EXPECT_EQ(charge.at("status"), "succeeded");
  EXPECT_EQ(charge.at("idempotency_key"), "k1");
  EXPECT_EQ(charge.at("amount"), 700);

  const auto declined = expect_response(client.post(
      "/v1/charges", R"({"amount": 5, "currency": "USD", "payment_method": "pm_card_declined"})",
      {{"Idempotency-Key", "k2"}}));
  EXPECT_EQ(declined.status, 402);
  EXPECT_EQ(json_of(declined).at("decline_code"), "card_declined");

  const auto refund = expect_response(
      client.post("/v1/charges/" + std::string{charge.at("id").as_string()} + "/refunds", ""));
  EXPECT_EQ(refund.status, 201);
  const auto refund_again = expect_response(
      client.post("/v1/charges/" + std::string{charge.at("id").as_string()} + "/refunds", ""));
  EXPECT_EQ(refund_again.status, 200);
  EXPECT_EQ(json_of(refund_again).at("id"), json_of(refund).at("id"));

  const auto ledger = expect_response(client.get("/v1/ledger"));
  EXPECT_EQ(ledger.status, 200);
  const auto expected = boost::json::parse(R"({
    "charges": [
      {"idempotency_key": "k1", "amount": 700, "currency": "USD", "payment_method": "pm_card_ok",
       "outcome": "approved", "refunded": true},
      {"idempotency_key": "k2", "amount": 5, "currency": "USD",
       "payment_method": "pm_card_declined", "outcome": "declined", "refunded": false}]})");
  EXPECT_EQ(json_of(ledger).at("charges"), expected.at("charges")) << ledger.body;
  ASSERT_EQ(json_of(ledger).at("refunds").as_array().size(), 1u);
  EXPECT_EQ(json_of(ledger).at("refunds").at(0).at("idempotency_key"), "k1");
}

TEST(PaymentSimApi, RefusesBadRequestsWithProblems) {
  InProcessPaymentSim sim{fast_options()};
  http::SyncClient client{sim.base_url()};
  const std::string ok = R"({"amount": 700, "currency": "USD", "payment_method": "pm_card_ok"})";
  const auto status_of = [&](const std::string& body, const http::HeaderList& headers) {
    const auto response = expect_response(client.post("/v1/charges", body, headers));
    EXPECT_EQ(response.header("Content-Type").value_or(""), "application/problem+json");
    return response.status;
  };
  EXPECT_EQ(status_of(ok, {}), 400) << "no Idempotency-Key";
  EXPECT_EQ(status_of("{not json", {{"Idempotency-Key", "k"}}), 400);
  EXPECT_EQ(status_of(R"({"amount": "700", "currency": "USD", "payment_method": "pm_card_ok"})",
                      {{"Idempotency-Key", "k"}}),
            422);
  EXPECT_EQ(status_of(R"({"amount": 7.5, "currency": "USD", "payment_method": "pm_card_ok"})",
                      {{"Idempotency-Key", "k"}}),
            422);
  EXPECT_EQ(status_of(R"({"currency": "USD", "payment_method": "pm_card_ok"})",
                      {{"Idempotency-Key", "k"}}),
            422);
  EXPECT_EQ(status_of(R"({"amount": 700, "currency": "USD", "payment_method": "pm_card_ok",
                          "capture": false})",
                      {{"Idempotency-Key", "k"}}),
            422);
  EXPECT_EQ(status_of(R"({"amount": 700, "currency": "USD", "payment_method": "pm_x"})",
                      {{"Idempotency-Key", "k"}}),
            422);
  EXPECT_EQ(expect_response(client.get("/v1/charges")).status, 400);
  const auto missing = expect_response(client.get("/v1/charges?idempotency_key=nope"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json_of(missing).at("code"), "resource_missing");
  EXPECT_EQ(expect_response(client.post("/v1/charges/ch_nope/refunds", "")).status, 404);
  EXPECT_EQ(expect_response(client.get("/v1/nothing")).status, 404);
  EXPECT_EQ(expect_response(client.request("DELETE", "/v1/ledger")).status, 405);
  EXPECT_EQ(expect_response(client.get("/healthz")).status, 200);
  EXPECT_TRUE(sim.simulator().ledger().charges.empty());
}

// ---------------------------------------------------------------------------------------------
// SyncClient

TEST(SyncClient, RefusesBaseUrlsItCannotServe) {
  EXPECT_THROW(http::SyncClient{"https://127.0.0.1:443"}, std::invalid_argument);
  EXPECT_THROW(http::SyncClient{"ftp://127.0.0.1"}, std::invalid_argument);
  EXPECT_THROW(http::SyncClient{"127.0.0.1:8080"}, std::invalid_argument);
  EXPECT_THROW(http::SyncClient{"http://user:pw@127.0.0.1:8080"}, std::invalid_argument);
  EXPECT_THROW(http::SyncClient{"http://127.0.0.1:8080/?q=1"}, std::invalid_argument);
  EXPECT_THROW(http::SyncClient{"http://127.0.0.1:0"}, std::invalid_argument);
  try {
    http::SyncClient client{"https://pay.example.com"};
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string{e.what()}.find("https is not supported"), std::string::npos) << e.what();
  }
  EXPECT_EQ(http::SyncClient{"http://localhost:81/"}.origin(), "http://localhost:81");
  EXPECT_EQ(http::SyncClient{"http://[::1]"}.origin(), "http://[::1]:80");
}

TEST(SyncClient, PercentEncodesAllButUnreservedCharacters) {
  EXPECT_EQ(http::percent_encode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(http::percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

TEST(SyncClient, ReusesItsConnections) {
  InProcessPaymentSim sim{fast_options()};
  http::SyncClient client{sim.base_url()};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(expect_response(client.get("/healthz")).status, 200);
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(client.idle_connections(), 1u);
}

TEST(SyncClient, NeverOpensMoreThanItsBoundFromManyThreads) {
  InProcessPaymentSim sim{fast_options()};
  http::SyncClientOptions options;
  options.connections_max = 3;
  options.timeout = 5000ms;
  http::SyncClient client{sim.base_url(), options};
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        const auto result = client.get("/v1/ledger");
        const auto* response = std::get_if<http::ClientResponse>(&result);
        if (response && response->status == 200) ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 80);
  EXPECT_LE(client.connections_opened(), 3u);
  EXPECT_LE(client.idle_connections(), 3u);
}

TEST(SyncClient, ReconnectsWhenTheServerClosedAnIdleConnection) {
  const uint16_t port = testing::free_port();
  auto sim = std::make_unique<InProcessPaymentSim>(fast_options(), port);
  http::SyncClient client{sim->base_url()};
  EXPECT_EQ(expect_response(client.get("/healthz")).status, 200);
  sim.reset();  // the drain closes the pooled connection from the server's side
  sim = std::make_unique<InProcessPaymentSim>(fast_options(), port);
  EXPECT_EQ(expect_response(client.get("/healthz")).status, 200);
  EXPECT_EQ(client.connections_opened(), 2u);
}

/// A listening socket on 127.0.0.1 run by hand, for what a well-behaved server never does.
class RawServer {
 public:
  RawServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    // accept() gives up too, so a failing test cannot hang on a client that never came.
    const timeval patience{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
  }
  ~RawServer() { ::close(fd_); }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accept() { return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC); }

  /// Reads until the end of one request head (the tests send no bodies).
  static bool read_head(int fd) {
    std::string received;
    char buffer[1024];
    while (received.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      received.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }
  static void answer(int fd, std::string_view body) {
    const auto response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + std::string{body};
    (void)::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(SyncClient, ResendsOnceWhenAReusedConnectionClosesWithoutAnswering) {
  RawServer server;
  std::thread peer([&] {
    const int first = server.accept();
    RawServer::read_head(first);
    RawServer::answer(first, "one");
    RawServer::read_head(first);  // the second request arrives, and the connection just closes
    ::close(first);
    const int second = server.accept();
    RawServer::read_head(second);
    RawServer::answer(second, "two");
    ::close(second);
  });
  http::SyncClient client{server.base_url()};
  EXPECT_EQ(expect_response(client.get("/")).body, "one");
  EXPECT_EQ(expect_response(client.get("/")).body, "two");
  EXPECT_EQ(client.connections_opened(), 2u);
  peer.join();
}

TEST(SyncClient, ASilentServerIsATimeoutAtTheDeadline) {
  RawServer server;  // the kernel completes the handshake; nobody ever reads or answers
  http::SyncClient client{server.base_url()};
  const auto start = SteadyClock::now();
  const auto result = client.get("/", {}, 300ms);
  const auto took = elapsed_since(start);
  ASSERT_TRUE(std::holds_alternative<http::ClientError>(result));
  EXPECT_EQ(std::get<http::ClientError>(result).code, http::ClientErrc::timeout);
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 1000ms);
  // The timed-out connection is not pooled: its late answer would belong to another request.
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(SyncClient, ARefusedConnectionIsAConnectError) {
  http::SyncClient client{"http://127.0.0.1:" + std::to_string(testing::free_port())};
  const auto result = client.get("/healthz");
  ASSERT_TRUE(std::holds_alternative<http::ClientError>(result));
  EXPECT_EQ(std::get<http::ClientError>(result).code, http::ClientErrc::connect_failed);
}

}  // namespace
}  // namespace boxoffice

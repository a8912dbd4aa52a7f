#include "support/payment_sim_process.h"

#include <boost/json/parse.hpp>
#include <stdexcept>
#include <thread>

#include "support/free_port.h"
#include "support/http_client.h"

namespace boxoffice::testing {
namespace {

constexpr int kReadyPollsMax = 500;
constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);

boost::json::object ledger(uint16_t port) {
  HttpClient client(port);
  const auto response = client.get("/v1/ledger");
  if (response.status != 200) {
    throw std::runtime_error("GET /v1/ledger answered " + std::to_string(response.status));
  }
  return boost::json::parse(response.body).as_object();
}

}  // namespace

PaymentSimProcess::PaymentSimProcess(const std::string& binary, std::vector<std::string> args)
    : port_(free_port()) {
  std::vector<std::string> argv = {binary, "payment-sim",
                                   "--listen=127.0.0.1:" + std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = std::make_unique<ChildProcess>(std::move(argv));
  for (int i = 0; i < kReadyPollsMax; ++i) {
    try {
      HttpClient probe(port_, std::chrono::seconds(1));
      if (probe.get("/healthz").status == 200) return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(kReadyPollInterval);
  }
  throw std::runtime_error("payment-sim did not start: " + process_->log());
}

PaymentSimProcess::~PaymentSimProcess() = default;

std::multimap<std::string, boost::json::object> PaymentSimProcess::charges() const {
  std::multimap<std::string, boost::json::object> out;
  const auto all = ledger(port_);  // kept: a range-for would not extend a temporary's temporary
  for (const auto& charge : all.at("charges").as_array()) {
    const auto& object = charge.as_object();
    out.emplace(std::string{object.at("idempotency_key").as_string()}, object);
  }
  return out;
}

size_t PaymentSimProcess::refunds() const { return ledger(port_).at("refunds").as_array().size(); }

}  // namespace boxoffice::testing

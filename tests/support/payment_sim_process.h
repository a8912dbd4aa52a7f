#pragma once
// A real `boxoffice payment-sim` process on a free port of 127.0.0.1, for tests that charge
// through a separate provider and read its audit ledger.

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace boxoffice::testing {

class PaymentSimProcess {
 public:
  /// Starts `<binary> payment-sim --listen=127.0.0.1:<port> <args...>` and waits until GET
  /// /healthz answers; throws std::runtime_error with its log when it does not.
  PaymentSimProcess(const std::string& binary, std::vector<std::string> args = {});
  ~PaymentSimProcess();

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Ledger charges by idempotency key (the booking id).
  std::multimap<std::string, boost::json::object> charges() const;
  size_t refunds() const;

 private:
  uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace boxoffice::testing

#pragma once
// Serving the simulator: as the `boxoffice payment-sim` process, or inside a test process.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "payment_sim/simulator.h"

namespace boxoffice::payment_sim {

struct PaymentSimOptions {
  /// "host:port" ("[::1]:port" for IPv6); port 0 takes any free one (the log says which).
  std::string listen = "127.0.0.1:8090";
  SimulatorOptions simulator;
  size_t io_threads = 1;
  /// Every request being delayed (latency, slow_delay) holds one worker while it sleeps.
  size_t worker_threads = 64;
};

/// Serves until SIGTERM or SIGINT, then drains. Returns the process exit code: 0 after a drain,
/// 2 for options it cannot use (said on stderr).
int run_payment_sim(const PaymentSimOptions& options);

/// The same server on 127.0.0.1, on threads of this process, for tests. Stopped (drained) on
/// destruction, which waits for requests still sleeping.
class InProcessPaymentSim {
 public:
  /// Port 0: any free port. Throws std::runtime_error when it cannot listen.
  explicit InProcessPaymentSim(SimulatorOptions options = {}, uint16_t port = 0);
  ~InProcessPaymentSim();
  InProcessPaymentSim(const InProcessPaymentSim&) = delete;
  InProcessPaymentSim& operator=(const InProcessPaymentSim&) = delete;

  uint16_t port() const;
  /// "http://127.0.0.1:<port>"
  std::string base_url() const;
  /// The simulator behind the server, to look at its ledger directly.
  Simulator& simulator();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxoffice::payment_sim

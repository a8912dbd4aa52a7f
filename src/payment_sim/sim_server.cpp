#include "payment_sim/sim_server.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <iostream>
#include <optional>
#include <thread>

#include "http/listen_address.h"
#include "http/server.h"
#include "payment_sim/sim_api.h"

namespace boxoffice::payment_sim {

namespace {

constexpr int kExitConfig = 2;

std::optional<std::string> invalid_option(const PaymentSimOptions& options) {
  const auto& sim = options.simulator;
  if (!(sim.error_rate >= 0.0 && sim.error_rate <= 1.0)) return "--error-rate must be in [0, 1]";
  if (!(sim.timeout_rate >= 0.0 && sim.timeout_rate <= 1.0)) {
    return "--timeout-rate must be in [0, 1]";
  }
  if (sim.latency.count() < 0) return "--latency-ms must not be negative";
  if (sim.slow_delay.count() < 0) return "--slow-delay-ms must not be negative";
  if (options.io_threads == 0 || options.worker_threads == 0) return "thread counts must be > 0";
  return std::nullopt;
}

http::ServerOptions server_options(std::string address, uint16_t port, size_t io_threads,
                                   size_t worker_threads) {
  http::ServerOptions options;
  options.address = std::move(address);
  options.port = port;
  options.io_threads = io_threads;
  options.worker_threads = worker_threads;
  return options;
}

}  // namespace

int run_payment_sim(const PaymentSimOptions& options) {
  const auto listen = http::parse_listen(options.listen);
  if (!listen) {
    std::cerr << "boxoffice payment-sim: --listen \"" << options.listen << "\" must be host:port\n";
    return kExitConfig;
  }
  if (auto problem = invalid_option(options)) {
    std::cerr << "boxoffice payment-sim: " << *problem << "\n";
    return kExitConfig;
  }
  Simulator simulator(options.simulator);
  SimulatorApi api(simulator);
  http::HttpServer server(
      server_options(listen->host, listen->port, options.io_threads, options.worker_threads), api);
  try {
    server.listen();
  } catch (const std::exception& e) {
    std::cerr << "boxoffice payment-sim: " << e.what() << "\n";
    return kExitConfig;
  }
  const auto& sim = options.simulator;
  // The seed is logged so that a run with injected failures can be replayed.
  spdlog::info(
      "payment-sim listening on http://{}:{} (latency {} ms, error rate {}, timeout rate {}, slow "
      "delay {} ms, seed {})",
      listen->host, server.port(), sim.latency.count(), sim.error_rate, sim.timeout_rate,
      sim.slow_delay.count(), simulator.seed());
  server.run();
  spdlog::info("payment-sim drained; bye");
  return 0;
}

struct InProcessPaymentSim::Impl {
  Impl(SimulatorOptions options, uint16_t port)
      : simulator(std::move(options)), api(simulator), server(make_options(port), api) {
    server.listen();
    bound_port = server.port();
    thread = std::thread([this] { server.run(); });
  }
  ~Impl() {
    server.stop();
    thread.join();
  }

  static http::ServerOptions make_options(uint16_t port) {
    auto options = server_options("127.0.0.1", port, 1, 64);  // a slow card holds a worker 3 s
    options.handle_signals = false;  // the test process's signals are not ours
    return options;
  }

  Simulator simulator;
  SimulatorApi api;
  http::HttpServer server;
  uint16_t bound_port = 0;  // kept: the acceptor is closed once the server drains
  std::thread thread;
};

InProcessPaymentSim::InProcessPaymentSim(SimulatorOptions options, uint16_t port)
    : impl_(std::make_unique<Impl>(std::move(options), port)) {}

InProcessPaymentSim::~InProcessPaymentSim() = default;

uint16_t InProcessPaymentSim::port() const { return impl_->bound_port; }

std::string InProcessPaymentSim::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port());
}

Simulator& InProcessPaymentSim::simulator() { return impl_->simulator; }

}  // namespace boxoffice::payment_sim

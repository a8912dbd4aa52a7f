#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "support/child_process.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {

/// A real NATS server with JetStream for tests: `nats-server -js` on a free port of 127.0.0.1,
/// its store in a fresh temporary directory. It runs in the foreground as our ChildProcess, so a
/// crashed test run leaves no server behind. restart() starts it again on the same port over the
/// same store, as an operator restarting it would, so clients reconnect by themselves.
/// Not thread-safe.
class NatsServer {
 public:
  /// Starts it; throws std::runtime_error when it does not come up.
  NatsServer();
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  uint16_t port() const { return port_; }
  /// "nats://127.0.0.1:<port>".
  std::string url() const;

  /// Stops it gracefully (SIGTERM: JetStream flushes its store) and waits for it to exit.
  void stop();
  /// SIGKILL: what the store holds is what the server had written so far.
  void kill9();
  /// Starts it again (after stop() or kill9(), or stopping it first) on the same port and store.
  void restart();
  bool running() const;

  /// What the server logged so far, for failure messages.
  std::string log() const;

 private:
  void start();

  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace boxoffice::testing

#pragma once
// The roles of one boxoffice deployment, each in a process of its own, on free ports of
// 127.0.0.1: `serve --roles booking`, `--roles waitlist`, `--roles payments`, and one gateway in
// front of them (`--roles gateway --booking-url … --waitlist-url …`) — or two gateways behind an
// haproxy. ServerProcess runs one when BOXOFFICE_TEST_DEPLOYMENT=split (or haproxy), so the HTTP
// suites run unchanged through it: port() is the front door.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace boxoffice::testing {

struct SplitDeploymentOptions {
  std::filesystem::path binary;
  /// Flags every role gets (the JWT secret, the engines' URLs, the test's own flags).
  std::vector<std::string> args;
  std::vector<std::string> env;
  /// Logs, data directories and haproxy's configuration go here.
  std::filesystem::path work_dir;
  /// Two gateways behind haproxy instead of one gateway.
  bool haproxy = false;
  /// For each process to answer GET /healthz.
  std::chrono::milliseconds ready_timeout{std::chrono::seconds(10)};
};

class SplitDeployment {
 public:
  /// Picks the ports; start() starts the processes.
  explicit SplitDeployment(SplitDeploymentOptions options);
  ~SplitDeployment();
  SplitDeployment(const SplitDeployment&) = delete;
  SplitDeployment& operator=(const SplitDeployment&) = delete;

  /// The front door: haproxy's port, or the gateway's (it may change during the first start(),
  /// when the port picked for it was taken meanwhile).
  uint16_t port() const { return front_port_; }
  /// Starts every process not running (backends first, the front door last) and waits until each
  /// answers GET /healthz. Throws std::runtime_error carrying the logs when one exits or is not
  /// ready in time.
  void start();
  /// SIGKILL to every boxoffice process, as a crash of the whole deployment (haproxy stays up,
  /// as a load balancer would).
  void kill9();
  /// SIGTERM to the gateways, then to the roles behind them; waits for each to drain. 0 when
  /// every one exited 0, else the first other code; nullopt when one had not exited in `timeout`.
  std::optional<int> terminate(std::chrono::milliseconds timeout);
  /// Every process is running.
  bool running();
  /// Every process's log, each under a header naming it.
  std::string log() const;
  /// The (first) gateway.
  ChildProcess& gateway();
  /// The port of one process: "booking", "waitlist", "payments", "gateway-1", ...
  uint16_t port_of(const std::string& name) const;
  /// The secret the gateways send to the roles behind them.
  const std::string& internal_secret() const { return internal_secret_; }

 private:
  struct Member;
  void start_member(Member& member);
  /// True once the member answers; false when it exited because its port was taken (and a
  /// retry is allowed). Throws with the logs otherwise.
  bool wait_ready(Member& member, bool may_retry_bind);
  void move_to_new_port(Member& member);
  void write_haproxy_config() const;

  SplitDeploymentOptions options_;
  std::string internal_secret_;
  uint16_t front_port_ = 0;
  std::vector<std::unique_ptr<Member>> members_;  // backends, then gateways, then haproxy
};

/// "split" or "haproxy" from BOXOFFICE_TEST_DEPLOYMENT; anything else (or unset): nullopt.
std::optional<std::string> split_deployment_requested();

}  // namespace boxoffice::testing

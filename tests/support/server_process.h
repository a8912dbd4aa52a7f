#pragma once
// The real `boxoffice serve` on a free port of 127.0.0.1, for integration tests.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/http_client.h"
#include "support/production_engines.h"
#include "support/split_deployment.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {

struct ServerOptions {
  /// Appended after the flags ServerProcess passes itself.
  std::vector<std::string> args;
  /// "K=V", added to this process's environment (flags still beat them).
  std::vector<std::string> env;
  /// Empty: $BOXOFFICE_TEST_BINARY when set, else the test executable's BOXOFFICE_BINARY.
  std::filesystem::path binary;
  /// Empty: a temporary directory removed with the ServerProcess.
  std::filesystem::path data_dir;
  std::chrono::milliseconds ready_timeout{std::chrono::seconds(10)};
  /// Where seat locks, bookings, the waitlist and the payment queue live. `from_environment`:
  /// production when BOXOFFICE_TEST_ENGINES=production (the suites run once embedded and once
  /// so), else embedded.
  enum class Engines { from_environment, embedded, production };
  Engines engines = Engines::from_environment;
  /// One process running every role, or the roles apart (support/split_deployment.h): `split`,
  /// one process per role behind one gateway; `haproxy`, two gateways behind haproxy. Both use
  /// production engines. `from_environment`: BOXOFFICE_TEST_DEPLOYMENT=split|haproxy, else one.
  enum class Deployment { from_environment, one_process, split, haproxy };
  Deployment deployment = Deployment::from_environment;
};

/// Starts `<binary> serve --listen 127.0.0.1:<port> --data-dir <dir> --jwt-secret=<random>` (and,
/// in production mode, the URLs of a Redis, a PostgreSQL database and a NATS server of its own,
/// unless the test passes its own) and
/// returns once GET /healthz answers 200. Throws std::runtime_error carrying the server's log when
/// it exits or is not ready in time. Destruction SIGKILLs a server still running. Output of every
/// run, restarts included, is appended to one log.
class ServerProcess {
 public:
  explicit ServerProcess(ServerOptions options = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  uint16_t port() const;
  const std::filesystem::path& data_dir() const { return data_dir_; }
  /// A new client with its own connection; set its `bearer` to act as someone.
  HttpClient client() const;

  /// The HS256 secret the server verifies tokens with.
  const std::string& secret() const { return secret_; }
  /// A token the server accepts: issuer and audience "boxoffice", signed with secret().
  std::string token(const std::string& subject, std::vector<std::string> roles = {},
                    std::chrono::seconds ttl = std::chrono::hours(1)) const;

  /// SIGKILL, as a crash would: nothing is drained or flushed. Split: every role's process.
  void kill9();
  /// SIGTERM, then waits for the drain. The exit code, or nullopt when the server had not exited
  /// after `timeout` (it is then SIGKILLed).
  std::optional<int> terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Starts the server again on the same port, data directory and secret (after terminate() if
  /// it is still running), and waits until it is ready.
  void restart();

  bool running() { return split_ ? split_->running() : process_ && process_->running(); }
  /// The engines behind the server in production mode; nullptr when embedded.
  ProductionEngines* engines() { return engines_.get(); }
  std::string log() const;
  /// The server's process; split: the (first) gateway's.
  ChildProcess& process() { return split_ ? split_->gateway() : *process_; }
  /// The roles' processes when they run apart; nullptr in one process.
  SplitDeployment* split() { return split_.get(); }

 private:
  void start();

  ServerOptions options_;
  std::filesystem::path binary_;
  std::unique_ptr<ProductionEngines> engines_;  // outlives every restart of the server
  TempDir work_dir_;
  std::filesystem::path data_dir_;
  uint16_t port_ = 0;
  std::string secret_;
  std::unique_ptr<ChildProcess> process_;
  std::unique_ptr<SplitDeployment> split_;  // instead of process_ when the roles run apart
};

namespace detail {
void register_default_server_binary(const char* path);
}  // namespace detail

}  // namespace boxoffice::testing

#ifdef BOXOFFICE_BINARY
namespace {
// BOXOFFICE_BINARY is a compile definition of the test executables, not of this library, so the
// test files that include this header hand it over. Internal linkage keeps every copy distinct.
[[maybe_unused]] const bool kBoxofficeBinaryRegistered =
    (::boxoffice::testing::detail::register_default_server_binary(BOXOFFICE_BINARY), true);
}  // namespace
#endif

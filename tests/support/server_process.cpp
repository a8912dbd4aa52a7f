#include "support/server_process.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "http/jwt.h"
#include "support/free_port.h"

namespace boxoffice::testing {
namespace {

constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);
constexpr auto kReadyProbeTimeout = std::chrono::milliseconds(500);
constexpr auto kKillWaitTimeout = std::chrono::seconds(5);
constexpr std::string_view kIssuerAndAudience = "boxoffice";

std::string& default_binary() {
  static std::string path;
  return path;
}

std::filesystem::path resolve_binary(const std::filesystem::path& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("BOXOFFICE_TEST_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  if (!default_binary().empty()) return default_binary();
  throw std::runtime_error(
      "ServerProcess: no binary (set ServerOptions::binary or BOXOFFICE_TEST_BINARY, or include "
      "support/server_process.h from a test executable that defines BOXOFFICE_BINARY)");
}

}  // namespace

namespace detail {
void register_default_server_binary(const char* path) { default_binary() = path; }
}  // namespace detail

ServerProcess::ServerProcess(ServerOptions options)
    : options_(std::move(options)),
      binary_(resolve_binary(options_.binary)),
      data_dir_(options_.data_dir.empty() ? work_dir_.path() / "data" : options_.data_dir),
      port_(free_port()),
      secret_(jwt::random_secret()) {
  using Deployment = ServerOptions::Deployment;
  auto deployment = options_.deployment;
  if (deployment == Deployment::from_environment) {
    const auto requested = split_deployment_requested();
    deployment = !requested              ? Deployment::one_process
                 : *requested == "split" ? Deployment::split
                                         : Deployment::haproxy;
  }
  const bool apart = deployment == Deployment::split || deployment == Deployment::haproxy;
  // Roles in separate processes share state only through the production engines.
  const bool production = apart || options_.engines == ServerOptions::Engines::production ||
                          (options_.engines == ServerOptions::Engines::from_environment &&
                           production_engines_requested());
  if (production) engines_ = std::make_unique<ProductionEngines>();
  std::filesystem::create_directories(data_dir_);
  if (apart) {
    SplitDeploymentOptions split;
    split.binary = binary_;
    split.args = {"--jwt-secret=" + secret_};
    for (auto& flag : engines_->serve_flags()) {
      const auto name = flag.substr(0, flag.find('=') + 1);
      const bool overridden =
          std::any_of(options_.args.begin(), options_.args.end(),
                      [&](const std::string& a) { return a.starts_with(name); });
      if (!overridden) split.args.push_back(std::move(flag));
    }
    split.args.insert(split.args.end(), options_.args.begin(), options_.args.end());
    split.env = options_.env;
    split.work_dir = data_dir_;
    split.haproxy = deployment == Deployment::haproxy;
    split.ready_timeout = options_.ready_timeout;
    split_ = std::make_unique<SplitDeployment>(std::move(split));
    port_ = split_->port();
  }
  start();
}

ServerProcess::~ServerProcess() = default;

void ServerProcess::start() {
  if (split_) return split_->start();
  std::vector<std::string> argv = {
      binary_.string(), "serve", "--listen", "127.0.0.1:" + std::to_string(port_), "--data-dir",
      data_dir_.string(),
      // One argument: a base64url secret may begin with '-', which a parser would take for a flag.
      "--jwt-secret=" + secret_};
  if (engines_) {
    for (auto& flag : engines_->serve_flags()) {
      const auto name = flag.substr(0, flag.find('=') + 1);  // "--redis-url="
      const bool overridden =
          std::any_of(options_.args.begin(), options_.args.end(),
                      [&](const std::string& a) { return a.starts_with(name); });
      if (!overridden) argv.push_back(std::move(flag));
    }
  }
  argv.insert(argv.end(), options_.args.begin(), options_.args.end());
  process_ = std::make_unique<ChildProcess>(std::move(argv), options_.env,
                                            work_dir_.path() / "server.log");

  HttpClient probe(port_, kReadyProbeTimeout);
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  std::string last_attempt = "no attempt";
  while (std::chrono::steady_clock::now() < deadline) {
    if (const auto code = process_->wait_exit(std::chrono::milliseconds(0))) {
      throw std::runtime_error("boxoffice exited with " + std::to_string(*code) +
                               " before it was ready; its log:\n" + log());
    }
    try {
      const Response response = probe.get("/healthz");
      if (response.status == 200) return;
      last_attempt = "GET /healthz answered " + std::to_string(response.status);
    } catch (const std::exception& e) {
      last_attempt = e.what();
    }
    std::this_thread::sleep_for(kReadyPollInterval);
  }
  process_->kill(SIGKILL);
  process_->wait_exit(kKillWaitTimeout);
  throw std::runtime_error("boxoffice was not ready after " +
                           std::to_string(options_.ready_timeout.count()) + " ms (" + last_attempt +
                           "); its log:\n" + log());
}

uint16_t ServerProcess::port() const { return split_ ? split_->port() : port_; }

HttpClient ServerProcess::client() const { return HttpClient(port()); }

std::string ServerProcess::token(const std::string& subject, std::vector<std::string> roles,
                                 std::chrono::seconds ttl) const {
  jwt::MintOptions options{subject, std::move(roles), ttl, std::string(kIssuerAndAudience),
                           std::string(kIssuerAndAudience)};
  return jwt::mint_hs256(
      secret_, options,
      std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()));
}

void ServerProcess::kill9() {
  if (split_) return split_->kill9();
  process_->kill(SIGKILL);
  process_->wait_exit(kKillWaitTimeout);
}

std::optional<int> ServerProcess::terminate(std::chrono::milliseconds timeout) {
  if (split_) return split_->terminate(timeout);
  process_->kill(SIGTERM);
  const auto code = process_->wait_exit(timeout);
  if (!code) kill9();
  return code;
}

void ServerProcess::restart() {
  if (running()) terminate();
  start();
}

std::string ServerProcess::log() const {
  if (split_) return split_->log();
  return process_ ? process_->log() : std::string();
}

}  // namespace boxoffice::testing

#include "support/split_deployment.h"

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "http/jwt.h"
#include "support/free_port.h"
#include "support/http_client.h"

namespace boxoffice::testing {

namespace {

constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);
constexpr auto kReadyProbeTimeout = std::chrono::milliseconds(500);
constexpr auto kKillWaitTimeout = std::chrono::seconds(5);
// Starts of one process that found its port taken, each on a new port, before giving up.
constexpr int kBindAttemptsMax = 3;

std::string url(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

}  // namespace

struct SplitDeployment::Member {
  std::string name;  // "booking", "gateway-1", "haproxy"
  bool boxoffice = true;
  bool gateway = false;
  uint16_t port = 0;
  std::vector<std::string> argv;
  std::unique_ptr<ChildProcess> process;

  std::filesystem::path log_path(const std::filesystem::path& dir) const {
    return dir / (name + ".log");
  }
};

SplitDeployment::SplitDeployment(SplitDeploymentOptions options)
    : options_(std::move(options)), internal_secret_(jwt::random_secret()) {
  const auto& dir = options_.work_dir;
  auto role = [&](const std::string& name, const std::string& roles,
                  std::vector<std::string> extra) {
    auto member = std::make_unique<Member>();
    member->name = name;
    member->port = free_port();
    member->argv = {options_.binary.string(),
                    "serve",
                    "--roles=" + roles,
                    "--listen=127.0.0.1:" + std::to_string(member->port),
                    "--data-dir=" + (dir / ("data-" + name)).string(),
                    "--internal-secret=" + internal_secret_};
    member->argv.insert(member->argv.end(), options_.args.begin(), options_.args.end());
    member->argv.insert(member->argv.end(), extra.begin(), extra.end());
    members_.push_back(std::move(member));
    return members_.back().get();
  };
  const auto* booking = role("booking", "booking", {});
  const auto* waitlist = role("waitlist", "waitlist", {});
  role("payments", "payments", {});
  const std::vector<std::string> backends = {"--booking-url=" + url(booking->port),
                                             "--waitlist-url=" + url(waitlist->port)};
  const int gateways = options_.haproxy ? 2 : 1;
  for (int i = 1; i <= gateways; ++i) {
    role("gateway-" + std::to_string(i), "gateway", backends)->gateway = true;
  }
  if (options_.haproxy) {
    auto member = std::make_unique<Member>();
    member->name = "haproxy";
    member->boxoffice = false;
    member->port = free_port();
    // -db: stay in the foreground, logs to stderr.
    member->argv = {"haproxy", "-db", "-f", (dir / "haproxy.cfg").string()};
    members_.push_back(std::move(member));
  }
  front_port_ = members_.back()->port;
  if (options_.haproxy) write_haproxy_config();
}

SplitDeployment::~SplitDeployment() = default;

void SplitDeployment::write_haproxy_config() const {
  std::ofstream out(options_.work_dir / "haproxy.cfg");
  out << "global\n"
         "  maxconn 2000\n"
         "defaults\n"
         "  mode http\n"
         "  timeout connect 2s\n"
         "  timeout client 60s\n"
         "  timeout server 60s\n"
         "  timeout http-request 30s\n"
         // A gateway that refuses the connection (being restarted): try the other one.
         "  retries 3\n"
         "  option redispatch\n"
         "frontend boxoffice\n"
         "  bind 127.0.0.1:"
      << front_port_
      << "\n"
         "  default_backend gateways\n"
         "backend gateways\n"
         "  balance roundrobin\n";
  for (const auto& member : members_) {
    if (member->gateway) {
      out << "  server " << member->name << " 127.0.0.1:" << member->port << "\n";
    }
  }
  if (!out) throw std::runtime_error("cannot write haproxy.cfg in " + options_.work_dir.string());
}

void SplitDeployment::start() {
  for (auto& member : members_) {
    if (member->process && member->process->running()) continue;
    start_member(*member);
  }
}

// Another process may bind a port between free_port() and the member's own bind (outbound
// connections of the members started before it take ephemeral ports from the same range): the
// member then gets a new port, and the members that point at it are told, before they start.
void SplitDeployment::move_to_new_port(Member& member) {
  const uint16_t old = member.port;
  const auto old_port = std::to_string(old);
  member.port = free_port();
  const auto new_port = std::to_string(member.port);
  for (auto& other : members_) {
    for (auto& arg : other->argv) {
      for (const std::string prefix : {"--listen=127.0.0.1:", "--booking-url=http://127.0.0.1:",
                                       "--waitlist-url=http://127.0.0.1:"}) {
        if (arg == prefix + old_port) arg = prefix + new_port;
      }
    }
  }
  if (front_port_ == old) front_port_ = member.port;
  if (options_.haproxy) write_haproxy_config();
}

void SplitDeployment::start_member(Member& member) {
  for (int attempt = 1;; ++attempt) {
    member.process = std::make_unique<ChildProcess>(member.argv, options_.env,
                                                    member.log_path(options_.work_dir));
    if (wait_ready(member, attempt < kBindAttemptsMax)) return;
    move_to_new_port(member);
  }
}

bool SplitDeployment::wait_ready(Member& member, bool may_retry_bind) {
  HttpClient probe(member.port, kReadyProbeTimeout);
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  std::string last_attempt = "no attempt";
  while (std::chrono::steady_clock::now() < deadline) {
    if (const auto code = member.process->wait_exit(std::chrono::milliseconds(0))) {
      std::ifstream in(member.log_path(options_.work_dir));
      const std::string own_log{std::istreambuf_iterator<char>(in),
                                std::istreambuf_iterator<char>()};
      if (may_retry_bind && own_log.find("Address already in use") != std::string::npos) {
        std::filesystem::remove(member.log_path(options_.work_dir));
        return false;
      }
      throw std::runtime_error(member.name + " exited with " + std::to_string(*code) +
                               " before it was ready; the logs:\n" + log());
    }
    try {
      if (probe.get("/healthz").status == 200) return true;
      last_attempt = "GET /healthz did not answer 200";
    } catch (const std::exception& e) {
      last_attempt = e.what();
    }
    std::this_thread::sleep_for(kReadyPollInterval);
  }
  member.process->kill(SIGKILL);
  member.process->wait_exit(kKillWaitTimeout);
  throw std::runtime_error(member.name + " was not ready after " +
                           std::to_string(options_.ready_timeout.count()) + " ms (" + last_attempt +
                           "); the logs:\n" + log());
}

void SplitDeployment::kill9() {
  for (auto& member : members_) {
    if (!member->boxoffice || !member->process) continue;
    member->process->kill(SIGKILL);
    member->process->wait_exit(kKillWaitTimeout);
  }
}

std::optional<int> SplitDeployment::terminate(std::chrono::milliseconds timeout) {
  std::optional<int> result = 0;
  // The front first, so nothing forwards to a role that is already gone.
  for (bool gateways : {true, false}) {
    for (auto& member : members_) {
      if (!member->boxoffice || member->gateway != gateways || !member->process) continue;
      if (!member->process->running()) continue;
      member->process->kill(SIGTERM);
      const auto code = member->process->wait_exit(timeout);
      if (!code) {
        member->process->kill(SIGKILL);
        member->process->wait_exit(kKillWaitTimeout);
        result = std::nullopt;
      } else if (result == 0 && *code != 0) {
        result = code;
      }
    }
  }
  return result;
}

bool SplitDeployment::running() {
  for (auto& member : members_) {
    if (!member->process || !member->process->running()) return false;
  }
  return true;
}

std::string SplitDeployment::log() const {
  std::string text;
  for (const auto& member : members_) {
    std::ifstream in(member->log_path(options_.work_dir));
    text += "===== " + member->name + " =====\n";
    text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return text;
}

ChildProcess& SplitDeployment::gateway() {
  for (auto& member : members_) {
    if (member->gateway) return *member->process;
  }
  throw std::logic_error("a split deployment without a gateway");
}

uint16_t SplitDeployment::port_of(const std::string& name) const {
  for (const auto& member : members_) {
    if (member->name == name) return member->port;
  }
  throw std::logic_error("no process " + name + " in the split deployment");
}

std::optional<std::string> split_deployment_requested() {
  const char* value = std::getenv("BOXOFFICE_TEST_DEPLOYMENT");
  if (value == nullptr) return std::nullopt;
  const std::string text = value;
  if (text == "split" || text == "haproxy") return text;
  return std::nullopt;
}

}  // namespace boxoffice::testing

#include "support/nats_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "support/free_port.h"

namespace boxoffice::testing {
namespace {

namespace fs = std::filesystem;

constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);
constexpr auto kInfoReadTimeout = std::chrono::milliseconds(500);
// Another process may take the free port before the server binds it.
constexpr int kStartAttemptsMax = 3;

// The first line a NATS server sends a client is INFO {json}; it names "jetstream":true once
// JetStream (with its recovered store) is up.
bool serves_jetstream(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval timeout{};
  timeout.tv_usec = std::chrono::duration_cast<std::chrono::microseconds>(kInfoReadTimeout).count();
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  std::string received;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    char buffer[4096];
    while (received.find("\r\n") == std::string::npos && received.size() < 64 * 1024) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      received.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return received.rfind("INFO ", 0) == 0 &&
         received.find("\"jetstream\":true") != std::string::npos;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

NatsServer::NatsServer() {
  for (int attempt = 1; attempt <= kStartAttemptsMax; ++attempt) {
    port_ = free_port();
    try {
      start();
      return;
    } catch (const std::runtime_error&) {
      if (attempt == kStartAttemptsMax) throw;
    }
  }
}

NatsServer::~NatsServer() {
  try {
    stop();
  } catch (...) {
    // The ChildProcess below SIGKILLs whatever is left.
  }
  server_.reset();
}

std::string NatsServer::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

void NatsServer::start() {
  server_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"nats-server", "-js", "-a", "127.0.0.1", "-p", std::to_string(port_),
                               "-sd", (dir_.path() / "js").string()},
      std::vector<std::string>{}, dir_.path() / "nats-server.log");
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline && server_->running()) {
    if (serves_jetstream(port_)) return;
    std::this_thread::sleep_for(kReadyPollInterval);
  }
  server_.reset();
  throw std::runtime_error("nats-server did not start on port " + std::to_string(port_) + ": " +
                           log());
}

void NatsServer::stop() {
  if (server_ == nullptr) return;
  if (server_->running()) {
    server_->kill(SIGTERM);
    if (!server_->wait_exit(kStopTimeout)) server_->kill(SIGKILL);
  }
  server_.reset();  // reaps it (SIGKILL to what is left)
}

void NatsServer::kill9() {
  if (server_ == nullptr) return;
  server_->kill(SIGKILL);
  (void)server_->wait_exit(kStopTimeout);
  server_.reset();
}

void NatsServer::restart() {
  stop();
  start();
}

bool NatsServer::running() const { return server_ != nullptr && server_->running(); }

std::string NatsServer::log() const { return read_file(dir_.path() / "nats-server.log"); }

}  // namespace boxoffice::testing

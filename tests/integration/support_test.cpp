// Self-tests of the test support library: if these helpers lie, every integration test lies.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <fstream>
#include <functional>
#include <thread>

#include "http/jwt.h"
#include "support/child_process.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// TempDir, free_port

TEST(TempDir, IsCreatedEmptyAndRemovedWithItsContent) {
  std::filesystem::path kept;
  {
    TempDir dir;
    kept = dir.path();
    ASSERT_TRUE(std::filesystem::is_directory(kept));
    EXPECT_TRUE(std::filesystem::is_empty(kept));
    std::filesystem::create_directories(kept / "a" / "b");
    std::ofstream(kept / "a" / "b" / "file.txt") << "content";
    TempDir other;
    EXPECT_NE(other.path(), kept);
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

bool can_bind(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return bound;
}

TEST(FreePort, ReturnsAPortThatCanBeBound) {
  const uint16_t port = free_port();
  EXPECT_GT(port, 0);
  EXPECT_TRUE(can_bind(port));
}

// ---------------------------------------------------------------------------------------------
// ChildProcess

TEST(ChildProcess, ReportsExitCode) {
  ChildProcess child({"/bin/sh", "-c", "exit 3"});
  EXPECT_EQ(child.wait_exit(5s), 3);
  EXPECT_FALSE(child.running());
}

TEST(ChildProcess, FindsProgramsInPath) {
  ChildProcess child({"true"});
  EXPECT_EQ(child.wait_exit(5s), 0);
}

TEST(ChildProcess, ReportsSignalAs128PlusSignal) {
  ChildProcess child({"/bin/sh", "-c", "exec sleep 30"});
  EXPECT_TRUE(child.running());
  EXPECT_EQ(child.wait_exit(50ms), std::nullopt);
  child.kill(SIGTERM);
  EXPECT_EQ(child.wait_exit(5s), 128 + SIGTERM);
  EXPECT_FALSE(child.running());
  child.kill(SIGKILL);  // after the reap: must not signal whatever now has that pid
}

TEST(ChildProcess, CapturesStdoutAndStderrInTheLog) {
  ChildProcess child({"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"});
  ASSERT_EQ(child.wait_exit(5s), 0);
  const std::string log = child.log();
  EXPECT_NE(log.find("to-stdout\n"), std::string::npos) << log;
  EXPECT_NE(log.find("to-stderr\n"), std::string::npos) << log;
}

TEST(ChildProcess, PassesExtraEnvironmentOverridingInherited) {
  ::setenv("BOXOFFICE_SUPPORT_TEST_INHERITED", "parent", 1);
  ::setenv("BOXOFFICE_SUPPORT_TEST_OVERRIDDEN", "parent", 1);
  ChildProcess child({"/bin/sh", "-c",
                      "echo \"$BOXOFFICE_SUPPORT_TEST_INHERITED $BOXOFFICE_SUPPORT_TEST_OVERRIDDEN "
                      "$BOXOFFICE_SUPPORT_TEST_NEW\""},
                     {"BOXOFFICE_SUPPORT_TEST_OVERRIDDEN=child", "BOXOFFICE_SUPPORT_TEST_NEW=new"});
  ASSERT_EQ(child.wait_exit(5s), 0);
  EXPECT_EQ(child.log(), "parent child new\n");
}

TEST(ChildProcess, AppendsToAGivenLogFile) {
  TempDir dir;
  const auto log = dir.path() / "out.log";
  ChildProcess({"/bin/sh", "-c", "echo first"}, {}, log).wait_exit(5s);
  ChildProcess second({"/bin/sh", "-c", "echo second"}, {}, log);
  second.wait_exit(5s);
  EXPECT_EQ(second.log(), "first\nsecond\n");
}

TEST(ChildProcess, ThrowsWhenTheProgramCannotBeExecuted) {
  EXPECT_THROW(ChildProcess({"/nonexistent/boxoffice"}), std::system_error);
  EXPECT_THROW(ChildProcess({"no-such-program-boxoffice-test"}), std::system_error);
}

TEST(ChildProcess, DestructorKillsTheWholeProcessGroup) {
  TempDir dir;
  const auto pid_file = dir.path() / "grandchild.pid";
  int child_pid = 0;
  int grandchild = 0;
  {
    // `sleep &` is a grandchild: killing only the shell would leave it running.
    ChildProcess child({"/bin/sh", "-c", "sleep 30 & echo $! > " + pid_file.string() + "; wait"});
    child_pid = child.pid();
    for (int i = 0; i < 500 && grandchild == 0; ++i) {
      std::ifstream(pid_file) >> grandchild;
      if (grandchild == 0) std::this_thread::sleep_for(10ms);
    }
  }
  EXPECT_EQ(::kill(child_pid, 0), -1);
  ASSERT_GT(grandchild, 0);
  // The grandchild is reparented to init, which reaps it shortly after the kill.
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = ::kill(grandchild, 0) == -1 && errno == ESRCH;
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone);
}

// ---------------------------------------------------------------------------------------------
// HttpClient and send_raw, against a scripted server on raw sockets (nothing shared with the
// client's Beast code, so a bug there cannot hide itself).

class ScriptedServer {
 public:
  // Answers each request with a JSON echo of it; closes the connection after every response when
  // `close_after_response` (without saying so, like a server whose keep-alive timer fired), or
  // never answers at all when `silent`.
  explicit ScriptedServer(bool close_after_response = false, bool silent = false)
      : close_after_response_(close_after_response), silent_(silent) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
        ::listen(listener_, 16) != 0) {
      throw std::runtime_error("ScriptedServer: cannot listen");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 private:
  // Waits until `fd` is readable or the server stops; false on stop.
  bool wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    while (!stop_) {
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }

  void serve() {
    while (wait_readable(listener_)) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      handle(fd);
      ::close(fd);
    }
  }

  void handle(int fd) {
    std::string pending;
    char chunk[4096];
    while (wait_readable(fd)) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) return;
      pending.append(chunk, static_cast<size_t>(n));
      for (;;) {
        const auto head_end = pending.find("\r\n\r\n");
        if (head_end == std::string::npos) break;
        const std::string head = pending.substr(0, head_end);
        std::size_t content_length = 0;
        if (const auto cl = lower(head).find("content-length:"); cl != std::string::npos) {
          content_length = std::stoul(head.substr(cl + 15));
        }
        if (pending.size() < head_end + 4 + content_length) break;
        const std::string body = pending.substr(head_end + 4, content_length);
        pending.erase(0, head_end + 4 + content_length);
        if (silent_) continue;
        if (!respond(fd, head, body) || close_after_response_) return;
      }
    }
  }

  bool respond(int fd, const std::string& head, const std::string& body) {
    const auto line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    boost::json::object echo;
    echo["request_line"] = request_line;
    echo["body"] = body;
    echo["connection"] = connections_.load();
    const std::string lowered = lower(head);
    if (const auto auth = lowered.find("\r\nauthorization: "); auth != std::string::npos) {
      const auto start = auth + 17;
      echo["authorization"] = head.substr(start, head.find("\r\n", start) - start);
    }
    if (const auto type = lowered.find("\r\ncontent-type: "); type != std::string::npos) {
      const auto start = type + 16;
      echo["content_type"] = head.substr(start, head.find("\r\n", start) - start);
    }
    const std::string payload = boost::json::serialize(echo);
    const std::string status =
        request_line.find(" /missing") != std::string::npos ? "404 Not Found" : "200 OK";
    const std::string response = "HTTP/1.1 " + status +
                                 "\r\nContent-Type: application/json\r\nX-Twice: a\r\nx-twice: "
                                 "b\r\nContent-Length: " +
                                 std::to_string(payload.size()) + "\r\n\r\n" + payload;
    return ::send(fd, response.data(), response.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(response.size());
  }

  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  bool close_after_response_;
  bool silent_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

TEST(HttpClient, SendsRequestsAndParsesResponses) {
  ScriptedServer server;
  HttpClient client(server.port(), 5s);
  client.bearer = "tok";
  const Response response = client.post("/v1/things?x=1", R"({"a":1})");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(response.headers.at("x-twice"), "a, b");
  EXPECT_EQ(response.header("absent"), "");
  const auto echo = response.json().as_object();
  EXPECT_EQ(echo.at("request_line"), "POST /v1/things?x=1 HTTP/1.1");
  EXPECT_EQ(echo.at("body"), R"({"a":1})");
  EXPECT_EQ(echo.at("authorization"), "Bearer tok");
  EXPECT_EQ(echo.at("content_type"), "application/json");

  const auto explicit_headers =
      client
          .request("PATCH", "/x", "plain",
                   {{"authorization", "Basic Zm9v"}, {"Content-Type", "text/plain"}})
          .json()
          .as_object();
  EXPECT_EQ(explicit_headers.at("request_line"), "PATCH /x HTTP/1.1");
  EXPECT_EQ(explicit_headers.at("authorization"), "Basic Zm9v");
  EXPECT_EQ(explicit_headers.at("content_type"), "text/plain");

  EXPECT_EQ(client.get("/missing").status, 404);
  EXPECT_EQ(client.del("/v1/things/1").json().at("request_line"), "DELETE /v1/things/1 HTTP/1.1");
}

TEST(HttpClient, KeepsTheConnectionAlive) {
  ScriptedServer server;
  HttpClient client(server.port(), 5s);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(client.get("/").status, 200);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClient, ReconnectsWhenTheServerClosedTheConnection) {
  ScriptedServer server(/*close_after_response=*/true);
  HttpClient client(server.port(), 5s);
  for (int i = 1; i <= 3; ++i) {
    const Response response = client.get("/");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.json().at("connection"), i);
    std::this_thread::sleep_for(20ms);  // let the close arrive, so the next request finds it stale
  }
}

TEST(HttpClient, TimesOutOnASilentServer) {
  ScriptedServer server(/*close_after_response=*/false, /*silent=*/true);
  HttpClient client(server.port(), 200ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(client.get("/"), std::runtime_error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(HttpClient, ThrowsWhenNothingListens) {
  HttpClient client(free_port(), 1s);
  EXPECT_THROW(client.get("/"), std::runtime_error);
}

TEST(HttpClient, JsonThrowsOnANonJsonBody) {
  Response response;
  response.body = "<html>";
  EXPECT_THROW(response.json(), std::runtime_error);
}

TEST(SendRaw, ReturnsEverythingUntilTheServerCloses) {
  ScriptedServer server(/*close_after_response=*/true);
  const std::string reply = send_raw(server.port(), "GET /raw HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("GET /raw HTTP/1.1"), std::string::npos) << reply;
}

TEST(SendRaw, ReturnsPipelinedResponsesAtTheTimeout) {
  ScriptedServer server;
  const auto start = std::chrono::steady_clock::now();
  const std::string reply =
      send_raw(server.port(), "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 300ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_NE(reply.find("GET /1 HTTP/1.1"), std::string::npos) << reply;
  EXPECT_NE(reply.find("GET /2 HTTP/1.1"), std::string::npos) << reply;
}

// ---------------------------------------------------------------------------------------------
// ServerProcess. The real `serve` is tested by the other integration tests; here a stand-in shows
// what ServerProcess passes, waits for and reports.

TEST(ServerProcess, FailsFastWithTheLogWhenTheServerExits) {
  TempDir dir;
  const auto fake = dir.path() / "fake-boxoffice";
  std::ofstream(fake) << "#!/bin/sh\necho \"cannot start: $*\" >&2\nexit 7\n";
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  const auto start = std::chrono::steady_clock::now();
  try {
    ServerProcess server(ServerOptions{{"--extra"}, {}, fake, {}, 10s});
    FAIL() << "ServerProcess started a server that exits";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("exited with 7"), std::string::npos) << message;
    EXPECT_NE(message.find("cannot start: serve --listen 127.0.0.1:"), std::string::npos)
        << message;
    EXPECT_NE(message.find("--jwt-secret="), std::string::npos) << message;
    EXPECT_NE(message.find("--extra"), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

std::string text(const boost::json::value& value) { return std::string(value.as_string()); }

TEST(ServerProcess, WaitsForHealthzAndRestartsOnTheSamePort) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/python3";
  TempDir dir;
  const auto fake = dir.path() / "fake-boxoffice";
  // Ready only after a delay, so ServerProcess must really poll; echoes its argv on /argv.
  std::ofstream(fake) << R"(#!/usr/bin/python3
import http.server, json, signal, sys, time
args = sys.argv[1:]
host, port = args[args.index("--listen") + 1].rsplit(":", 1)
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = json.dumps({"argv": args}).encode() if self.path == "/argv" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *unused):
        pass
signal.signal(signal.SIGTERM, lambda *unused: sys.exit(0))
print("starting", flush=True)
time.sleep(0.3)
server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
server.daemon_threads = True
server.serve_forever()
)";
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);

  ServerProcess server(ServerOptions{{"--flag"}, {}, fake, {}, 10s});
  HttpClient client = server.client();
  const auto argv = client.get("/argv").json().at("argv").as_array();
  ASSERT_EQ(argv.size(), 7u);
  EXPECT_EQ(argv[0], "serve");
  EXPECT_EQ(text(argv[2]), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(text(argv[4]), server.data_dir().string());
  EXPECT_TRUE(std::filesystem::is_directory(server.data_dir()));
  EXPECT_EQ(text(argv[5]), "--jwt-secret=" + server.secret());
  EXPECT_EQ(argv[6], "--flag");

  auto claims =
      jwt::verify(server.token("alice", {"admin"}),
                  jwt::VerifierConfig{server.secret(), "boxoffice", "boxoffice"},
                  std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()));
  ASSERT_TRUE(claims.ok()) << claims.error().detail;
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->roles, std::vector<std::string>{"admin"});

  const uint16_t port = server.port();
  server.kill9();
  EXPECT_FALSE(server.running());
  EXPECT_THROW(client.get("/healthz"), std::runtime_error);
  server.restart();
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(client.get("/healthz").status, 200);  // the same client reconnects
  EXPECT_EQ(server.terminate(), 0);
  server.restart();  // after a clean exit too
  EXPECT_EQ(server.client().get("/healthz").status, 200);
  const std::string log = server.log();
  int runs = 0;
  for (auto at = log.find("starting"); at != std::string::npos; at = log.find("starting", at + 1)) {
    ++runs;
  }
  EXPECT_EQ(runs, 3) << log;  // every run appends to one log
}

TEST(ServerProcess, RunsTheRealServerWithItsSecret) {
  ServerProcess server;
  HttpClient client = server.client();
  EXPECT_EQ(client.get("/healthz").status, 200);
  EXPECT_EQ(client.get("/v1/bookings").status, 401);
  client.bearer = server.token("alice");
  EXPECT_EQ(client.get("/v1/bookings").status, 200) << server.log();

  server.kill9();
  server.restart();
  EXPECT_EQ(client.get("/v1/bookings").status, 200);  // same port, same secret
  EXPECT_EQ(server.terminate(), 0) << server.log();
}

}  // namespace
}  // namespace boxoffice::testing

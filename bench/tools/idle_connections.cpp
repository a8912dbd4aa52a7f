// boxoffice-idle-connections: opens N keep-alive connections to an HTTP server, sends one
// `GET /healthz` on each and reads the whole answer, then keeps them all open and idle for a while
// (optionally sending one request per connection every K seconds, to stay under the server's idle
// timeout), so that the server's memory can be measured with N idle connections (bench row 8).
//
// One thread, one coroutine per connection. Connecting is bounded (--in-flight) so that the
// server's listen backlog never overflows. Progress goes to stderr; the outcome is one JSON line
// on stdout. Exit code: 0 when every connection opened and stayed open to the end, 1 otherwise,
// 2 for a bad flag or too low a descriptor limit.

// g++ 12 at -O2, once it inlines a coroutine's ramp, pairs Asio's class-specific operator new of
// the coroutine frame with the global operator delete and reports a mismatch: a false positive of
// that compiler (fixed in 13). See src/loadgen/buyers.cpp.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loadgen/http_client.h"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

constexpr int kExitIncomplete = 1;
constexpr int kExitBadFlag = 2;
/// Descriptors the process needs besides its connections (stdio, epoll, eventfd, timerfd, ...).
constexpr uint64_t kSpareDescriptors = 32;

struct Options {
  std::string url;
  std::string path = "/healthz";
  uint32_t connections = 10'000;
  double seconds = 60;
  double ping_seconds = 0;  // 0: no request after the first one
  uint32_t in_flight = 256;
  double timeout_seconds = 10;
  double progress_seconds = 5;
};

using boxoffice::loadgen::Origin;

/// Raises the soft RLIMIT_NOFILE to the hard one; returns the soft limit in force.
uint64_t raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  rlim_t wanted = limit.rlim_max;
  if (wanted == RLIM_INFINITY) {
    // Linux refuses more than fs.nr_open descriptors whatever the hard limit says.
    uint64_t nr_open = 1'048'576;
    std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
    wanted = static_cast<rlim_t>(nr_open);
  }
  if (limit.rlim_cur < wanted) {
    rlimit raised = limit;
    raised.rlim_cur = wanted;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

struct Connection {
  explicit Connection(net::io_context& ioc) : stream(ioc), ping_timer(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  net::steady_timer ping_timer;
  bool open = false;
};

struct Counts {
  uint64_t attempted = 0;
  uint64_t opened = 0;
  uint64_t failed = 0;            // no connection, or no 2xx keep-alive answer to the first request
  uint64_t closed_by_server = 0;  // opened, then closed by the server before the end
  uint64_t pings_sent = 0;
  uint64_t pings_answered = 0;  // 2xx answers to the pings
  uint64_t pings_refused = 0;   // other answers
};

class Run {
 public:
  Run(Options options, Origin origin) : options_(std::move(options)), origin_(std::move(origin)) {
    request_ = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: boxoffice-idle-connections\r\n\r\n",
        options_.path,
        origin_.host.find(':') != std::string::npos ? "[" + origin_.host + "]" : origin_.host,
        std::to_string(origin_.port));
  }

  int run() {
    net::co_spawn(ioc_, main_loop(), [this](const std::exception_ptr& e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& error) {
        fmt::print(stderr, "idle-connections: {}\n", error.what());
        fatal_ = true;
      }
    });
    ioc_.run();
    if (fatal_) return kExitBadFlag;
    const uint64_t open_at_end = counts_.opened - counts_.closed_by_server;
    fmt::print(
        "{{\"url\":\"{}\",\"path\":\"{}\",\"connections_attempted\":{},\"connections_opened\":{},"
        "\"connections_failed\":{},\"connections_closed_by_server\":{},\"connections_open_at_end\":"
        "{},\"open_seconds\":{:.3f},\"idle_seconds\":{:.3f},\"ping_seconds\":{},\"pings_sent\":{},"
        "\"pings_answered\":{},\"pings_refused\":{}}}\n",
        options_.url, options_.path, counts_.attempted, counts_.opened, counts_.failed,
        counts_.closed_by_server, open_at_end, open_seconds_, idle_seconds_, options_.ping_seconds,
        counts_.pings_sent, counts_.pings_answered, counts_.pings_refused);
    std::fflush(stdout);
    const bool complete = counts_.opened == options_.connections && counts_.closed_by_server == 0;
    return complete ? 0 : kExitIncomplete;
  }

 private:
  static Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }
  static double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  void note_error(const std::string& what) {
    if (++errors_[what] == 1)
      fmt::print(stderr, "idle-connections: first error of its kind: {}\n", what);
  }

  net::awaitable<void> main_loop() {
    tcp::resolver resolver(ioc_);
    auto [rec, results] =
        co_await resolver.async_resolve(origin_.host, std::to_string(origin_.port), use_tuple);
    if (rec || results.empty()) {
      throw std::runtime_error(
          fmt::format("cannot resolve {}:{}: {}", origin_.host, origin_.port, rec.message()));
    }
    endpoint_ = results.begin()->endpoint();
    fmt::print(stderr, "idle-connections: opening {} connections to {} ({} in flight at most)\n",
               options_.connections, options_.url, options_.in_flight);

    const auto open_start = Clock::now();
    const uint32_t openers = std::min(options_.in_flight, options_.connections);
    for (uint32_t i = 0; i < openers; ++i) net::co_spawn(ioc_, opener(), net::detached);
    net::steady_timer tick(ioc_);
    auto last_progress = Clock::now();
    while (opening_ > 0 || next_ < options_.connections) {
      tick.expires_after(std::chrono::milliseconds{50});
      co_await tick.async_wait(use_tuple);
      if (Clock::now() - last_progress >= std::chrono::seconds{1}) {
        last_progress = Clock::now();
        fmt::print(stderr,
                   "idle-connections: opening: {} open, {} failed, {} in flight, {:.1f} s\n",
                   open_now(), counts_.failed, opening_, since(open_start));
      }
    }
    open_seconds_ = since(open_start);
    const auto idle_start = Clock::now();
    fmt::print(stderr,
               "idle-connections: ready: {} of {} connections open ({} failed) after {:.1f} s; "
               "idle for {} s{}\n",
               open_now(), options_.connections, counts_.failed, open_seconds_, options_.seconds,
               options_.ping_seconds > 0
                   ? fmt::format(", one request per connection every {} s", options_.ping_seconds)
                   : std::string{});

    const auto idle_end = idle_start + seconds(options_.seconds);
    last_progress = Clock::now();
    while (Clock::now() < idle_end && open_now() > 0) {
      tick.expires_at(std::min(idle_end, Clock::now() + std::chrono::milliseconds{200}));
      co_await tick.async_wait(use_tuple);
      if (Clock::now() - last_progress >= seconds(options_.progress_seconds)) {
        last_progress = Clock::now();
        fmt::print(stderr,
                   "idle-connections: idle: {} open, {} closed by the server, {} pings answered "
                   "of {}, {:.0f} s\n",
                   open_now(), counts_.closed_by_server, counts_.pings_answered, counts_.pings_sent,
                   since(idle_start));
      }
    }
    idle_seconds_ = since(idle_start);
    finishing_ = true;
    fmt::print(stderr,
               "idle-connections: done: {} open at the end, {} closed by the server; closing\n",
               open_now(), counts_.closed_by_server);
    for (auto& c : connections_) {
      boost::system::error_code ignored;
      c->ping_timer.cancel();
      if (c->open) {
        c->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        c->stream.socket().close(ignored);
      }
    }
    for (const auto& [what, count] : errors_)
      fmt::print(stderr, "idle-connections: {} × {}\n", count, what);
  }

  uint64_t open_now() const { return counts_.opened - counts_.closed_by_server; }

  net::awaitable<void> opener() {
    while (next_ < options_.connections) {
      ++next_;
      ++opening_;
      ++counts_.attempted;
      auto connection = std::make_unique<Connection>(ioc_);
      const bool ok = co_await open_one(*connection);
      --opening_;
      if (!ok) {
        ++counts_.failed;
        continue;
      }
      ++counts_.opened;
      connection->open = true;
      auto& c = *connection;
      connections_.push_back(std::move(connection));
      net::co_spawn(ioc_, reader(c), net::detached);
      if (options_.ping_seconds > 0) net::co_spawn(ioc_, pinger(c), net::detached);
    }
  }

  /// Connects, sends the first request and reads its answer: true if it is a 2xx that keeps the
  /// connection alive.
  net::awaitable<bool> open_one(Connection& c) {
    c.stream.expires_after(seconds(options_.timeout_seconds));
    auto [cec] = co_await c.stream.async_connect(endpoint_, use_tuple);
    if (cec) {
      note_error("connect: " + cec.message());
      co_return false;
    }
    auto [wec, written] = co_await net::async_write(c.stream, net::buffer(request_), use_tuple);
    if (wec) {
      note_error("write: " + wec.message());
      co_return false;
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1 << 20);
    auto [rec, read] = co_await bhttp::async_read(c.stream, c.buffer, parser, use_tuple);
    c.stream.expires_never();
    if (rec) {
      note_error("first response: " + rec.message());
      co_return false;
    }
    const auto& response = parser.get();
    const auto status = response.result_int();
    if (status < 200 || status >= 300 || !response.keep_alive()) {
      note_error(fmt::format("first response: status {}{}", status,
                             response.keep_alive() ? "" : " with Connection: close"));
      co_return false;
    }
    c.buffer.shrink_to_fit();
    co_return true;
  }

  /// Reads whatever comes on an open connection: the answers to the pings, or the end of the
  /// stream when the server closes it.
  net::awaitable<void> reader(Connection& c) {
    for (;;) {
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(1 << 20);
      auto [ec, n] = co_await bhttp::async_read(c.stream, c.buffer, parser, use_tuple);
      if (finishing_ || !c.open) co_return;
      if (ec) {
        note_error("while idle: " + ec.message());
        close_by_server(c);
        co_return;
      }
      const auto& response = parser.get();
      const auto status = response.result_int();
      if (status >= 200 && status < 300) {
        ++counts_.pings_answered;
      } else {
        ++counts_.pings_refused;
        note_error(fmt::format("ping: status {}", status));
      }
      if (!response.keep_alive()) {
        note_error("ping answered with Connection: close");
        close_by_server(c);
        co_return;
      }
    }
  }

  void close_by_server(Connection& c) {
    if (!c.open) return;
    c.open = false;
    ++counts_.closed_by_server;
    c.ping_timer.cancel();
    boost::system::error_code ignored;
    c.stream.socket().close(ignored);
  }

  net::awaitable<void> pinger(Connection& c) {
    for (;;) {
      c.ping_timer.expires_after(seconds(options_.ping_seconds));
      auto [ec] = co_await c.ping_timer.async_wait(use_tuple);
      if (ec || finishing_ || !c.open) co_return;
      ++counts_.pings_sent;
      auto [wec, n] =
          co_await net::async_write(c.stream.socket(), net::buffer(request_), use_tuple);
      if (wec) {
        if (!finishing_ && c.open) {
          note_error("ping write: " + wec.message());
          close_by_server(c);
        }
        co_return;
      }
    }
  }

  Options options_;
  Origin origin_;
  std::string request_;
  net::io_context ioc_{1};
  tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<Connection>> connections_;
  Counts counts_;
  uint32_t next_ = 0;
  uint32_t opening_ = 0;
  bool finishing_ = false;
  bool fatal_ = false;
  double open_seconds_ = 0;
  double idle_seconds_ = 0;
  std::map<std::string, uint64_t> errors_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App cli{
      "boxoffice-idle-connections: opens N keep-alive connections to a server, sends one request "
      "on each, then keeps them open and idle (bench row 8: the server's memory with idle "
      "connections). Progress on stderr, one JSON line on stdout."};
  cli.add_option("--url", options.url, "the server, http://host:port")->required();
  cli.add_option("--path", options.path, "the request target of every request")
      ->capture_default_str();
  cli.add_option("-n,--connections", options.connections, "connections to open")
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  cli.add_option("-d,--seconds", options.seconds,
                 "how long to keep them open and idle once all are open")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cli.add_option("--ping-seconds", options.ping_seconds,
                 "send one request per connection every this many seconds, to stay under the "
                 "server's idle timeout (0: none)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cli.add_option("--in-flight", options.in_flight,
                 "connections being opened at once at most (keeps the listen backlog from "
                 "overflowing)")
      ->check(CLI::Range(1u, 65'535u))
      ->capture_default_str();
  cli.add_option("--timeout-seconds", options.timeout_seconds,
                 "connecting and the first answer, per connection")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cli.add_option("--progress-seconds", options.progress_seconds,
                 "a progress line on stderr this often while idle")
      ->check(CLI::Range(0.1, 1e7))
      ->capture_default_str();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (options.path.empty() || options.path.front() != '/') {
    fmt::print(stderr, "idle-connections: --path must start with '/'\n");
    return kExitBadFlag;
  }
  const auto origin = boxoffice::loadgen::parse_origin(options.url);
  if (!origin) {
    fmt::print(stderr, "idle-connections: --url \"{}\" is not http://host:port\n", options.url);
    return kExitBadFlag;
  }
  const uint64_t limit = raise_descriptor_limit();
  if (options.connections + kSpareDescriptors > limit) {
    fmt::print(stderr,
               "idle-connections: {} connections need {} file descriptors, but this process may "
               "open only {} (RLIMIT_NOFILE, raised to its hard limit): raise the hard limit "
               "(`ulimit -Hn` as root, LimitNOFILE= in a unit, nofile in limits.conf) or open "
               "fewer connections\n",
               options.connections, options.connections + kSpareDescriptors, limit);
    return kExitBadFlag;
  }
  fmt::print(stderr, "idle-connections: descriptor limit {}\n", limit);
  try {
    Run run(options, *origin);
    return run.run();
  } catch (const std::exception& e) {
    fmt::print(stderr, "idle-connections: {}\n", e.what());
    return kExitBadFlag;
  }
}

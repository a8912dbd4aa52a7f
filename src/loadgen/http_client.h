#pragma once
// An asynchronous HTTP/1.1 client for generating load: one keep-alive connection per virtual
// user, driven by C++20 coroutines, so thousands of users cost a few threads. Its interface
// carries Asio's awaitable: include it only from .cpp files that run coroutines. Beast stays in
// http_client.cpp.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loadgen/recorder.h"

namespace boxoffice::loadgen {

/// Where requests go: "http://host:port" (no https: load runs on a trusted network or loopback).
struct Origin {
  std::string host;
  uint16_t port = 80;
};

/// "http://host[:port][/]" → Origin; nullopt for anything else.
std::optional<Origin> parse_origin(std::string_view url);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string target;  // starts with '/', already percent-encoded
  std::string body;    // sent as application/json when not empty
  std::string bearer;  // "Authorization: Bearer <bearer>" when not empty
  Headers headers;
  /// The class the Recorder files this request under ("hold", "checkout"); empty: not recorded.
  std::string route;
  /// When the request was meant to be sent (an open-model arrival, or when a buyer started
  /// waiting for a shared connection): its latency is measured from then, not from the moment it
  /// went out, so that time spent queueing in the load generator is not hidden (coordinated
  /// omission). Unset: measured from the call to send().
  std::optional<std::chrono::steady_clock::time_point> intended_at;
};

struct Response {
  int status = kNoResponse;
  std::string body;
  Headers headers;
  std::string error;  // why there is no response ("timeout", "connect: Connection refused")
  Micros latency{0};  // from intended_at (else the call) to the last byte, connecting included

  bool ok() const { return status >= 200 && status < 300; }
  /// Case-insensitive lookup (first occurrence).
  std::optional<std::string_view> header(std::string_view name) const;
};

struct ConnectionOptions {
  /// The whole exchange: connecting, writing and reading. A request past it gets no response,
  /// and the connection is closed, since its state is unknown.
  std::chrono::milliseconds request_timeout{std::chrono::seconds{10}};
  size_t response_header_limit_bytes = 16 * 1024;
  size_t response_body_limit_bytes = 16 * 1024 * 1024;
  std::string user_agent = "boxoffice-loadgen";
};

/// One keep-alive connection, opened on first use and again whenever the server closed it.
/// Not thread-safe, and one request at a time: a virtual user awaits each answer before sending
/// the next request, as a browser's connection would.
///
/// A request that fails on a reused connection before any byte of the response arrived (the
/// server closed the idle connection meanwhile) is sent once more on a fresh connection, but only
/// when sending it twice is harmless: GET, HEAD, PUT, DELETE, OPTIONS, or any request carrying
/// an Idempotency-Key.
class Connection {
 public:
  /// `recorder` (may be null) must outlive the connection.
  Connection(boost::asio::any_io_executor executor, Origin origin, ConnectionOptions options = {},
             Recorder* recorder = nullptr);
  ~Connection();
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;

  /// Network failures come back as status kNoResponse, never as exceptions.
  boost::asio::awaitable<Response> send(Request request);

  /// TCP connections opened so far (reconnections included).
  uint64_t connects() const;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Suspends the calling coroutine for `duration` without blocking its thread.
boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds duration);

/// Runs `workers` coroutines on the caller's executor; each takes the next job number
/// (0, 1, ..., jobs - 1) and awaits `work(worker, job)` until no job is left. Completes when every
/// worker has; the first exception a job threw is rethrown then (the other workers carry on).
/// On a multi-threaded executor the workers run in parallel: `work` must then be thread-safe.
boost::asio::awaitable<void> run_jobs(
    size_t workers, uint64_t jobs,
    std::function<boost::asio::awaitable<void>(size_t worker, uint64_t job)> work);

}  // namespace boxoffice::loadgen

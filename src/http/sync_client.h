#pragma once
// A blocking HTTP/1.1 client for calling other services (the payment provider, other roles) from
// worker threads. Beast stays in sync_client.cpp so that adapters including this header compile
// quickly.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "domain/time.h"

namespace boxoffice::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ClientResponse {
  int status = 0;
  HeaderList headers;
  std::string body;

  /// Case-insensitive lookup (first occurrence).
  std::optional<std::string_view> header(std::string_view name) const;
};

enum class ClientErrc {
  timeout,          // the call's deadline passed (waiting for a connection, connecting, or I/O)
  connect_failed,   // refused, unreachable, or the host name does not resolve
  connection_lost,  // reset or closed by the peer during the exchange
  bad_response,     // not HTTP/1.1, or over the response limits
};

/// Says nothing about whether the server acted on the request: only an idempotent request (or one
/// carrying an idempotency key) may be retried blindly.
struct ClientError {
  ClientErrc code;
  std::string detail;  // "POST http://127.0.0.1:9/v1/charges: connect: Connection refused"
};

using ClientResult = std::variant<ClientResponse, ClientError>;

struct SyncClientOptions {
  /// Connections open at once, idle or busy. A caller finding them all busy waits for one, and
  /// that wait counts against its timeout.
  size_t connections_max = 8;
  /// The whole call: waiting for a connection, connecting, writing and reading.
  Millis timeout{std::chrono::seconds{2}};
  size_t response_header_limit_bytes = 16 * 1024;
  size_t response_body_limit_bytes = 1024 * 1024;
};

/// A pool of keep-alive connections to one `http://host:port` origin. Thread-safe: every call
/// takes a connection of its own for its duration. Network failures are values, never
/// exceptions.
///
/// A request that fails on a reused connection before any byte of the response arrived (the
/// server closed the idle connection) is sent once more on a fresh one. That can deliver a request
/// twice if the server acted on it and then died without answering, which is why callers making
/// non-idempotent requests send an idempotency key.
///
/// A host name is resolved each time a connection is opened; the resolver's own time limits
/// (resolv.conf), not `timeout`, bound that step. An IP address skips it.
class SyncClient {
 public:
  /// `base_url` is "http://host[:port][/prefix]"; request targets are appended to it. Throws
  /// std::invalid_argument naming the problem for anything else (https included: not supported).
  explicit SyncClient(std::string_view base_url, SyncClientOptions options = {});
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  /// `target` starts with '/' and is already percent-encoded. A non-empty body goes out as
  /// application/json unless `headers` names a Content-Type. `timeout` overrides the options'.
  ClientResult request(std::string_view method, std::string_view target, std::string_view body = {},
                       const HeaderList& headers = {},
                       std::optional<Millis> timeout = std::nullopt);
  ClientResult get(std::string_view target, const HeaderList& headers = {},
                   std::optional<Millis> timeout = std::nullopt);
  ClientResult post(std::string_view target, std::string_view body, const HeaderList& headers = {},
                    std::optional<Millis> timeout = std::nullopt);

  /// "http://host:port", as requests are addressed.
  const std::string& origin() const;
  /// TCP connections opened since construction (reconnections included): shows pooling at work.
  uint64_t connections_opened() const;
  /// Connections waiting in the pool for the next call.
  size_t idle_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Percent-encodes everything but RFC 3986's unreserved characters: for a query value or a path
/// segment.
std::string percent_encode(std::string_view text);

}  // namespace boxoffice::http

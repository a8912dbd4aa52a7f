#pragma once
// A synchronous HTTP/1.1 client for tests. Beast stays in http_client.cpp so that test files
// including this header compile quickly.

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace boxoffice::testing {

/// HTTP field names compare case-insensitively (RFC 9110 §5.1).
struct CaseInsensitiveLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};

using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

struct Response {
  int status = 0;
  std::string body;
  /// Repeated fields are joined with ", " (RFC 9110 §5.3).
  Headers headers;

  /// The body parsed as JSON; throws std::runtime_error quoting the body when it is not JSON.
  boost::json::value json() const;
  /// The field's value, or "" when absent.
  std::string header(std::string_view name) const;
};

/// One keep-alive connection to 127.0.0.1:port, opened on first use and reopened transparently
/// when the server has closed it (a request that fails on a reused connection before any byte of
/// the response arrived is sent once more on a fresh one). Every failure — refused, reset,
/// timed out, unparsable — throws std::runtime_error. Not thread-safe.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  /// `method` is any token ("GET", "PATCH", "BREW"). A non-empty body is sent as
  /// application/json unless `headers` names a Content-Type.
  Response request(std::string_view method, std::string_view target, std::string_view body = "",
                   const Headers& headers = {});
  Response get(std::string_view target, const Headers& headers = {});
  Response post(std::string_view target, std::string_view body, const Headers& headers = {});
  Response del(std::string_view target, const Headers& headers = {});

  /// Drops the connection; the next request opens a new one.
  void close();

  uint16_t port() const;

  /// Sent as "Authorization: Bearer <bearer>" when not empty and `headers` has no Authorization.
  std::string bearer;
  /// Bounds each request as a whole (connect, write, read).
  std::chrono::milliseconds timeout;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Writes `bytes` as they are on a fresh connection to 127.0.0.1:port and returns everything the
/// server sends back until it closes the connection or `timeout` passes — for oversized heads,
/// pipelining and malformed requests. Throws std::runtime_error only if the connection cannot be
/// opened.
std::string send_raw(uint16_t port, std::string_view bytes,
                     std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace boxoffice::testing

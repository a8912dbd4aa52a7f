#pragma once
// Plain request/response values, free of Beast, so routing and handlers compile quickly and can
// be tested without a socket. The server (server.cpp) converts to and from Beast's types.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boxoffice::http {

using HeaderFields = std::vector<std::pair<std::string, std::string>>;

/// Whether two header field names are the same (ASCII, case-insensitive).
bool same_field_name(std::string_view a, std::string_view b);
/// The value of the first field named `name` in `fields` (case-insensitive).
std::optional<std::string_view> find_field(const HeaderFields& fields, std::string_view name);
/// Appends "name: value\r\n"; CR, LF and NUL in either are written as spaces, so no value can
/// start a field or a message of its own.
void append_field(std::string& out, std::string_view name, std::string_view value);

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, percent-decoded
  std::string query;   // raw, after '?'
  HeaderFields headers;
  std::string body;
  std::string remote_address;

  /// Case-insensitive header lookup (first occurrence).
  std::optional<std::string_view> header(std::string_view name) const;
  /// A query parameter's decoded value.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

/// The response's status line and header fields as HTTP/1.1 puts them on the wire, up to and
/// with the blank line; the body follows as it is. The server writes Server, Content-Type,
/// X-Request-Id, Content-Length (the body's size) and, when !keep_alive, "Connection: close"
/// itself; a field of `response.headers` with one of those names is left out, and of several
/// with one name the last stands. CR, LF and NUL in a name or value are written as spaces, so no
/// value can start a field or a response of its own.
std::string response_head(const HttpResponse& response, std::string_view request_id,
                          bool keep_alive);

}  // namespace boxoffice::http

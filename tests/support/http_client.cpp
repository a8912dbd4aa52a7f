#include "support/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <optional>
#include <stdexcept>

namespace boxoffice::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// Generous, so a test sees the server's real answer (e.g. all of /metrics) rather than ours.
constexpr std::size_t kResponseHeadBytesMax = std::size_t{64} * 1024;
constexpr std::uint64_t kResponseBodyBytesMax = std::uint64_t{64} * 1024 * 1024;
constexpr std::size_t kErrorBodyQuoteBytesMax = 512;

tcp::endpoint loopback(uint16_t port) { return {net::ip::address_v4::loopback(), port}; }

// Runs the operation just started on `ioc` to completion. The tcp_stream's expiry bounds it: Beast
// cancels the operation with error::timeout, which is why the client uses async operations at all
// (tcp_stream's timeouts do not apply to synchronous ones).
void run(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

}  // namespace

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return beast::iless{}(a, b);
}

boost::json::value Response::json() const {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(body, ec);
  if (ec) {
    throw std::runtime_error("response body is not JSON (" + ec.message() +
                             "): " + body.substr(0, kErrorBodyQuoteBytesMax));
  }
  return value;
}

std::string Response::header(std::string_view name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpClient::Impl {
  explicit Impl(uint16_t port) : port(port) {}

  beast::error_code connect(std::chrono::steady_clock::time_point deadline) {
    stream.emplace(ioc);
    buffer.clear();
    stream->expires_at(deadline);
    beast::error_code ec;
    stream->async_connect(loopback(port), [&](beast::error_code e) { ec = e; });
    run(ioc);
    if (ec) stream.reset();
    return ec;
  }

  // One request and its response on the current connection. `got_some` says whether any byte of
  // a response arrived, which is what separates a stale keep-alive connection from a server that
  // failed mid-answer.
  beast::error_code exchange(http::request<http::string_body>& request, Response& out,
                             bool& keep_alive, bool& got_some) {
    beast::error_code ec;
    got_some = false;
    http::async_write(*stream, request, [&](beast::error_code e, std::size_t) { ec = e; });
    run(ioc);
    if (ec) return ec;

    http::response_parser<http::string_body> parser;
    parser.header_limit(kResponseHeadBytesMax);
    parser.body_limit(kResponseBodyBytesMax);
    if (request.method() == http::verb::head) parser.skip(true);
    http::async_read(*stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run(ioc);
    got_some = parser.got_some();
    if (ec) return ec;

    auto response = parser.release();
    keep_alive = response.keep_alive();
    out.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      auto [it, inserted] =
          out.headers.try_emplace(std::string(field.name_string()), std::string(field.value()));
      if (!inserted) it->second.append(", ").append(field.value());
    }
    out.body = std::move(response.body());
    return {};
  }

  uint16_t port;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds timeout)
    : timeout(timeout), impl_(std::make_unique<Impl>(port)) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

uint16_t HttpClient::port() const { return impl_->port; }

void HttpClient::close() { impl_->stream.reset(); }

Response HttpClient::request(std::string_view method, std::string_view target,
                             std::string_view body, const Headers& headers) {
  http::request<http::string_body> request;
  request.method_string(method);
  request.target(target);
  request.version(11);
  request.set(http::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  for (const auto& [name, value] : headers) request.set(name, value);
  if (!bearer.empty() && !headers.contains("Authorization")) {
    request.set(http::field::authorization, "Bearer " + bearer);
  }
  if (!body.empty() && !headers.contains("Content-Type")) {
    request.set(http::field::content_type, "application/json");
  }
  request.body() = std::string(body);
  request.prepare_payload();

  auto fail = [&](std::string_view what, const beast::error_code& ec) -> Response {
    impl_->stream.reset();
    throw std::runtime_error("HTTP " + std::string(method) + " " + std::string(target) +
                             " on 127.0.0.1:" + std::to_string(impl_->port) + ": " +
                             std::string(what) + ": " + ec.message());
  };

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const bool reused = impl_->stream.has_value();
  if (reused) {
    impl_->stream->expires_at(deadline);
  } else if (auto ec = impl_->connect(deadline)) {
    return fail("connect", ec);
  }

  Response response;
  bool keep_alive = false;
  bool got_some = false;
  beast::error_code ec = impl_->exchange(request, response, keep_alive, got_some);
  if (ec && reused && !got_some && ec != beast::error::timeout) {
    // The server closed the idle connection (its keep-alive timeout, a restart) before it saw
    // this request: the request was not processed, so sending it again is safe.
    response = Response{};
    if (auto connect_ec = impl_->connect(deadline)) return fail("reconnect", connect_ec);
    ec = impl_->exchange(request, response, keep_alive, got_some);
  }
  if (ec) return fail(got_some ? "reading the response" : "exchange", ec);
  if (!keep_alive) impl_->stream.reset();
  return response;
}

Response HttpClient::get(std::string_view target, const Headers& headers) {
  return request("GET", target, "", headers);
}

Response HttpClient::post(std::string_view target, std::string_view body, const Headers& headers) {
  return request("POST", target, body, headers);
}

Response HttpClient::del(std::string_view target, const Headers& headers) {
  return request("DELETE", target, "", headers);
}

std::string send_raw(uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  // One deadline for connect, write and read together: the call never takes much over `timeout`.
  stream.expires_after(timeout);
  beast::error_code ec;
  stream.async_connect(loopback(port), [&](beast::error_code e) { ec = e; });
  run(ioc);
  if (ec) {
    throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + ": " + ec.message());
  }
  net::async_write(stream, net::buffer(bytes.data(), bytes.size()),
                   [](beast::error_code, std::size_t) {});
  run(ioc);
  // Read whatever the write's fate: a server that refuses a head halfway through still answers.
  std::string received;
  net::async_read(stream, net::dynamic_buffer(received), [](beast::error_code, std::size_t) {});
  run(ioc);
  return received;
}

}  // namespace boxoffice::testing

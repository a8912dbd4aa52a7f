#include "http/sync_client.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "http/message.h"

namespace boxoffice::http {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Origin {
  std::string host;  // a name, or an address without IPv6 brackets
  uint16_t port = 80;
  std::optional<net::ip::address> address;  // set when `host` is an IP literal: no resolving
  std::string authority;                    // for the Host header: "host:port"
  std::string prefix;                       // the base URL's path, without a trailing '/'
};

Origin parse_base_url(std::string_view base_url) {
  const auto refuse = [&](std::string_view why) {
    return std::invalid_argument("base URL \"" + std::string{base_url} + "\": " + std::string{why});
  };
  auto parsed = boost::urls::parse_absolute_uri(base_url);
  if (!parsed) throw refuse("not an absolute URL (expected http://host:port)");
  const auto& url = *parsed;
  if (url.scheme_id() == boost::urls::scheme::https) {
    throw refuse("https is not supported yet; use http:// (TLS belongs to a sidecar for now)");
  }
  if (url.scheme_id() != boost::urls::scheme::http) throw refuse("the scheme must be http");
  if (url.has_userinfo()) throw refuse("credentials in the URL are not supported");
  if (url.has_query() || url.has_fragment()) {
    throw refuse("a query or fragment makes no sense here");
  }
  Origin origin;
  origin.host = url.host_address();
  if (origin.host.empty()) throw refuse("no host");
  if (url.has_port()) {
    if (url.port_number() == 0) throw refuse("the port must be 1-65535");
    origin.port = url.port_number();
  }
  boost::system::error_code ec;
  const auto address = net::ip::make_address(origin.host, ec);
  if (!ec) origin.address = address;
  const bool ipv6 = origin.address && origin.address->is_v6();
  origin.authority =
      (ipv6 ? "[" + origin.host + "]" : origin.host) + ":" + std::to_string(origin.port);
  origin.prefix = url.encoded_path();
  while (!origin.prefix.empty() && origin.prefix.back() == '/') origin.prefix.pop_back();
  return origin;
}

// One connection, with an io_context of its own: the calling thread runs the operations it
// starts, and the tcp_stream's expiry (which only applies to asynchronous operations) cancels them
// at the deadline. Member order matters: the stream must die before its io_context.
struct Connection {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
};

void run(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

// An idle pooled connection the peer has closed (its keep-alive timeout, a restart) shows it as a
// readable end of stream. Catching that here, before sending, keeps the blind resend below for the
// rarer race where the close crosses our request on the wire.
bool unusable(tcp::socket& socket) {
  char byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return true;  // 0: closed; > 0: bytes nobody asked for, so the stream is out of step
  return errno != EAGAIN && errno != EWOULDBLOCK;
}

bool is_http_parse_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

}  // namespace

std::optional<std::string_view> ClientResponse::header(std::string_view name) const {
  return find_field(headers, name);
}

struct SyncClient::Impl {
  Impl(Origin o, SyncClientOptions opts)
      : origin(std::move(o)), options(opts), text("http://" + origin.authority) {}

  /// A right to one of the `connections_max` connections, returned to the pool on destruction.
  /// `connection` is empty when the holder must open a new one.
  struct Lease {
    Lease(Impl& pool, std::unique_ptr<Connection> taken)
        : pool(pool), connection(std::move(taken)) {}
    ~Lease() { pool.give_back(std::move(connection), reusable); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    Impl& pool;
    std::unique_ptr<Connection> connection;
    bool reusable = false;
  };

  std::optional<std::unique_ptr<Connection>> take(Clock::time_point deadline) {
    std::unique_lock lock(mutex);
    const bool available = freed.wait_until(
        lock, deadline, [this] { return !idle.empty() || open < options.connections_max; });
    if (!available) return std::nullopt;
    if (!idle.empty()) {
      // Most recently used first: the one least likely to have been closed by the peer.
      auto connection = std::move(idle.back());
      idle.pop_back();
      return connection;
    }
    ++open;
    return std::unique_ptr<Connection>{};
  }

  void give_back(std::unique_ptr<Connection> connection, bool reusable) {
    {
      std::lock_guard lock(mutex);
      if (connection && reusable) {
        connection->stream.expires_never();
        idle.push_back(std::move(connection));
      } else {
        --open;
      }
    }
    freed.notify_one();
  }

  beast::error_code connect(Connection& connection, Clock::time_point deadline) {
    connection.stream.expires_at(deadline);
    beast::error_code ec;
    if (origin.address) {
      connection.stream.async_connect(tcp::endpoint{*origin.address, origin.port},
                                      [&ec](beast::error_code e) { ec = e; });
    } else {
      tcp::resolver resolver(connection.ioc);
      const auto endpoints = resolver.resolve(origin.host, std::to_string(origin.port), ec);
      if (ec) return ec;
      connection.stream.async_connect(endpoints,
                                      [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
    }
    run(connection.ioc);
    if (ec) return ec;
    ++opened;
    connection.stream.socket().set_option(tcp::no_delay(true), ec);
    return ec;
  }

  struct Exchange {
    beast::error_code ec;
    bool got_some = false;  // any byte of a response: the server saw the request
    bool keep_alive = false;
  };

  Exchange exchange(Connection& connection, bhttp::request<bhttp::string_body>& request,
                    ClientResponse& out, Clock::time_point deadline) {
    Exchange result;
    connection.stream.expires_at(deadline);
    bhttp::async_write(connection.stream, request,
                       [&result](beast::error_code e, size_t) { result.ec = e; });
    run(connection.ioc);
    if (result.ec) return result;

    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.response_header_limit_bytes));
    parser.body_limit(options.response_body_limit_bytes);
    if (request.method() == bhttp::verb::head) parser.skip(true);
    bhttp::async_read(connection.stream, connection.buffer, parser,
                      [&result](beast::error_code e, size_t) { result.ec = e; });
    run(connection.ioc);
    result.got_some = parser.got_some();
    if (result.ec) return result;

    auto message = parser.release();
    result.keep_alive = message.keep_alive();
    out.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
      out.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
    }
    out.body = std::move(message.body());
    return result;
  }

  Origin origin;
  SyncClientOptions options;
  std::string text;

  mutable std::mutex mutex;
  std::condition_variable freed;
  std::vector<std::unique_ptr<Connection>> idle;
  size_t open = 0;  // idle + in use
  std::atomic<uint64_t> opened{0};
};

SyncClient::SyncClient(std::string_view base_url, SyncClientOptions options)
    : impl_(std::make_unique<Impl>(parse_base_url(base_url), options)) {
  if (options.connections_max == 0) throw std::invalid_argument("connections_max must be > 0");
}

SyncClient::~SyncClient() = default;

const std::string& SyncClient::origin() const { return impl_->text; }

uint64_t SyncClient::connections_opened() const { return impl_->opened.load(); }

size_t SyncClient::idle_connections() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->idle.size();
}

ClientResult SyncClient::request(std::string_view method, std::string_view target,
                                 std::string_view body, const HeaderList& headers,
                                 std::optional<Millis> timeout) {
  auto& impl = *impl_;
  const Millis limit = timeout.value_or(impl.options.timeout);
  const auto deadline = Clock::now() + limit;
  const auto what =
      std::string{method} + " " + impl.text + impl.origin.prefix + std::string{target};
  const auto fail = [&](std::string_view step, const beast::error_code& ec,
                        ClientErrc code) -> ClientResult {
    if (ec == beast::error::timeout) {
      return ClientError{ClientErrc::timeout, what + ": " + std::string{step} +
                                                  ": no answer within " +
                                                  std::to_string(limit.count()) + " ms"};
    }
    return ClientError{code, what + ": " + std::string{step} + ": " + ec.message()};
  };

  try {
    auto taken = impl.take(deadline);
    if (!taken) {
      return ClientError{ClientErrc::timeout, what + ": all " +
                                                  std::to_string(impl.options.connections_max) +
                                                  " connections stayed busy for " +
                                                  std::to_string(limit.count()) + " ms"};
    }
    Impl::Lease lease(impl, std::move(*taken));
    if (lease.connection && unusable(lease.connection->stream.socket())) lease.connection.reset();
    const bool reused = lease.connection != nullptr;
    if (!reused) {
      lease.connection = std::make_unique<Connection>();
      if (auto ec = impl.connect(*lease.connection, deadline)) {
        return fail("connect", ec, ClientErrc::connect_failed);
      }
    }

    bhttp::request<bhttp::string_body> message;
    message.method_string(method);
    message.target(impl.origin.prefix + std::string{target});
    message.version(11);
    message.set(bhttp::field::host, impl.origin.authority);
    message.set(bhttp::field::user_agent, "boxoffice");
    bool has_content_type = false;
    for (const auto& [name, value] : headers) {
      has_content_type = has_content_type || same_field_name(name, "Content-Type");
      message.set(name, value);
    }
    if (!body.empty() && !has_content_type) {
      message.set(bhttp::field::content_type, "application/json");
    }
    message.body() = std::string{body};
    message.prepare_payload();

    ClientResponse response;
    auto result = impl.exchange(*lease.connection, message, response, deadline);
    if (result.ec && reused && !result.got_some && result.ec != beast::error::timeout) {
      // The server closed the idle connection before it read this request, so it did not act on
      // it: one fresh connection, same deadline.
      response = ClientResponse{};
      lease.connection = std::make_unique<Connection>();
      if (auto ec = impl.connect(*lease.connection, deadline)) {
        return fail("reconnect", ec, ClientErrc::connect_failed);
      }
      result = impl.exchange(*lease.connection, message, response, deadline);
    }
    if (result.ec) {
      const auto code =
          is_http_parse_error(result.ec) ? ClientErrc::bad_response : ClientErrc::connection_lost;
      return fail(result.got_some ? "reading the response" : "sending the request", result.ec,
                  code);
    }
    lease.reusable = result.keep_alive && lease.connection->buffer.size() == 0;
    return response;
  } catch (const std::exception& e) {
    // Beast reports network failures as error codes; what lands here is a malformed request
    // (a header value with CR/LF) or resource exhaustion, and it still must not escape.
    return ClientError{ClientErrc::bad_response, what + ": " + e.what()};
  }
}

ClientResult SyncClient::get(std::string_view target, const HeaderList& headers,
                             std::optional<Millis> timeout) {
  return request("GET", target, {}, headers, timeout);
}

ClientResult SyncClient::post(std::string_view target, std::string_view body,
                              const HeaderList& headers, std::optional<Millis> timeout) {
  return request("POST", target, body, headers, timeout);
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' ||
                            byte == '_' || byte == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

}  // namespace boxoffice::http

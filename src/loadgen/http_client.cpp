#include "loadgen/http_client.h"

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <exception>

#include "http/message.h"

namespace boxoffice::loadgen {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::optional<Origin> parse_origin(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
  url.remove_prefix(scheme.size());
  if (!url.empty() && url.back() == '/') url.remove_suffix(1);
  if (url.empty() || url.find('/') != std::string_view::npos) return std::nullopt;
  Origin origin;
  std::string_view host = url;
  std::string_view port;
  if (url.front() == '[') {  // IPv6 literal: [::1]:8080
    const auto close = url.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = url.substr(1, close - 1);
    const auto rest = url.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (const auto colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  origin.host = std::string{host};
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    origin.port = static_cast<uint16_t>(value);
  }
  return origin;
}

std::optional<std::string_view> Response::header(std::string_view name) const {
  return http::find_field(headers, name);
}

namespace {

bool retry_safe(const Request& request) {
  static constexpr std::string_view kIdempotent[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
  for (auto method : kIdempotent) {
    if (request.method == method) return true;
  }
  for (const auto& [key, value] : request.headers) {
    if (http::same_field_name(key, "Idempotency-Key")) return true;
  }
  return false;
}

/// A peer that closed (or reset) the connection: what a server does to an idle keep-alive.
bool is_closed_by_peer(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::connection_aborted;
}

std::string describe(std::string_view step, const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) return "timeout";
  return std::string{step} + ": " + ec.message();
}

}  // namespace

struct Connection::Impl {
  Impl(net::any_io_executor executor, Origin o, ConnectionOptions opts, Recorder* r)
      : stream(executor),
        resolver(executor),
        origin(std::move(o)),
        options(std::move(opts)),
        recorder(r) {
    host_header =
        origin.host.find(':') == std::string::npos ? origin.host : "[" + origin.host + "]";
    if (origin.port != 80) host_header += ":" + std::to_string(origin.port);
  }

  /// Why an exchange ended without a response, and whether a fresh connection may fix it.
  struct Outcome {
    boost::system::error_code ec;
    std::string step;
    bool stale = false;  // closed by the peer before any byte of the response
  };

  net::awaitable<boost::system::error_code> connect(SteadyClock::time_point deadline);
  net::awaitable<Outcome> exchange(const std::string& request, SteadyClock::time_point deadline,
                                   Response& out);
  /// `request` as HTTP/1.1 puts it on the wire: Host, User-Agent, Authorization, its headers,
  /// Content-Type (application/json for a body, unless given) and Content-Length.
  std::string wire(const Request& request) const;
  void close() {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
    open = false;
  }

  beast::tcp_stream stream;
  tcp::resolver resolver;
  beast::flat_buffer buffer;
  Origin origin;
  ConnectionOptions options;
  Recorder* recorder;
  std::string host_header;
  bool open = false;
  uint64_t connects = 0;
};

net::awaitable<boost::system::error_code> Connection::Impl::connect(
    SteadyClock::time_point deadline) {
  // Resolved on every connect, so a load run follows a name that moves; a literal IP costs
  // nothing here.
  auto [rec, endpoints] =
      co_await resolver.async_resolve(origin.host, std::to_string(origin.port), use_tuple);
  if (rec) co_return rec;
  stream.expires_at(deadline);
  auto [cec, endpoint] = co_await stream.async_connect(endpoints, use_tuple);
  if (cec) co_return cec;
  boost::system::error_code ignored;
  // Small requests on a keep-alive connection: without this, Nagle and delayed ACKs add ~40 ms.
  stream.socket().set_option(tcp::no_delay(true), ignored);
  buffer.clear();
  open = true;
  ++connects;
  co_return boost::system::error_code{};
}

net::awaitable<Connection::Impl::Outcome> Connection::Impl::exchange(
    const std::string& request, SteadyClock::time_point deadline, Response& out) {
  stream.expires_at(deadline);
  auto [wec, written] = co_await net::async_write(stream, net::buffer(request), use_tuple);
  if (wec) co_return Outcome{wec, "write", is_closed_by_peer(wec)};

  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options.response_header_limit_bytes));
  parser.body_limit(options.response_body_limit_bytes);
  auto [rec, read] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  if (rec) co_return Outcome{rec, "read", !parser.got_some() && is_closed_by_peer(rec)};
  stream.expires_never();

  auto response = parser.release();
  out.status = response.result_int();
  out.headers.clear();
  for (const auto& field : response) {
    out.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
  }
  out.body = std::move(response.body());
  if (!response.keep_alive()) close();
  co_return Outcome{};
}

std::string Connection::Impl::wire(const Request& request) const {
  std::string out;
  out.reserve(128 + request.target.size() + request.bearer.size() + request.body.size());
  const auto field = [&out](std::string_view name, std::string_view value) {
    http::append_field(out, name, value);
  };
  out.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
  field("Host", host_header);
  field("User-Agent", options.user_agent);
  if (!request.bearer.empty()) field("Authorization", "Bearer " + request.bearer);
  bool has_type = false;
  for (const auto& [key, value] : request.headers) {
    has_type = has_type || http::same_field_name(key, "Content-Type");
    field(key, value);
  }
  const bool sends_body = !request.body.empty() || request.method == "POST" ||
                          request.method == "PUT" || request.method == "PATCH";
  if (!request.body.empty() && !has_type) field("Content-Type", "application/json");
  if (sends_body) field("Content-Length", std::to_string(request.body.size()));
  out.append("\r\n").append(request.body);
  return out;
}

Connection::Connection(net::any_io_executor executor, Origin origin, ConnectionOptions options,
                       Recorder* recorder)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(origin), std::move(options),
                                   recorder)) {}

Connection::~Connection() = default;
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

uint64_t Connection::connects() const { return impl_->connects; }

void Connection::close() { impl_->close(); }

net::awaitable<Response> Connection::send(Request request) {
  auto& s = *impl_;
  const auto start = SteadyClock::now();
  const auto deadline = start + s.options.request_timeout;

  // The request goes out as one string, put together here: Beast's request and serializer cost
  // the load generator more than the bytes (perf: ~8% of its samples), and it shares the
  // machine with the server it measures.
  const std::string message = s.wire(request);

  Response out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = s.open;
    if (!s.open) {
      if (auto ec = co_await s.connect(deadline)) {
        s.close();
        out.error = describe("connect", ec);
        break;
      }
    }
    auto outcome = co_await s.exchange(message, deadline, out);
    if (!outcome.ec) {
      out.error.clear();
      break;
    }
    s.close();
    out.status = kNoResponse;
    out.error = describe(outcome.step, outcome.ec);
    // Only a connection the server may have closed while it sat idle earns a second try.
    if (!(outcome.stale && reused && retry_safe(request))) break;
  }
  out.latency = std::chrono::duration_cast<Micros>(
      SteadyClock::now() - std::min(start, request.intended_at.value_or(start)));
  if (s.recorder && !request.route.empty())
    s.recorder->record(request.route, out.status, out.latency);
  co_return out;
}

net::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  net::steady_timer timer(co_await net::this_coro::executor, duration);
  co_await timer.async_wait(net::use_awaitable);
}

net::awaitable<void> run_jobs(size_t workers, uint64_t jobs,
                              std::function<net::awaitable<void>(size_t, uint64_t)> work) {
  if (jobs == 0) co_return;
  workers = std::max<size_t>(1, std::min<uint64_t>(workers, jobs));
  auto executor = co_await net::this_coro::executor;

  struct Shared {
    Shared(const net::any_io_executor& executor, size_t workers) : done(executor, workers) {}
    std::atomic<uint64_t> next{0};
    std::mutex mutex;
    std::exception_ptr error;
    // Thread-safe, and buffered for every worker, so a finishing worker never waits.
    net::experimental::concurrent_channel<void(boost::system::error_code)> done;
  };
  auto shared = std::make_shared<Shared>(executor, workers);
  for (size_t w = 0; w < workers; ++w) {
    net::co_spawn(
        executor,
        [shared, w, jobs, &work]() -> net::awaitable<void> {
          for (;;) {
            const auto job = shared->next.fetch_add(1);
            if (job >= jobs) break;
            try {
              co_await work(w, job);
            } catch (...) {
              std::lock_guard lock(shared->mutex);
              if (!shared->error) shared->error = std::current_exception();
            }
          }
        },
        [shared](const std::exception_ptr&) {
          shared->done.try_send(boost::system::error_code{});
        });
  }
  for (size_t w = 0; w < workers; ++w) co_await shared->done.async_receive(net::use_awaitable);
  if (shared->error) std::rethrow_exception(shared->error);
}

}  // namespace boxoffice::loadgen

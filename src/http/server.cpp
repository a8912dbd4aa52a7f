#include "http/server.h"

// See loadgen/buyers.cpp: a false positive of g++ 12 on Asio's coroutine frames.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "domain/ids.h"
#include "http/problem.h"
#include "http/request_handler.h"

namespace boxoffice::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

bool is_valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

struct HttpServer::Impl {
  Impl(ServerOptions o, RequestHandler& a)
      : options(std::move(o)),
        api(a),
        workers(options.worker_threads),
        acceptor(ioc),
        signals(ioc, SIGINT, SIGTERM),
        drain_strand(net::make_strand(ioc)),
        drain_timer(drain_strand) {
    for (size_t i = 1; i < options.io_threads; ++i) {
      more_contexts.push_back(std::make_unique<net::io_context>(1));
      keep_running.push_back(net::make_work_guard(*more_contexts.back()));
    }
  }

  /// What a connection exposes to the drain: its socket's executor and whether it waits idle.
  struct Connection {
    beast::tcp_stream* stream;
    net::any_io_executor executor;  // the connection's I/O thread, valid after the stream is gone
    bool idle = true;               // touched on the connection's executor only
    bool closed = false;            // set there before the stream is destroyed
  };

  net::awaitable<void> accept_loop();
  net::awaitable<void> session(tcp::socket socket);
  net::awaitable<HttpResponse> answer(HttpRequest& request);
  std::optional<HttpResponse> refuse_head(const bhttp::request<bhttp::string_body>& message) const;
  void begin_drain();
  void connection_done();
  /// Where the next connection lives: each I/O thread runs an io_context of its own, so a
  /// connection's handlers never wait for another thread (no strand, no cross-thread wake-up);
  /// new connections go round the threads.
  net::any_io_executor next_connection_executor() {
    const size_t i =
        next_context.fetch_add(1, std::memory_order_relaxed) % (more_contexts.size() + 1);
    return i == 0 ? ioc.get_executor() : more_contexts[i - 1]->get_executor();
  }
  void stop_contexts() {
    ioc.stop();
    for (auto& context : more_contexts) context->stop();
  }

  ServerOptions options;
  RequestHandler& api;
  net::io_context ioc;
  net::thread_pool workers;
  tcp::acceptor acceptor;
  net::signal_set signals;
  /// begin_drain, the drain timer and its cancellation run here only.
  net::strand<net::io_context::executor_type> drain_strand;
  net::steady_timer drain_timer;
  /// The I/O threads but the first (which runs `ioc`, with the acceptor and the drain): their
  /// contexts run until the drain is over (keep_running is cleared on the drain strand).
  std::vector<std::unique_ptr<net::io_context>> more_contexts;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::atomic<size_t> next_context{0};
  std::atomic<size_t> worker_queue{0};
  std::atomic<bool> draining{false};

  std::mutex connections_mutex;
  std::unordered_set<std::shared_ptr<Connection>> connections;
};

HttpServer::HttpServer(ServerOptions options, RequestHandler& api)
    : impl_(std::make_unique<Impl>(std::move(options), api)) {}

HttpServer::~HttpServer() = default;

void HttpServer::listen() {
  auto& o = impl_->options;
  boost::system::error_code ec;
  const auto address = net::ip::make_address(o.address, ec);
  if (ec) throw std::runtime_error("cannot listen on \"" + o.address + "\": not an IP address");
  const tcp::endpoint endpoint{address, o.port};
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " +
                             ec.message());
  }
}

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::run() {
  auto& impl = *impl_;
  if (impl.options.handle_signals) {
    impl.signals.async_wait([&impl](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      spdlog::info("signal {}: draining", signal);
      net::post(impl.drain_strand, [&impl] { impl.begin_drain(); });
    });
  } else {
    impl.signals.clear();
  }
  // On the drain strand: closing the acceptor there never races an accept in progress.
  net::co_spawn(impl.drain_strand, impl.accept_loop(), net::detached);
  std::vector<std::thread> threads;
  for (auto& context : impl.more_contexts) threads.emplace_back([&context] { context->run(); });
  impl.ioc.run();
  for (auto& t : threads) t.join();
  impl.workers.join();
}

void HttpServer::stop() {
  net::post(impl_->drain_strand, [impl = impl_.get()] { impl->begin_drain(); });
}

void HttpServer::Impl::begin_drain() {
  if (draining.exchange(true)) return;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(connections_mutex);
    open.assign(connections.begin(), connections.end());
  }
  // Idle connections are closed now; busy ones close after their response.
  for (auto& c : open) {
    net::post(c->executor, [c] {
      if (!c->closed && c->idle) c->stream->socket().cancel();
    });
  }
  drain_timer.expires_after(options.drain_timeout);
  drain_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    spdlog::warn("drain timeout: stopping with requests in flight");
    stop_contexts();
  });
  if (open.empty()) {
    drain_timer.cancel();
    keep_running.clear();
  }
}

void HttpServer::Impl::connection_done() {
  if (!draining.load()) return;
  std::lock_guard lock(connections_mutex);
  if (connections.empty()) {
    net::post(drain_strand, [this] {
      drain_timer.cancel();
      keep_running.clear();
    });
  }
}

net::awaitable<void> HttpServer::Impl::accept_loop() {
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(next_connection_executor(), use_tuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      // Out of file descriptors and similar: back off instead of spinning.
      net::steady_timer pause(drain_strand, std::chrono::milliseconds{50});
      co_await pause.async_wait(use_tuple);
      continue;
    }
    auto executor = socket.get_executor();
    net::co_spawn(executor, session(std::move(socket)), net::detached);
  }
}

net::awaitable<HttpResponse> HttpServer::Impl::answer(HttpRequest& request) {
  if (api.answers_async(request)) {
    // The handler's engine calls go out from here and its answer may come on an engine
    // client's thread: it is posted back to this connection's thread, which meanwhile serves
    // its other connections.
    auto answered = co_await net::async_initiate<decltype(net::use_awaitable),
                                                 void(std::optional<HttpResponse>)>(
        [this, &request](auto handler) {
          auto resume = std::make_shared<decltype(handler)>(std::move(handler));
          api.async_handle(request, [resume](std::optional<HttpResponse> response) {
            auto executor = net::get_associated_executor(*resume);
            net::post(executor, [resume, response = std::move(response)]() mutable {
              (*resume)(std::move(response));
            });
          });
        },
        net::use_awaitable);
    if (answered) co_return std::move(*answered);
    // Declined before doing anything: a worker answers with handle().
  } else if (!api.needs_worker(request)) {
    co_return api.handle(request);
  }
  if (worker_queue.fetch_add(1) >= options.worker_queue_max) {
    worker_queue.fetch_sub(1);
    co_return problem(make_error(Errc::overloaded, "too many requests are waiting; retry shortly"));
  }
  auto response = co_await net::co_spawn(
      workers.get_executor(),
      [this, &request]() -> net::awaitable<HttpResponse> { co_return api.handle(request); },
      net::use_awaitable);
  worker_queue.fetch_sub(1);
  co_return response;
}

// What the parser accepts but a public server should not: a head of very many fields, and a
// message framed twice (Transfer-Encoding and Content-Length together, the classic ground for
// request smuggling between a proxy and a backend that pick different framings). Both close the
// connection after the answer.
std::optional<HttpResponse> HttpServer::Impl::refuse_head(
    const bhttp::request<bhttp::string_body>& message) const {
  const auto fields = static_cast<size_t>(std::distance(message.begin(), message.end()));
  if (fields > options.header_fields_max) {
    return protocol_problem(431, "header_too_large", "Request header fields too large",
                            "the request has " + std::to_string(fields) +
                                " header fields; at most " +
                                std::to_string(options.header_fields_max) + " are accepted");
  }
  if (message.count(bhttp::field::transfer_encoding) > 0 &&
      message.count(bhttp::field::content_length) > 0) {
    return protocol_problem(400, "bad_request", "Bad request",
                            "Transfer-Encoding and Content-Length must not be sent together");
  }
  return std::nullopt;
}

net::awaitable<void> HttpServer::Impl::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  const auto remote = stream.socket().remote_endpoint(ignored).address().to_string();
  auto connection = std::make_shared<Connection>(Connection{&stream, stream.get_executor()});
  size_t open_connections = 0;
  {
    std::lock_guard lock(connections_mutex);
    connections.insert(connection);
    open_connections = connections.size();
  }
  api.connection_opened();

  auto write = [&](HttpResponse response, bool keep_alive,
                   const std::string& request_id) -> net::awaitable<bool> {
    // The head is put together in one string and written with the body in one gather write:
    // Beast's response and serializer cost ~8% of the server's time on a small cached read.
    keep_alive = keep_alive && !response.close && !draining.load();
    const std::string head = response_head(response, request_id, keep_alive);
    const std::array<net::const_buffer, 2> buffers{net::buffer(head), net::buffer(response.body)};
    stream.expires_after(options.write_timeout);
    auto [ec, n] = co_await net::async_write(stream, buffers, use_tuple);
    co_return !ec && keep_alive;
  };

  if (open_connections > options.connections_max || draining.load()) {
    co_await write(problem(make_error(Errc::overloaded, "too many open connections")), false,
                   new_id("req"));
  } else {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit_bytes));
      parser.body_limit(options.body_limit_bytes);
      connection->idle = true;
      if (draining.load()) break;
      stream.expires_after(options.request_timeout);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      connection->idle = false;
      if (ec) {
        std::optional<HttpResponse> refusal;
        if (ec == bhttp::error::header_limit) {
          refusal = protocol_problem(
              431, "header_too_large", "Request header fields too large",
              "the request head is over " + std::to_string(options.header_limit_bytes) + " bytes");
        } else if (ec == bhttp::error::body_limit) {
          refusal = protocol_problem(
              413, "body_too_large", "Content too large",
              "the body is over " + std::to_string(options.body_limit_bytes) + " bytes");
        } else if (ec.category() ==
                       bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
                   ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
          refusal = protocol_problem(400, "bad_request", "Bad request",
                                     "the request is not valid HTTP/1.1: " + ec.message());
        }
        if (refusal) co_await write(std::move(*refusal), false, new_id("req"));
        break;  // end of stream, timeout (a slow or idle client), reset: just close
      }
      auto& message = parser.get();
      if (auto refusal = refuse_head(message)) {
        co_await write(std::move(*refusal), false, new_id("req"));
        break;
      }
      HttpRequest request;
      request.method = std::string{message.method_string()};
      const std::string_view target = message.target();
      const auto question = target.find('?');
      request.path = std::string{target.substr(0, question)};
      if (question != std::string_view::npos)
        request.query = std::string{target.substr(question + 1)};
      for (const auto& field : message) {
        request.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
      }
      request.body = std::move(message.body());
      request.remote_address = remote;
      const auto incoming_id = request.header("X-Request-Id");
      const std::string request_id = incoming_id && is_valid_request_id(*incoming_id)
                                         ? std::string{*incoming_id}
                                         : new_id("req");
      const bool keep_alive = message.keep_alive();
      auto response = co_await answer(request);
      if (!co_await write(std::move(response), keep_alive, request_id)) break;
    }
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
  connection->closed = true;  // a drain's posted cancel must not touch the stream from now on
  api.connection_closed();
  {
    std::lock_guard lock(connections_mutex);
    connections.erase(connection);
  }
  connection_done();
}

}  // namespace boxoffice::http

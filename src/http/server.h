#pragma once
// The HTTP/1.1 server: one io_context run by one thread per core, one coroutine per connection,
// keep-alive and pipelining, explicit limits on everything, blocking work on a bounded pool.

#include <cstddef>
#include <memory>
#include <string>

#include "domain/time.h"

namespace boxoffice::http {

class RequestHandler;

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  size_t io_threads = 2;
  size_t worker_threads = 8;
  /// Requests waiting for a worker beyond this are refused with 503 overloaded.
  size_t worker_queue_max = 4096;
  size_t connections_max = 20'000;
  /// A whole request (head and body) must arrive within this; an idle keep-alive connection is
  /// closed after it. Cuts slow clients too.
  Millis request_timeout{std::chrono::seconds{30}};
  Millis write_timeout{std::chrono::seconds{30}};
  /// On SIGTERM: how long requests in flight may take before the process stops anyway.
  Millis drain_timeout{std::chrono::seconds{15}};
  size_t header_limit_bytes = 8 * 1024;  // beyond: 431
  size_t body_limit_bytes = 64 * 1024;   // beyond: 413
  size_t header_fields_max = 64;         // beyond: 431 (a head of many tiny fields)
  /// Drain on SIGTERM/SIGINT. Off for a server embedded in another (the in-process simulator).
  bool handle_signals = true;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, RequestHandler& handler);
  ~HttpServer();

  /// Binds and listens; throws std::runtime_error with a readable message if it cannot.
  void listen();
  uint16_t port() const;
  /// Serves until SIGTERM or SIGINT, then drains: stops accepting, answers the requests already
  /// read (with Connection: close), closes idle connections, and returns.
  void run();
  /// Starts the drain from any thread (what SIGTERM does); run() returns when it is done.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxoffice::http

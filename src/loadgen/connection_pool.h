#pragma once
// Keep-alive connections shared by many virtual users who each send a request now and then: a
// user borrows one per request, in turn, and the wait for one counts in the request's latency.
// Carries Asio's awaitable: include it only from .cpp files that run coroutines.

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "loadgen/http_client.h"

namespace boxoffice::loadgen {

namespace net = boost::asio;

/// A few keep-alive connections shared by many buyers who each send a request now and then (the
/// waiters polling their entries): a buyer borrows one per request, in turn. One thread only.
class ConnectionPool {
 public:
  ConnectionPool(const net::any_io_executor& executor, const Origin& origin, size_t size,
                 Recorder* recorder) {
    for (size_t i = 0; i < std::max<size_t>(1, size); ++i) {
      connections_.push_back(
          std::make_unique<Connection>(executor, origin, ConnectionOptions{}, recorder));
      idle_.push_back(connections_.back().get());
    }
  }

  net::awaitable<Response> send(Request request) {
    // Waiting for a connection is part of the request's latency: the buyer meant to send it now.
    if (!request.intended_at) request.intended_at = std::chrono::steady_clock::now();
    Connection* conn = nullptr;
    if (!idle_.empty() && queue_.empty()) {
      conn = idle_.back();
      idle_.pop_back();
    } else {
      // Wait in line: a finishing request hands its connection to the first waiting.
      Turn turn(*this, co_await net::this_coro::executor);
      boost::system::error_code ec;
      co_await turn.timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      conn = turn.conn;
    }
    struct GiveBack {
      ConnectionPool& pool;
      Connection* conn;
      ~GiveBack() { pool.give_back(conn); }
    } give_back{*this, conn};
    co_return co_await conn->send(std::move(request));
  }

 private:
  /// A place in the queue; leaves it if its coroutine is destroyed while waiting (shutdown).
  struct Turn {
    Turn(ConnectionPool& pool, const net::any_io_executor& executor)
        : pool(pool), timer(executor, std::chrono::steady_clock::time_point::max()) {
      pool.queue_.push_back(this);
    }
    ~Turn() {
      if (conn) return;
      auto& queue = pool.queue_;
      queue.erase(std::remove(queue.begin(), queue.end(), this), queue.end());
    }
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    ConnectionPool& pool;
    net::steady_timer timer;
    Connection* conn = nullptr;
  };
  void give_back(Connection* conn) {
    if (queue_.empty()) {
      idle_.push_back(conn);
      return;
    }
    auto* turn = queue_.front();
    queue_.pop_front();
    turn->conn = conn;
    turn->timer.cancel();
  }

  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;
  std::deque<Turn*> queue_;
};

}  // namespace boxoffice::loadgen

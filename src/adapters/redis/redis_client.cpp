#include "adapters/redis/redis_client.h"

// hiredis.h must come before read.h (read.h uses its types without including it).
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace boxoffice::redis {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

// Limits (TigerBeetle style: every queue and batch has a named bound).
constexpr size_t kWriteBatchCommandsMax = 1024;      // commands coalesced into one write
constexpr size_t kWriteBatchBytesMax = 1024 * 1024;  // bytes coalesced into one write
constexpr size_t kReadBufferBytes = 16 * 1024;       // one read_some
constexpr size_t kIoThreadsDefaultMax = 4;           // for io_threads = 0
constexpr size_t kSlotCount = 16384;                 // Redis Cluster hash slots
constexpr auto kSlotMapRefreshIntervalMin = std::chrono::milliseconds(100);
// The blocking calls wait this much longer than the client's own timeouts before giving up: the
// client's timers are what normally ends a command; this only guards against a lost handler.
constexpr auto kBlockingWaitSlack = std::chrono::seconds(5);

// The client whose I/O thread this is (nullptr elsewhere): a blocking call from one of its own
// handlers would wait for the thread it blocks.
thread_local const void* tls_current_client = nullptr;
// The lane whose I/O thread this is: commands issued from a reply handler go out on the same
// lane (no hand-over to another thread, and they stay in order with the handler's own).
thread_local void* tls_current_lane = nullptr;
// A small number per calling thread, so that each thread keeps to one I/O lane (its async
// commands stay in order) and threads spread over the lanes.
std::atomic<size_t> next_thread_number{0};
thread_local const size_t tls_thread_number = next_thread_number.fetch_add(1);

std::exception_ptr storage_error(std::string message) {
  return std::make_exception_ptr(StorageError(std::move(message)));
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(const std::string& text, std::string_view prefix) {
  return text.size() >= prefix.size() && std::string_view(text).substr(0, prefix.size()) == prefix;
}

// --- URL -------------------------------------------------------------------------------------

struct HostPort {
  std::string host;
  std::string port;
  std::string text() const {
    return host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port;
  }
};

struct ServerConfig {
  bool tls = false;
  bool cluster = false;
  bool tls_insecure = false;
  std::string tls_ca_file;
  bool auth = false;
  std::string user;  // empty: AUTH <password>
  std::string password;
  int db = 0;
  std::vector<HostPort> nodes;
};

[[noreturn]] void bad_url(const std::string& url, const std::string& why) {
  // The password is not repeated in the message.
  const auto at = url.rfind('@');
  const auto scheme_end = url.find("://");
  std::string shown = url;
  if (at != std::string::npos && scheme_end != std::string::npos && at > scheme_end) {
    shown = url.substr(0, scheme_end + 3) + "***" + url.substr(at);
  }
  throw StorageError("invalid redis URL \"" + shown + "\": " + why);
}

std::string percent_decode(const std::string& url, std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= text.size() ||
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ptr !=
            text.data() + i + 3) {
      bad_url(url, "bad percent-encoding");
    }
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

HostPort parse_host_port(const std::string& url, std::string_view text) {
  HostPort node;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) bad_url(url, "unterminated [IPv6 address]");
    node.host = std::string(text.substr(1, close - 1));
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') bad_url(url, "expected :port after ]");
      port = rest.substr(1);
    }
  } else {
    const auto colon = text.rfind(':');
    node.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) port = text.substr(colon + 1);
  }
  if (node.host.empty()) bad_url(url, "empty host");
  if (port.empty()) port = "6379";
  unsigned number = 0;
  if (std::from_chars(port.data(), port.data() + port.size(), number).ptr !=
          port.data() + port.size() ||
      number == 0 || number > 65535) {
    bad_url(url, "bad port \"" + std::string(port) + "\"");
  }
  node.port = std::string(port);
  return node;
}

ServerConfig parse_url(const std::string& url) {
  ServerConfig config;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) bad_url(url, "expected scheme://");
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme == "redis") {
  } else if (scheme == "rediss") {
    config.tls = true;
  } else if (scheme == "redis+cluster") {
    config.cluster = true;
  } else if (scheme == "rediss+cluster") {
    config.tls = config.cluster = true;
  } else {
    bad_url(url, "scheme must be redis, rediss, redis+cluster or rediss+cluster");
  }
  std::string_view rest = std::string_view(url).substr(scheme_end + 3);

  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos)
      bad_url(url, "a user name needs a password (user:password@)");
    config.auth = true;
    config.user = percent_decode(url, userinfo.substr(0, colon));
    config.password = percent_decode(url, userinfo.substr(colon + 1));
  }
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (!path.empty()) {
    if (std::from_chars(path.data(), path.data() + path.size(), config.db).ptr !=
            path.data() + path.size() ||
        config.db < 0) {
      bad_url(url, "the path must be a database number");
    }
    if (config.cluster && config.db != 0) bad_url(url, "Redis Cluster has database 0 only");
  }
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    config.nodes.push_back(parse_host_port(url, rest.substr(0, comma)));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  if (config.nodes.empty()) bad_url(url, "no host");
  if (!config.cluster && config.nodes.size() > 1) {
    bad_url(url, "several hosts need redis+cluster://");
  }
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string value =
        eq == std::string_view::npos ? std::string() : percent_decode(url, item.substr(eq + 1));
    if (key == "insecure") {
      config.tls_insecure = value == "1" || value == "true";
    } else if (key == "ca") {
      config.tls_ca_file = value;
    } else {
      bad_url(url, "unknown parameter \"" + std::string(key) + "\"");
    }
  }
  return config;
}

// --- RESP ------------------------------------------------------------------------------------

void append_command(std::string& out, const std::vector<std::string>& args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const auto& arg : args) {
    out += '$';
    out += std::to_string(arg.size());
    out += "\r\n";
    out += arg;
    out += "\r\n";
  }
}

Reply to_reply(const redisReply& raw) {
  Reply reply;
  switch (raw.type) {
    case REDIS_REPLY_STRING:
      reply.type = Reply::Type::string;
      reply.str.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = Reply::Type::status;
      reply.str.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = Reply::Type::error;
      reply.str.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = Reply::Type::integer;
      reply.integer = raw.integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = Reply::Type::array;
      reply.elements.reserve(raw.elements);
      for (size_t i = 0; i < raw.elements; ++i) reply.elements.push_back(to_reply(*raw.element[i]));
      break;
    default:
      reply.type = Reply::Type::nil;
  }
  return reply;
}

// The key a command is routed by in Cluster mode (see the header).
std::optional<std::string_view> routing_key(const std::vector<std::string>& args) {
  if (args.size() < 2) return std::nullopt;
  const std::string name = upper(args[0]);
  if (name == "EVAL" || name == "EVALSHA" || name == "EVAL_RO" || name == "EVALSHA_RO" ||
      name == "FCALL" || name == "FCALL_RO") {
    long numkeys = 0;
    if (args.size() < 4) return std::nullopt;
    const auto& text = args[2];
    if (std::from_chars(text.data(), text.data() + text.size(), numkeys).ptr !=
            text.data() + text.size() ||
        numkeys <= 0) {
      return std::nullopt;
    }
    return args[3];
  }
  return args[1];
}

// --- requests --------------------------------------------------------------------------------

struct Request {
  std::vector<std::string> args;
  Client::Handler handler;
  SteadyClock::time_point deadline;
  std::optional<uint16_t> slot;  // Cluster: where it goes
  std::string node;              // Cluster: sent to this node ("host:port") as is, no redirects
  std::string wire;              // RESP, formatted once
  int redirects = 0;
  bool internal = false;   // ours (ASKING, CLUSTER SLOTS, per-node commands): no redirect handling
  bool handshake = false;  // AUTH/SELECT of a new connection
};

struct Settings {
  ServerConfig server;
  ClientOptions options;
  std::unique_ptr<ssl::context> tls;
  const void* client = nullptr;
};

class Lane;

// One connection to one node, owned by one lane and used only on its thread.
//
// States: idle (never used) → connecting (resolve, TCP, TLS handshake) → handshaking (AUTH,
// SELECT) → ready. A failure in any state goes to backoff, which reconnects after a delay that
// doubles per failed attempt. While the server cannot be reached (a connection attempt failed),
// commands fail at once instead of waiting for their timeout; after a connection that worked
// breaks, commands not yet written wait for the next attempt.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Lane& lane, asio::io_context& io, const Settings& settings, HostPort endpoint);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void submit(Request request);
  void stop(const std::string& reason);

 private:
  enum class State { idle, connecting, handshaking, ready, backoff, stopped };

  // The socket of one connection attempt, shared with the handlers of its operations: an
  // ssl::stream must outlive its pending operations, so it is closed, not destroyed, on failure.
  struct Stream {
    Stream(asio::io_context& io, ssl::context* tls_context) {
      if (tls_context != nullptr) {
        tls = std::make_unique<ssl::stream<tcp::socket>>(io, *tls_context);
      } else {
        plain = std::make_unique<tcp::socket>(io);
      }
    }
    tcp::socket& lowest() { return tls ? tls->next_layer() : *plain; }
    template <class Handler>
    void async_read_some(Handler&& handler) {
      if (tls) {
        tls->async_read_some(asio::buffer(read_buffer), std::forward<Handler>(handler));
      } else {
        plain->async_read_some(asio::buffer(read_buffer), std::forward<Handler>(handler));
      }
    }
    template <class Handler>
    void async_write(const std::string& data, Handler&& handler) {
      if (tls) {
        asio::async_write(*tls, asio::buffer(data), std::forward<Handler>(handler));
      } else {
        asio::async_write(*plain, asio::buffer(data), std::forward<Handler>(handler));
      }
    }

    std::unique_ptr<ssl::stream<tcp::socket>> tls;
    std::unique_ptr<tcp::socket> plain;
    std::array<char, kReadBufferBytes> read_buffer{};
  };

  void start_connect();
  void on_connected(uint64_t generation);
  void start_session(uint64_t generation);
  void on_ready();
  void flush();
  void write(uint64_t generation);
  void read(uint64_t generation);
  void on_data(uint64_t generation, size_t size);
  void complete(Request request, std::exception_ptr error, Reply reply);
  void fail_connection(const std::string& reason);
  void close_stream();
  void schedule_reconnect();
  void arm_deadline(SteadyClock::time_point deadline);
  void on_deadline();
  void reset_reader();
  std::string describe(const std::string& what) const {
    return "redis " + endpoint_.text() + ": " + what;
  }

  Lane& lane_;
  asio::io_context& io_;
  const Settings& settings_;
  const HostPort endpoint_;

  State state_ = State::idle;
  uint64_t generation_ = 0;  // one per connection attempt; stale handlers compare and return
  std::shared_ptr<Stream> stream_;
  tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer deadline_timer_;
  bool deadline_armed_ = false;
  uint64_t deadline_token_ = 0;
  SteadyClock::time_point deadline_at_{};

  std::deque<Request> queued_;     // not written yet
  std::deque<Request> in_flight_;  // written, waiting for their replies, in order
  std::string write_buffer_;
  bool writing_ = false;
  size_t handshake_pending_ = 0;
  redisReader* reader_ = nullptr;

  std::chrono::milliseconds backoff_;
  bool fail_fast_ = false;  // the last connection attempt failed: the server is unreachable
  std::string last_error_;
};

// The slot map of a Cluster: which master serves each slot.
struct SlotMap {
  bool loaded = false;
  std::vector<std::string> masters;  // "host:port"
  std::vector<int16_t> owner;        // per slot: index into masters, -1 when unserved
  int master_index(const std::string& node) {
    const auto it = std::find(masters.begin(), masters.end(), node);
    if (it != masters.end()) return static_cast<int>(it - masters.begin());
    masters.push_back(node);
    return static_cast<int>(masters.size()) - 1;
  }
};

// One I/O thread with its own io_context and its own connection to each node. Everything a
// lane owns is touched only on its thread.
class Lane {
 public:
  explicit Lane(const Settings& settings)
      : settings_(settings), work_(asio::make_work_guard(io_)) {}
  ~Lane() { shutdown(); }
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  void start() {
    thread_ = std::thread([this] {
      tls_current_client = settings_.client;
      tls_current_lane = this;
      io_.run();
    });
  }

  void shutdown() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      stopping_ = true;
      const auto connections = connections_;
      for (const auto& [name, connection] : connections) connection->stop("client shut down");
      fail_map_waiters(storage_error("redis: client shut down"));
    });
    work_.reset();
    thread_.join();
    single_.reset();
    connections_.clear();
  }

  template <class Task>
  void post(Task&& task) {
    asio::post(io_, std::forward<Task>(task));
  }

  // Sends a request: to the one server, or to the node of its slot.
  void route(Request request);
  // Called by connections with each request's outcome; follows Cluster redirects.
  void finish(Request request, std::exception_ptr error, Reply reply);
  // Runs `then` once the slot map is loaded (at once if it is), or with the error loading it.
  void with_slot_map(std::function<void(std::exception_ptr)> then);
  const SlotMap& slot_map() const { return slot_map_; }
  std::shared_ptr<Connection> connection(const std::string& node);

 private:
  void refresh_slot_map();
  void try_slot_source(std::shared_ptr<std::vector<std::string>> sources, size_t index,
                       std::string last_error);
  bool install_slot_map(const Reply& reply, const std::string& source);
  void fail_map_waiters(std::exception_ptr error);
  void deliver(Request& request, std::exception_ptr error, Reply reply);

  const Settings& settings_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Connection>> connections_;  // by "host:port"
  std::shared_ptr<Connection> single_;  // the one server's, when not a Cluster

  SlotMap slot_map_;
  bool refreshing_ = false;
  SteadyClock::time_point last_refresh_{};
  std::deque<std::function<void(std::exception_ptr)>> map_waiters_;
};

// --- Connection ------------------------------------------------------------------------------

Connection::Connection(Lane& lane, asio::io_context& io, const Settings& settings,
                       HostPort endpoint)
    : lane_(lane),
      io_(io),
      settings_(settings),
      endpoint_(std::move(endpoint)),
      resolver_(io),
      connect_timer_(io),
      backoff_timer_(io),
      deadline_timer_(io),
      backoff_(settings.options.backoff_initial) {}

Connection::~Connection() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void Connection::submit(Request request) {
  if (state_ == State::stopped) {
    complete(std::move(request), storage_error(describe("client shut down")), {});
    return;
  }
  if (state_ == State::backoff && fail_fast_) {
    complete(std::move(request), storage_error(last_error_ + " (reconnecting)"), {});
    return;
  }
  if (queued_.size() + in_flight_.size() >= settings_.options.queued_commands_max) {
    complete(std::move(request),
             storage_error(
                 describe("overloaded: " + std::to_string(settings_.options.queued_commands_max) +
                          " commands queued")),
             {});
    return;
  }
  if (request.wire.empty()) append_command(request.wire, request.args);
  arm_deadline(request.deadline);
  queued_.push_back(std::move(request));
  if (state_ == State::idle) {
    start_connect();
  } else {
    flush();
  }
}

void Connection::stop(const std::string& reason) {
  if (state_ == State::stopped) return;
  state_ = State::stopped;
  ++generation_;
  close_stream();
  resolver_.cancel();
  connect_timer_.cancel();
  backoff_timer_.cancel();
  ++deadline_token_;
  deadline_timer_.cancel();
  auto in_flight = std::move(in_flight_);
  auto queued = std::move(queued_);
  in_flight_.clear();
  queued_.clear();
  for (auto& request : in_flight) complete(std::move(request), storage_error(describe(reason)), {});
  for (auto& request : queued) complete(std::move(request), storage_error(describe(reason)), {});
}

void Connection::start_connect() {
  state_ = State::connecting;
  const uint64_t generation = ++generation_;
  stream_ = std::make_shared<Stream>(io_, settings_.tls.get());
  connect_timer_.expires_after(settings_.options.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this(), generation](error_code error) {
    if (error || generation != self->generation_) return;
    if (self->state_ != State::connecting && self->state_ != State::handshaking) return;
    self->fail_connection("connect timed out after " +
                          std::to_string(self->settings_.options.connect_timeout.count()) + " ms");
  });
  resolver_.async_resolve(endpoint_.host, endpoint_.port,
                          [self = shared_from_this(), generation, stream = stream_](
                              error_code error, const tcp::resolver::results_type& results) {
                            if (generation != self->generation_) return;
                            if (error) {
                              self->fail_connection("resolve: " + error.message());
                              return;
                            }
                            asio::async_connect(
                                stream->lowest(), results,
                                [self, generation](error_code error, const tcp::endpoint&) {
                                  if (generation != self->generation_) return;
                                  if (error) {
                                    self->fail_connection("connect: " + error.message());
                                    return;
                                  }
                                  self->on_connected(generation);
                                });
                          });
}

void Connection::on_connected(uint64_t generation) {
  error_code ignored;
  stream_->lowest().set_option(tcp::no_delay(true), ignored);
  if (!stream_->tls) {
    start_session(generation);
    return;
  }
  auto& tls = *stream_->tls;
  if (!settings_.server.tls_insecure) {
    error_code not_an_address;
    asio::ip::make_address(endpoint_.host, not_an_address);
    // SNI is for names only (RFC 6066); the certificate is checked against either.
    if (not_an_address) SSL_set_tlsext_host_name(tls.native_handle(), endpoint_.host.c_str());
    tls.set_verify_callback(ssl::host_name_verification(endpoint_.host));
  }
  tls.async_handshake(ssl::stream_base::client,
                      [self = shared_from_this(), generation, stream = stream_](error_code error) {
                        if (generation != self->generation_) return;
                        if (error) {
                          self->fail_connection("TLS handshake: " + error.message());
                          return;
                        }
                        self->start_session(generation);
                      });
}

void Connection::start_session(uint64_t generation) {
  state_ = State::handshaking;
  reset_reader();
  read(generation);
  std::vector<std::vector<std::string>> commands;
  const auto& server = settings_.server;
  if (server.auth) {
    if (server.user.empty()) {
      commands.push_back({"AUTH", server.password});
    } else {
      commands.push_back({"AUTH", server.user, server.password});
    }
  }
  if (server.db != 0) commands.push_back({"SELECT", std::to_string(server.db)});
  if (commands.empty()) {
    on_ready();
    return;
  }
  handshake_pending_ = commands.size();
  for (auto& args : commands) {
    Request request;
    request.handshake = true;
    request.internal = true;
    append_command(write_buffer_, args);
    request.args = {args.front()};  // the password is not kept
    in_flight_.push_back(std::move(request));
  }
  writing_ = true;
  write(generation);
}

void Connection::on_ready() {
  state_ = State::ready;
  connect_timer_.cancel();
  backoff_ = settings_.options.backoff_initial;
  fail_fast_ = false;
  flush();
}

void Connection::flush() {
  if (writing_ || state_ != State::ready || queued_.empty()) return;
  size_t count = 0;
  while (!queued_.empty() && count < kWriteBatchCommandsMax &&
         write_buffer_.size() < kWriteBatchBytesMax) {
    write_buffer_ += queued_.front().wire;
    in_flight_.push_back(std::move(queued_.front()));
    queued_.pop_front();
    ++count;
  }
  writing_ = true;
  write(generation_);
}

void Connection::write(uint64_t generation) {
  stream_->async_write(write_buffer_, [self = shared_from_this(), generation, stream = stream_](
                                          error_code error, size_t) {
    if (generation != self->generation_) return;
    self->writing_ = false;
    self->write_buffer_.clear();
    if (error) {
      self->fail_connection("write: " + error.message());
      return;
    }
    self->flush();
  });
}

void Connection::read(uint64_t generation) {
  stream_->async_read_some(
      [self = shared_from_this(), generation, stream = stream_](error_code error, size_t size) {
        if (generation != self->generation_) return;
        if (error) {
          self->fail_connection(error == asio::error::eof ? "connection closed by the server"
                                                          : "read: " + error.message());
          return;
        }
        self->on_data(generation, size);
      });
}

void Connection::on_data(uint64_t generation, size_t size) {
  if (redisReaderFeed(reader_, stream_->read_buffer.data(), size) != REDIS_OK) {
    fail_connection(std::string("protocol error: ") + reader_->errstr);
    return;
  }
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
      fail_connection(std::string("protocol error: ") + reader_->errstr);
      return;
    }
    if (raw == nullptr) break;
    Reply reply = to_reply(*static_cast<redisReply*>(raw));
    freeReplyObject(raw);
    if (in_flight_.empty()) {
      fail_connection("a reply to no command");
      return;
    }
    Request request = std::move(in_flight_.front());
    in_flight_.pop_front();
    complete(std::move(request), nullptr, std::move(reply));
    // A handshake error, or what a handler started, may have closed this connection.
    if (generation != generation_) return;
  }
  read(generation);
}

void Connection::complete(Request request, std::exception_ptr error, Reply reply) {
  if (!request.handshake) {
    lane_.finish(std::move(request), std::move(error), std::move(reply));
    return;
  }
  if (error) return;  // the connection is failing already
  if (reply.is_error()) {
    fail_connection(request.args.front() + " failed: " + reply.str);
    return;
  }
  if (--handshake_pending_ == 0) on_ready();
}

void Connection::fail_connection(const std::string& reason) {
  if (state_ == State::stopped || state_ == State::backoff) return;
  const bool was_ready = state_ == State::ready;
  ++generation_;
  close_stream();
  resolver_.cancel();
  connect_timer_.cancel();
  writing_ = false;
  write_buffer_.clear();
  handshake_pending_ = 0;
  last_error_ = describe(reason);
  auto in_flight = std::move(in_flight_);
  in_flight_.clear();
  std::deque<Request> queued;
  if (!was_ready) {
    // The server cannot be reached: fail what waits, and what comes, until it can.
    fail_fast_ = true;
    queued = std::move(queued_);
    queued_.clear();
  }
  state_ = State::backoff;
  schedule_reconnect();
  for (auto& request : in_flight) complete(std::move(request), storage_error(last_error_), {});
  for (auto& request : queued) complete(std::move(request), storage_error(last_error_), {});
}

void Connection::close_stream() {
  if (stream_ == nullptr) return;
  error_code ignored;
  stream_->lowest().shutdown(tcp::socket::shutdown_both, ignored);
  stream_->lowest().close(ignored);
  stream_.reset();
}

void Connection::schedule_reconnect() {
  const auto delay = backoff_;
  backoff_ = std::min(backoff_ * 2, settings_.options.backoff_max);
  backoff_timer_.expires_after(delay);
  backoff_timer_.async_wait(
      [self = shared_from_this(), generation = generation_](error_code error) {
        if (error || generation != self->generation_ || self->state_ != State::backoff) return;
        self->start_connect();
      });
}

void Connection::arm_deadline(SteadyClock::time_point deadline) {
  if (deadline_armed_ && deadline >= deadline_at_) return;
  deadline_armed_ = true;
  deadline_at_ = deadline;
  deadline_timer_.expires_at(deadline);
  deadline_timer_.async_wait([self = shared_from_this(), token = ++deadline_token_](error_code) {
    if (token != self->deadline_token_) return;
    self->deadline_armed_ = false;
    self->on_deadline();
  });
}

void Connection::on_deadline() {
  if (state_ == State::stopped) return;
  const auto now = SteadyClock::now();
  // Commands not written yet can simply be dropped.
  std::vector<Request> expired;
  for (auto it = queued_.begin(); it != queued_.end();) {
    if (it->deadline <= now) {
      expired.push_back(std::move(*it));
      it = queued_.erase(it);
    } else {
      ++it;
    }
  }
  // A command written but not answered in time: the replies of this connection can no longer be
  // trusted to come (a server that hangs, a network that drops): it is closed and re-made.
  const bool written_expired =
      std::any_of(in_flight_.begin(), in_flight_.end(),
                  [now](const Request& r) { return !r.handshake && r.deadline <= now; });
  const std::string timeout_message = describe(
      "no reply within " + std::to_string(settings_.options.command_timeout.count()) + " ms");
  if (written_expired)
    fail_connection("no reply within " + std::to_string(settings_.options.command_timeout.count()) +
                    " ms");
  for (auto& request : expired) complete(std::move(request), storage_error(timeout_message), {});
  if (state_ == State::stopped) return;
  std::optional<SteadyClock::time_point> next;
  for (const auto* queue : {&queued_, &in_flight_}) {
    for (const auto& request : *queue) {
      if (request.handshake) continue;
      if (!next || request.deadline < *next) next = request.deadline;
    }
  }
  if (next) arm_deadline(*next);
}

void Connection::reset_reader() {
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  if (reader_ == nullptr) throw std::bad_alloc();
}

// --- Lane ------------------------------------------------------------------------------------

std::shared_ptr<Connection> Lane::connection(const std::string& node) {
  auto& slot = connections_[node];
  if (slot == nullptr) {
    const std::string url = "redis://" + node;
    slot = std::make_shared<Connection>(*this, io_, settings_, parse_host_port(url, node));
  }
  return slot;
}

void Lane::route(Request request) {
  if (stopping_) {
    deliver(request, storage_error("redis: client shut down"), {});
    return;
  }
  if (!settings_.server.cluster) {
    if (single_ == nullptr) single_ = connection(settings_.server.nodes.front().text());
    single_->submit(std::move(request));
    return;
  }
  if (!request.node.empty()) {
    connection(request.node)->submit(std::move(request));
    return;
  }
  if (!slot_map_.loaded) {
    if (map_waiters_.size() >= settings_.options.queued_commands_max) {
      deliver(request, storage_error("redis cluster: overloaded while loading the slot map"), {});
      return;
    }
    auto shared = std::make_shared<Request>(std::move(request));
    with_slot_map([this, shared](std::exception_ptr error) {
      if (error) {
        deliver(*shared, error, {});
      } else {
        route(std::move(*shared));
      }
    });
    return;
  }
  std::string node;
  if (request.slot) {
    const int owner = slot_map_.owner[*request.slot];
    if (owner < 0) {
      refresh_slot_map();
      deliver(request,
              storage_error("redis cluster: no node serves slot " + std::to_string(*request.slot)),
              {});
      return;
    }
    node = slot_map_.masters[static_cast<size_t>(owner)];
  } else {
    node = slot_map_.masters.front();
  }
  connection(node)->submit(std::move(request));
}

void Lane::finish(Request request, std::exception_ptr error, Reply reply) {
  if (!settings_.server.cluster || request.internal || stopping_) {
    deliver(request, std::move(error), std::move(reply));
    return;
  }
  if (error) {
    // The node may be gone for good (a failover): look again where the slots are.
    refresh_slot_map();
    deliver(request, std::move(error), std::move(reply));
    return;
  }
  const bool moved = reply.is_error() && starts_with(reply.str, "MOVED ");
  const bool ask = reply.is_error() && starts_with(reply.str, "ASK ");
  if (!moved && !ask) {
    deliver(request, nullptr, std::move(reply));
    return;
  }
  // "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>"
  const auto first_space = reply.str.find(' ');
  const auto second_space = reply.str.find(' ', first_space + 1);
  unsigned slot = 0;
  const char* slot_begin = reply.str.data() + first_space + 1;
  const char* slot_end = reply.str.data() + std::min(second_space, reply.str.size());
  if (second_space == std::string::npos ||
      std::from_chars(slot_begin, slot_end, slot).ptr != slot_end || slot >= kSlotCount) {
    deliver(request, storage_error("redis cluster: unreadable redirection: " + reply.str), {});
    return;
  }
  const std::string node = reply.str.substr(second_space + 1);
  if (moved) {
    // The one slot at once (the commands right behind go to the right node), the rest of the
    // map in the background: a MOVED usually means more slots moved.
    if (slot_map_.loaded) {
      slot_map_.owner[slot] = static_cast<int16_t>(slot_map_.master_index(node));
    }
    refresh_slot_map();
  }
  if (++request.redirects > settings_.options.redirects_max) {
    deliver(request,
            storage_error("redis cluster: more than " +
                          std::to_string(settings_.options.redirects_max) +
                          " redirections, the last: " + reply.str),
            {});
    return;
  }
  try {
    if (moved) {
      connection(node)->submit(std::move(request));
    } else {
      // ASKING holds for the next command on this connection only, so both go out together.
      auto target = connection(node);
      Request asking;
      asking.args = {"ASKING"};
      asking.internal = true;
      asking.deadline = request.deadline;
      asking.handler = [](std::exception_ptr, Reply) {};
      target->submit(std::move(asking));
      target->submit(std::move(request));
    }
  } catch (const StorageError&) {
    deliver(request, std::current_exception(), {});
  }
}

void Lane::deliver(Request& request, std::exception_ptr error, Reply reply) {
  if (!request.handler) return;
  auto handler = std::move(request.handler);
  request.handler = nullptr;
  try {
    handler(std::move(error), std::move(reply));
  } catch (...) {
    // A handler must not throw (the header's contract); the I/O thread carries on regardless.
  }
}

void Lane::with_slot_map(std::function<void(std::exception_ptr)> then) {
  if (slot_map_.loaded) {
    then(nullptr);
    return;
  }
  if (stopping_) {
    then(storage_error("redis: client shut down"));
    return;
  }
  map_waiters_.push_back(std::move(then));
  refresh_slot_map();
}

void Lane::fail_map_waiters(std::exception_ptr error) {
  auto waiters = std::move(map_waiters_);
  map_waiters_.clear();
  for (auto& waiter : waiters) waiter(error);
}

void Lane::refresh_slot_map() {
  if (refreshing_ || stopping_) return;
  const auto now = SteadyClock::now();
  if (slot_map_.loaded && now - last_refresh_ < kSlotMapRefreshIntervalMin) return;
  refreshing_ = true;
  last_refresh_ = now;
  auto sources = std::make_shared<std::vector<std::string>>(slot_map_.masters);
  for (const auto& seed : settings_.server.nodes) {
    if (std::find(sources->begin(), sources->end(), seed.text()) == sources->end()) {
      sources->push_back(seed.text());
    }
  }
  try_slot_source(std::move(sources), 0, "no node to ask");
}

void Lane::try_slot_source(std::shared_ptr<std::vector<std::string>> sources, size_t index,
                           std::string last_error) {
  if (index == sources->size() || stopping_) {
    refreshing_ = false;
    fail_map_waiters(storage_error("redis cluster: no node gave its slot map: " + last_error));
    return;
  }
  Request request;
  request.args = {"CLUSTER", "SLOTS"};
  request.internal = true;
  request.node = (*sources)[index];
  request.deadline = SteadyClock::now() + settings_.options.command_timeout;
  request.handler = [this, sources, index](std::exception_ptr error, Reply reply) {
    std::string why;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        why = e.what();
      }
    } else if (!install_slot_map(reply, (*sources)[index])) {
      why = (*sources)[index] + ": unusable CLUSTER SLOTS reply" +
            (reply.is_error() ? ": " + reply.str : std::string());
    } else {
      refreshing_ = false;
      fail_map_waiters(nullptr);
      return;
    }
    try_slot_source(sources, index + 1, why);
  };
  connection(request.node)->submit(std::move(request));
}

bool Lane::install_slot_map(const Reply& reply, const std::string& source) {
  if (reply.type != Reply::Type::array || reply.elements.empty()) return false;
  const std::string source_host = source.substr(0, source.rfind(':'));
  SlotMap map;
  map.owner.assign(kSlotCount, -1);
  for (const auto& range : reply.elements) {
    if (range.type != Reply::Type::array || range.elements.size() < 3) return false;
    const auto& first = range.elements[0];
    const auto& last = range.elements[1];
    const auto& master = range.elements[2];
    if (first.type != Reply::Type::integer || last.type != Reply::Type::integer ||
        master.type != Reply::Type::array || master.elements.size() < 2 ||
        master.elements[0].type != Reply::Type::string ||
        master.elements[1].type != Reply::Type::integer || first.integer < 0 ||
        last.integer >= static_cast<int64_t>(kSlotCount) || first.integer > last.integer) {
      return false;
    }
    std::string host = master.elements[0].str;
    if (host == "?") continue;             // a node whose address is unknown yet
    if (host.empty()) host = source_host;  // "the node you asked"
    HostPort node{host, std::to_string(master.elements[1].integer)};
    const int index = map.master_index(node.text());
    for (int64_t slot = first.integer; slot <= last.integer; ++slot) {
      map.owner[static_cast<size_t>(slot)] = static_cast<int16_t>(index);
    }
  }
  if (map.masters.empty()) return false;
  map.loaded = true;
  slot_map_ = std::move(map);
  return true;
}

}  // namespace

// --- Reply, Script, key_slot -------------------------------------------------------------------

int64_t Reply::as_integer() const {
  if (type != Type::integer) {
    throw StorageError("redis: expected an integer reply" +
                       (type == Type::error ? ", got error " + str : std::string()));
  }
  return integer;
}

const std::string& Reply::as_string() const {
  if (type != Type::string && type != Type::status) {
    throw StorageError("redis: expected a string reply" +
                       (type == Type::error ? ", got error " + str : std::string()));
  }
  return str;
}

Script::Script(std::string body) : body_(std::move(body)) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned size = 0;
  if (EVP_Digest(body_.data(), body_.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1) {
    throw StorageError("redis: SHA1 of a script failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  sha1_.reserve(size * 2);
  for (unsigned i = 0; i < size; ++i) {
    sha1_ += kHex[digest[i] >> 4];
    sha1_ += kHex[digest[i] & 0xf];
  }
}

uint16_t key_slot(std::string_view key) {
  // CRC16-CCITT (XMODEM), as in the Redis Cluster specification.
  static constexpr auto kTable = [] {
    std::array<uint16_t, 256> table{};
    for (unsigned i = 0; i < 256; ++i) {
      uint16_t crc = static_cast<uint16_t>(i << 8);
      for (int bit = 0; bit < 8; ++bit) {
        crc = static_cast<uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
      }
      table[i] = crc;
    }
    return table;
  }();
  // Only the part between the first '{' and the next '}' counts, if it is not empty.
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  uint16_t crc = 0;
  for (const char c : key) {
    crc = static_cast<uint16_t>((crc << 8) ^
                                kTable[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
  }
  return static_cast<uint16_t>(crc % kSlotCount);
}

// --- Client ----------------------------------------------------------------------------------

struct Client::Impl {
  Settings settings;
  std::vector<std::unique_ptr<Lane>> lanes;

  Lane& lane_for_caller() {
    if (tls_current_client == settings.client && tls_current_lane != nullptr) {
      return *static_cast<Lane*>(tls_current_lane);
    }
    return *lanes[tls_thread_number % lanes.size()];
  }

  Request make_request(std::vector<std::string> args, Handler handler) const {
    Request request;
    if (settings.server.cluster) {
      if (const auto key = routing_key(args)) request.slot = key_slot(*key);
    }
    request.args = std::move(args);
    request.handler = std::move(handler);
    request.deadline = SteadyClock::now() + settings.options.command_timeout;
    return request;
  }

  void check_not_on_io_thread() const {
    if (tls_current_client == this) {
      throw StorageError("redis: a blocking call from the client's own I/O thread");
    }
  }

  std::chrono::milliseconds blocking_wait() const {
    return settings.options.connect_timeout + 2 * settings.options.command_timeout +
           std::chrono::duration_cast<std::chrono::milliseconds>(kBlockingWaitSlack);
  }

  // Waits for every future; throws the first failure once all have finished.
  std::vector<Reply> wait_all(std::vector<std::future<Reply>>& futures) const {
    const auto deadline = SteadyClock::now() + blocking_wait();
    std::vector<Reply> replies;
    replies.reserve(futures.size());
    std::exception_ptr first_error;
    for (auto& future : futures) {
      if (future.wait_until(deadline) != std::future_status::ready) {
        throw StorageError("redis: no outcome within " + std::to_string(blocking_wait().count()) +
                           " ms");
      }
      try {
        replies.push_back(future.get());
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
        replies.emplace_back();
      }
    }
    if (first_error) std::rethrow_exception(first_error);
    return replies;
  }
};

namespace {
Client::Handler fulfil(std::shared_ptr<std::promise<Reply>> promise) {
  return [promise = std::move(promise)](std::exception_ptr error, Reply reply) {
    if (error) {
      promise->set_exception(error);
    } else {
      promise->set_value(std::move(reply));
    }
  };
}
}  // namespace

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  auto& settings = impl_->settings;
  settings.server = parse_url(options.url);
  settings.options = std::move(options);
  settings.client = impl_.get();
  if (settings.options.queued_commands_max == 0) settings.options.queued_commands_max = 1;
  if (settings.options.backoff_initial.count() <= 0) {
    settings.options.backoff_initial = std::chrono::milliseconds(1);
  }
  settings.options.backoff_max =
      std::max(settings.options.backoff_max, settings.options.backoff_initial);
  if (settings.server.tls) {
    try {
      settings.tls = std::make_unique<ssl::context>(ssl::context::tls_client);
      if (settings.server.tls_insecure) {
        settings.tls->set_verify_mode(ssl::verify_none);
      } else {
        settings.tls->set_verify_mode(ssl::verify_peer);
        if (settings.server.tls_ca_file.empty()) {
          settings.tls->set_default_verify_paths();
        } else {
          settings.tls->load_verify_file(settings.server.tls_ca_file);
        }
      }
    } catch (const boost::system::system_error& e) {
      throw StorageError(std::string("redis: TLS setup: ") + e.what());
    }
  }
  size_t threads = settings.options.io_threads;
  if (threads == 0) {
    threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kIoThreadsDefaultMax);
  }
  for (size_t i = 0; i < threads; ++i) impl_->lanes.push_back(std::make_unique<Lane>(settings));
  for (auto& lane : impl_->lanes) lane->start();
}

Client::~Client() {
  for (auto& lane : impl_->lanes) lane->shutdown();
}

void Client::async_command(std::vector<std::string> args, Handler handler) {
  if (args.empty()) {
    handler(storage_error("redis: empty command"), {});
    return;
  }
  Lane& lane = impl_->lane_for_caller();
  lane.post([&lane, request = impl_->make_request(std::move(args), std::move(handler))]() mutable {
    lane.route(std::move(request));
  });
}

void Client::async_pipeline(std::vector<std::vector<std::string>> commands,
                            PipelineHandler handler) {
  if (commands.empty()) {
    handler(nullptr, {});
    return;
  }
  if (std::any_of(commands.begin(), commands.end(), [](const auto& c) { return c.empty(); })) {
    handler(storage_error("redis: empty command"), {});
    return;
  }
  // Every reply of one lane's requests arrives on that lane's thread, but a failed connection
  // and a timeout may finish them in any order: count down, keep the first failure.
  struct Joined {
    PipelineHandler handler;
    std::vector<Reply> replies;
    std::atomic<size_t> left;
    std::mutex mutex;
    std::exception_ptr first_error;
  };
  auto joined = std::make_shared<Joined>();
  joined->handler = std::move(handler);
  joined->replies.resize(commands.size());
  joined->left = commands.size();
  std::vector<Request> requests;
  requests.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    requests.push_back(impl_->make_request(
        std::move(commands[i]), [joined, i](std::exception_ptr error, Reply reply) {
          if (error) {
            std::lock_guard lock(joined->mutex);
            if (!joined->first_error) joined->first_error = error;
          } else {
            joined->replies[i] = std::move(reply);
          }
          if (joined->left.fetch_sub(1) != 1) return;
          joined->handler(joined->first_error,
                          joined->first_error ? std::vector<Reply>{} : std::move(joined->replies));
        }));
  }
  Lane& lane = impl_->lane_for_caller();
  lane.post([&lane, requests = std::move(requests)]() mutable {
    for (auto& request : requests) lane.route(std::move(request));
  });
}

Reply Client::command(std::vector<std::string> args) {
  auto results = pipeline({std::move(args)});
  return std::move(results.front());
}

std::vector<Reply> Client::pipeline(std::vector<std::vector<std::string>> commands) {
  impl_->check_not_on_io_thread();
  std::vector<std::future<Reply>> futures;
  std::vector<Request> requests;
  futures.reserve(commands.size());
  requests.reserve(commands.size());
  for (auto& args : commands) {
    if (args.empty()) throw StorageError("redis: empty command");
    auto promise = std::make_shared<std::promise<Reply>>();
    futures.push_back(promise->get_future());
    requests.push_back(impl_->make_request(std::move(args), fulfil(std::move(promise))));
  }
  if (requests.empty()) return {};
  // One task for all: they are queued together and go out in one write (per node).
  Lane& lane = impl_->lane_for_caller();
  lane.post([&lane, requests = std::move(requests)]() mutable {
    for (auto& request : requests) lane.route(std::move(request));
  });
  return impl_->wait_all(futures);
}

namespace {
std::vector<std::string> evalsha_command(const Script& script, const std::vector<std::string>& keys,
                                         const std::vector<std::string>& args) {
  std::vector<std::string> command_args;
  command_args.reserve(3 + keys.size() + args.size());
  command_args.push_back("EVALSHA");
  command_args.push_back(script.sha1());
  command_args.push_back(std::to_string(keys.size()));
  command_args.insert(command_args.end(), keys.begin(), keys.end());
  command_args.insert(command_args.end(), args.begin(), args.end());
  return command_args;
}
}  // namespace

void Client::async_eval(const Script& script, const std::vector<std::string>& keys,
                        const std::vector<std::string>& args, Handler handler) {
  auto command_args = evalsha_command(script, keys, args);
  auto again = command_args;
  async_command(std::move(command_args),
                [this, &script, again = std::move(again), handler = std::move(handler)](
                    std::exception_ptr error, Reply reply) mutable {
                  if (error || !reply.is_error() || !starts_with(reply.str, "NOSCRIPT")) {
                    return handler(error, std::move(reply));
                  }
                  again[0] = "EVAL";
                  again[1] = script.body();
                  async_command(std::move(again), std::move(handler));
                });
}

Reply Client::eval(const Script& script, const std::vector<std::string>& keys,
                   const std::vector<std::string>& args) {
  auto command_args = evalsha_command(script, keys, args);
  Reply reply = command(command_args);
  if (reply.is_error() && starts_with(reply.str, "NOSCRIPT")) {
    command_args[0] = "EVAL";
    command_args[1] = script.body();
    reply = command(std::move(command_args));
  }
  return reply;
}

bool Client::ping() {
  try {
    const auto replies = on_every_master({"PING"});
    return !replies.empty() && std::all_of(replies.begin(), replies.end(), [](const Reply& r) {
      return r.type == Reply::Type::status && r.str == "PONG";
    });
  } catch (const StorageError&) {
    return false;
  }
}

bool Client::cluster() const { return impl_->settings.server.cluster; }

std::vector<Reply> Client::on_every_master(std::vector<std::string> args) {
  if (!cluster()) return {command(std::move(args))};
  impl_->check_not_on_io_thread();
  auto outcome = std::make_shared<std::promise<std::vector<std::future<Reply>>>>();
  auto outcome_future = outcome->get_future();
  Lane& lane = impl_->lane_for_caller();
  Impl& impl = *impl_;
  lane.post([&lane, &impl, outcome, args = std::move(args)]() mutable {
    lane.with_slot_map([&lane, &impl, outcome, args = std::move(args)](std::exception_ptr error) {
      if (error) {
        outcome->set_exception(error);
        return;
      }
      std::vector<std::future<Reply>> futures;
      std::vector<Request> requests;
      for (const auto& node : lane.slot_map().masters) {
        auto promise = std::make_shared<std::promise<Reply>>();
        futures.push_back(promise->get_future());
        Request request = impl.make_request(args, fulfil(std::move(promise)));
        request.slot.reset();
        request.node = node;
        request.internal = true;
        requests.push_back(std::move(request));
      }
      outcome->set_value(std::move(futures));
      for (auto& request : requests) lane.route(std::move(request));
    });
  });
  if (outcome_future.wait_for(impl_->blocking_wait()) != std::future_status::ready) {
    throw StorageError("redis cluster: no slot map within " +
                       std::to_string(impl_->blocking_wait().count()) + " ms");
  }
  auto futures = outcome_future.get();
  return impl_->wait_all(futures);
}

}  // namespace boxoffice::redis

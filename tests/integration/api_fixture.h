#pragma once
// Shared fixture of the HTTP integration tests: one real `boxoffice serve` for the whole test
// executable (restarted if a test crashed it), a fresh event per test, tokens for "alice", "bob"
// (unique per test, so their caps and booking lists never mix across tests) and an admin, and
// small helpers that read answers with boost::json.
//
// Helpers that need a particular answer throw std::runtime_error quoting the response when they
// get another, which GoogleTest reports as a failure of the test that called them.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "domain/time.h"
#include "http/jwt.h"
#include "support/http_client.h"
#include "support/server_process.h"

namespace boxoffice::testing::api {

namespace json = boost::json;
using namespace std::chrono_literals;

// --- small readers -----------------------------------------------------------------------------

inline std::string str(const json::value& v) {
  if (!v.is_string()) throw std::runtime_error("not a JSON string: " + json::serialize(v));
  return std::string(v.get_string());
}

inline int64_t num(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) return static_cast<int64_t>(v.get_uint64());
  throw std::runtime_error("not a JSON integer: " + json::serialize(v));
}

inline std::vector<std::string> strings(const json::value& v) {
  std::vector<std::string> out;
  for (const auto& item : v.as_array()) out.push_back(str(item));
  return out;
}

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

inline Timestamp time_of(const json::value& v) {
  auto t = parse_rfc3339(str(v));
  if (!t) throw std::runtime_error("not an RFC 3339 time: " + json::serialize(v));
  return *t;
}

inline Timestamp now() {
  return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

inline std::string describe(const Response& r) {
  return "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 800);
}

/// The body as a JSON object; throws quoting the response when it is not one.
inline json::object body_of(const Response& r) {
  auto value = r.json();
  if (!value.is_object()) throw std::runtime_error("body is not a JSON object: " + describe(r));
  return value.as_object();
}

/// Throws unless the response has `status`; returns its body as an object (or {} when empty).
inline json::object expect_status(const Response& r, int status, std::string_view what) {
  if (r.status != status) {
    throw std::runtime_error(std::string(what) + ": expected " + std::to_string(status) + ", got " +
                             describe(r));
  }
  if (r.body.empty()) return {};
  return body_of(r);
}

/// Checks that `r` is an RFC 9457 problem with this status and code (and the fields every problem
/// has); returns the body for further checks.
inline json::object expect_problem(const Response& r, int status, std::string_view code) {
  EXPECT_EQ(r.status, status) << describe(r);
  EXPECT_EQ(r.header("Content-Type").rfind("application/problem+json", 0), 0u)
      << "Content-Type: " << r.header("Content-Type") << " " << describe(r);
  EXPECT_FALSE(r.header("X-Request-Id").empty()) << describe(r);
  json::object body;
  try {
    body = body_of(r);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
    return body;
  }
  EXPECT_EQ(body["code"], json::value(code)) << describe(r);
  EXPECT_EQ(body["status"], json::value(status)) << describe(r);
  EXPECT_TRUE(body["type"].is_string()) << describe(r);
  EXPECT_TRUE(body["title"].is_string()) << describe(r);
  EXPECT_TRUE(body["detail"].is_string()) << describe(r);
  return body;
}

inline std::string detail_of(const json::object& problem) {
  const auto* d = problem.if_contains("detail");
  return d && d->is_string() ? std::string(d->get_string()) : std::string();
}

// --- request bodies ----------------------------------------------------------------------------

inline json::object seats_body(std::vector<std::string> seats) {
  json::array a;
  for (auto& s : seats) a.emplace_back(s);
  return {{"seats", std::move(a)}};
}

inline json::object quantity_body(std::string section, int64_t quantity) {
  return {{"section", std::move(section)}, {"quantity", quantity}};
}

inline std::string text(const json::value& v) { return json::serialize(v); }

inline constexpr std::string_view kPay = R"({"payment_method":"pm_card_ok"})";

/// The default test event: "floor" general (capacity 10, 5000) and "orch" reserved (rows A and B
/// of 10 seats, 10000), sale open now. `changes` replace or add top-level fields.
inline json::object event_body(const json::object& changes = {}) {
  json::object body{
      {"name", "Test night"},
      {"starts_at", "2031-06-01T19:00:00Z"},
      {"currency", "USD"},
      {"sections",
       json::array{
           json::object{{"id", "floor"},
                        {"name", "Floor"},
                        {"kind", "general"},
                        {"capacity", 10},
                        {"price", 5000}},
           json::object{{"id", "orch"},
                        {"name", "Orchestra"},
                        {"kind", "reserved"},
                        {"price", 10000},
                        {"rows", json::array{json::object{{"row", "A"}, {"seats", 10}},
                                             json::object{{"row", "B"}, {"seats", 10}}}}}}}};
  for (const auto& field : changes) body[field.key()] = field.value();
  return body;
}

// --- availability ------------------------------------------------------------------------------

struct SectionCounts {
  std::string kind;
  int64_t capacity = 0, available = 0, held = 0, sold = 0;
  bool operator==(const SectionCounts&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const SectionCounts& c) {
  return os << "{" << c.kind << " capacity=" << c.capacity << " available=" << c.available
            << " held=" << c.held << " sold=" << c.sold << "}";
}

using Availability = std::map<std::string, SectionCounts>;

inline Availability availability_of(HttpClient& client, const std::string& event_id) {
  const auto r = client.get("/v1/events/" + event_id + "/availability");
  auto body = expect_status(r, 200, "GET availability");
  if (body["event_id"] != json::value(event_id)) {
    throw std::runtime_error("availability of another event: " + describe(r));
  }
  Availability out;
  for (const auto& s : body["sections"].as_array()) {
    const auto& o = s.as_object();
    SectionCounts c{str(o.at("kind")), num(o.at("capacity")), num(o.at("available")),
                    num(o.at("held")), num(o.at("sold"))};
    if (c.available + c.held + c.sold != c.capacity || c.available < 0 || c.held < 0 ||
        c.sold < 0) {
      throw std::runtime_error("available + held + sold != capacity: " + describe(r));
    }
    out[str(o.at("id"))] = c;
  }
  return out;
}

/// After a booking's payment outcome: the outcome is committed to the booking first, and its seats
/// are settled in the Seat Lock Store right after (by the payment processor, in another process
/// when the roles run apart). What `read` returns once `settled` holds for it, or its last answer
/// after `timeout` (for the assertion that follows to show).
template <class Read, class Settled>
auto once_settled(Read read, Settled settled, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto value = read();
    if (settled(value) || std::chrono::steady_clock::now() > deadline) return value;
    std::this_thread::sleep_for(20ms);
  }
}

/// Seat id -> status for a reserved section.
inline std::map<std::string, std::string> seat_map(HttpClient& client, const std::string& event_id,
                                                   const std::string& section,
                                                   const std::string& query = "") {
  const auto r = client.get("/v1/events/" + event_id + "/sections/" + section + "/seats" + query);
  auto body = expect_status(r, 200, "GET seats");
  std::map<std::string, std::string> out;
  for (const auto& s : body["seats"].as_array()) out[str(s.at("id"))] = str(s.at("status"));
  return out;
}

// --- bookings ----------------------------------------------------------------------------------

/// Statuses in which a booking's seats are taken (README, buyer caps and restart).
inline bool is_live(const json::value& status) {
  return status == "pending_payment" || status == "confirmed" || status == "cancelled";
}

/// Polls GET /v1/bookings/{id} until its status is one of `statuses` and returns the booking;
/// throws after `timeout` (a liveness bound: payments run in the background).
inline json::object wait_for_booking(HttpClient& c, const std::string& booking_id,
                                     const std::set<std::string>& statuses,
                                     std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto b = expect_status(c.get("/v1/bookings/" + booking_id), 200, "GET booking");
    if (statuses.count(str(b.at("status")))) return b;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("booking " + booking_id +
                               " did not reach the expected status: " + text(b));
    }
    std::this_thread::sleep_for(25ms);
  }
}

// --- raw connections ---------------------------------------------------------------------------

/// One plain TCP connection to 127.0.0.1:port for tests that must see what happens on a single
/// connection (keep-alive, Connection: close). Blocking, with a receive timeout.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, std::chrono::milliseconds timeout = 5s) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect failed");
    }
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  /// One response (head and Content-Length body); nullopt when the server closed the connection
  /// (or said nothing before the timeout) before a whole response arrived.
  std::optional<std::string> read_response() {
    for (;;) {
      const auto head_end = buffer_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        const auto head = lower(buffer_.substr(0, head_end));
        const auto at = head.find("\r\ncontent-length:");
        if (at != std::string::npos) length = std::stoul(head.substr(at + 17));
        const size_t total = head_end + 4 + length;
        if (buffer_.size() >= total) {
          auto response = buffer_.substr(0, total);
          buffer_.erase(0, total);
          return response;
        }
      }
      if (!fill()) return std::nullopt;
    }
  }

  /// Reads (and keeps) whatever arrives until the server closes its side: true if it did within
  /// the receive timeout.
  bool wait_closed() {
    for (;;) {
      char chunk[4096];
      const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0) return true;
      if (n < 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  const std::string& received() const { return buffer_; }

  /// True when the server has closed its side (read returns 0) within the receive timeout.
  bool closed_by_peer() {
    if (!buffer_.empty()) return false;
    char c;
    const auto n = ::recv(fd_, &c, 1, 0);
    if (n > 0) buffer_.push_back(c);
    return n == 0;
  }

 private:
  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool fill() {
    char chunk[4096];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

/// The status codes of every response in a raw byte stream, in order.
inline std::vector<int> statuses_in(const std::string& raw) {
  std::vector<int> out;
  for (auto at = raw.find("HTTP/1.1 "); at != std::string::npos;
       at = raw.find("HTTP/1.1 ", at + 1)) {
    if (at != 0 && (at < 2 || raw.compare(at - 2, 2, "\r\n") != 0) && raw[at - 1] != '}') continue;
    out.push_back(std::stoi(raw.substr(at + 9, 3)));
  }
  return out;
}

/// The value of a header in the first response head of `raw` (case-insensitive), or "".
inline std::string raw_header(const std::string& raw, std::string_view name) {
  const auto head_end = raw.find("\r\n\r\n");
  const std::string head = raw.substr(0, head_end);
  std::string needle = "\r\n" + std::string(name) + ":";
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const auto at = lower(head).find(lower(needle));
  if (at == std::string::npos) return {};
  auto start = at + needle.size();
  auto end = head.find("\r\n", start);
  auto value = head.substr(start, end == std::string::npos ? std::string::npos : end - start);
  while (!value.empty() && value.front() == ' ') value.erase(0, 1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.pop_back();
  return value;
}

// --- the fixture -------------------------------------------------------------------------------

/// Tests of one shared server. Every test gets its own "alice" and "bob" (subjects suffixed with
/// the test's name) and an admin, and should create its own event with make_event().
class ApiTest : public ::testing::Test {
 protected:
  static ServerProcess& server() {
    if (!shared_ || !shared_->running()) {
      shared_.reset();
      shared_ = std::make_unique<ServerProcess>();
    }
    return *shared_;
  }

  void SetUp() override {
    auto& s = server();
    log_offset_ = s.log().size();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // The run number keeps buyers apart when a test runs again on the same server
    // (--gtest_repeat).
    static int runs = 0;
    suffix_ =
        std::string(info->test_suite_name()) + "." + info->name() + "." + std::to_string(++runs);
    alice_id = "alice-" + suffix_;
    bob_id = "bob-" + suffix_;
    admin_token = s.token("ops-" + suffix_, {"admin"});
    alice_token = s.token(alice_id);
    bob_token = s.token(bob_id);
    anon = s.client();
    admin = s.client();
    admin.bearer = admin_token;
    alice = s.client();
    alice.bearer = alice_token;
    bob = s.client();
    bob.bearer = bob_token;
  }

  void TearDown() override {
    auto& s = *shared_;
    const std::string log = s.log();
    const std::string fresh = log.size() > log_offset_ ? log.substr(log_offset_) : std::string();
    EXPECT_TRUE(s.running()) << "the server died during this test; its log:\n" << fresh;
    EXPECT_EQ(fresh.find("AddressSanitizer"), std::string::npos) << fresh;
    EXPECT_EQ(fresh.find("runtime error:"), std::string::npos) << fresh;
    EXPECT_EQ(fresh.find("LeakSanitizer"), std::string::npos) << fresh;
  }

  uint16_t port() { return server().port(); }

  HttpClient client_as(const std::string& token) {
    auto c = server().client();
    c.bearer = token;
    return c;
  }

  /// Creates an event as admin; returns its body.
  json::object make_event(const json::object& changes = {}) {
    const auto r = admin.post("/v1/events", text(event_body(changes)));
    return expect_status(r, 201, "POST /v1/events");
  }
  std::string make_event_id(const json::object& changes = {}) {
    return str(make_event(changes).at("id"));
  }

  /// POST holds, expecting 201; returns the hold.
  static json::object hold(HttpClient& c, const std::string& event_id, const json::object& body,
                           const Headers& headers = {}) {
    const auto r = c.post("/v1/events/" + event_id + "/holds", text(body), headers);
    return expect_status(r, 201, "POST holds " + text(body));
  }
  /// POST checkout, expecting 202; returns the booking.
  static json::object checkout(HttpClient& c, const std::string& hold_id) {
    const auto r = c.post("/v1/holds/" + hold_id + "/checkout", kPay);
    return expect_status(r, 202, "POST checkout");
  }

  Availability avail(const std::string& event_id) { return availability_of(anon, event_id); }

  HttpClient anon{0}, admin{0}, alice{0}, bob{0};
  std::string alice_id, bob_id;
  std::string admin_token, alice_token, bob_token;

 private:
  static inline std::unique_ptr<ServerProcess> shared_;
  size_t log_offset_ = 0;
  std::string suffix_;
};

}  // namespace boxoffice::testing::api

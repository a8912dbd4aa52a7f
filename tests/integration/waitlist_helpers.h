#pragma once
// Helpers of the waitlist integration tests: join/read entries, a section's counts with
// `waitlisted`, and `Line`, a model of one section's line that says which entry must hold an
// offer after each release (the first waiting entry, in join order, whose quantity fits the seats
// kept for the line; again while seats are left) and checks the server against it.

#include <algorithm>
#include <deque>

#include "integration/api_fixture.h"

namespace boxoffice::testing::api::waitlist {

/// Joins, expecting 201.
inline json::object join(HttpClient& c, const std::string& event_id, const std::string& section,
                         int64_t quantity) {
  return expect_status(
      c.post("/v1/events/" + event_id + "/waitlist", text(quantity_body(section, quantity))), 201,
      "POST waitlist " + section + " x" + std::to_string(quantity));
}

inline json::object entry_of(HttpClient& c, const std::string& entry_id) {
  return expect_status(c.get("/v1/waitlist/" + entry_id), 200, "GET /v1/waitlist/" + entry_id);
}

inline json::object hold_of(HttpClient& c, const std::string& hold_id) {
  return expect_status(c.get("/v1/holds/" + hold_id), 200, "GET /v1/holds/" + hold_id);
}

/// Polls the entry until its status is `status`; throws quoting the last answer after `timeout`.
inline json::object wait_for_entry(HttpClient& c, const std::string& entry_id,
                                   const std::string& status,
                                   std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto entry = entry_of(c, entry_id);
    if (entry.at("status") == json::value(status)) return entry;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("entry " + entry_id + " is not " + status + ": " + text(entry));
    }
    std::this_thread::sleep_for(25ms);
  }
}

/// One section of GET availability, `waitlisted` included.
struct LineCounts {
  int64_t capacity = 0, available = 0, held = 0, sold = 0, waitlisted = 0;
  bool operator==(const LineCounts&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const LineCounts& c) {
  return os << "{capacity=" << c.capacity << " available=" << c.available << " held=" << c.held
            << " sold=" << c.sold << " waitlisted=" << c.waitlisted << "}";
}

/// Throws when the section is missing, a count is not an integer, or available + held + sold !=
/// capacity.
inline LineCounts line_of(HttpClient& c, const std::string& event_id, const std::string& section) {
  const auto r = c.get("/v1/events/" + event_id + "/availability");
  auto body = expect_status(r, 200, "GET availability");
  for (const auto& s : body.at("sections").as_array()) {
    const auto& o = s.as_object();
    if (o.at("id") != json::value(section)) continue;
    LineCounts out{num(o.at("capacity")), num(o.at("available")), num(o.at("held")),
                   num(o.at("sold")), num(o.at("waitlisted"))};
    if (out.available + out.held + out.sold != out.capacity || out.available < 0 || out.held < 0 ||
        out.sold < 0 || out.waitlisted < 0) {
      throw std::runtime_error("available + held + sold != capacity: " + describe(r));
    }
    return out;
  }
  throw std::runtime_error("no section " + section + " in " + describe(r));
}

/// Polls until the section's counts are `expected` (payments and refunds finish in the
/// background); returns the last counts seen.
inline LineCounts wait_for_line(HttpClient& c, const std::string& event_id,
                                const std::string& section, const LineCounts& expected,
                                std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto counts = line_of(c, event_id, section);
    if (counts == expected || std::chrono::steady_clock::now() > deadline) return counts;
    std::this_thread::sleep_for(25ms);
  }
}

/// Everyone in one section's line, in join order, and what the server must show for each.
class Line {
 public:
  struct Waiter {
    std::string name;
    HttpClient client;
    int64_t quantity = 0;
    std::string id;
    std::string status = "waiting";
    std::string hold_id;  // of the offer, once seen
    int offer_order = -1;
  };

  /// Appends a buyer (call in join order); set the returned waiter's `id` after joining.
  Waiter& add(std::string name, HttpClient client, int64_t quantity) {
    waiters.push_back(Waiter{std::move(name), std::move(client), quantity, {}, "waiting", {}, -1});
    return waiters.back();
  }

  Waiter& get(const std::string& name) {
    for (auto& w : waiters) {
      if (w.name == name) return w;
    }
    throw std::runtime_error("no waiter " + name);
  }

  /// `seats` came back to the section.
  void release(int64_t seats) {
    kept_ += seats;
    serve();
  }
  /// The buyer left (DELETE of the entry); an offer's seats go to the next.
  void leave(const std::string& name) {
    auto& w = get(name);
    if (w.status == "offered") kept_ += w.quantity;
    w.status = "left";
    serve();
  }
  /// The buyer declined an offer (DELETE of its hold): the entry is expired, the seats move on.
  void decline(const std::string& name) {
    auto& w = get(name);
    if (w.status != "offered") throw std::runtime_error(name + " holds no offer");
    kept_ += w.quantity;
    w.status = "expired";
    serve();
  }

  /// Names of the entries holding an offer now, oldest offer first.
  std::vector<std::string> offered_names() const {
    std::vector<const Waiter*> offered;
    for (const auto& w : waiters) {
      if (w.status == "offered") offered.push_back(&w);
    }
    std::sort(offered.begin(), offered.end(),
              [](const Waiter* a, const Waiter* b) { return a->offer_order < b->offer_order; });
    std::vector<std::string> out;
    for (const auto* w : offered) out.push_back(w->name);
    return out;
  }

  size_t waiting_count() const {
    size_t n = 0;
    for (const auto& w : waiters) n += w.status == "waiting";
    return n;
  }

  /// Polls (up to `timeout`) until every entry's status, and every waiting entry's position, is
  /// what the model says, and the section's `waitlisted` with it; then checks each new offer's
  /// hold. Adds a failure listing expected and actual otherwise. Returns whether it matched.
  bool check(HttpClient& reader, const std::string& event_id, const std::string& section,
             std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<json::object> seen(waiters.size());
    LineCounts counts;
    for (;;) {
      bool match = true;
      for (size_t i = 0; i < waiters.size(); ++i) {
        seen[i] = entry_of(waiters[i].client, waiters[i].id);
        match = match && matches(i, seen[i]);
      }
      counts = line_of(reader, event_id, section);
      match = match && counts.waitlisted == static_cast<int64_t>(waiting_count()) &&
              (waiting_count() == 0 || counts.available == 0);
      if (match) break;
      if (std::chrono::steady_clock::now() > deadline) {
        std::string report = "the line is not what join order says it must be:\n";
        for (size_t i = 0; i < waiters.size(); ++i) {
          report += "  " + waiters[i].name + " (wants " + std::to_string(waiters[i].quantity) +
                    "): expected " + expected(i) + ", got " + text(seen[i]) + "\n";
        }
        report += "  availability of " + section + ": waitlisted " +
                  std::to_string(counts.waitlisted) + " (expected " +
                  std::to_string(waiting_count()) + "), available " +
                  std::to_string(counts.available) + "\n";
        ADD_FAILURE() << report;
        return false;
      }
      std::this_thread::sleep_for(50ms);
    }
    for (size_t i = 0; i < waiters.size(); ++i) {
      auto& w = waiters[i];
      if (w.status != "offered") continue;
      const auto* offer = seen[i].if_contains("offer");
      if (!offer || !offer->is_object()) {
        ADD_FAILURE() << w.name << " is offered without an offer: " << text(seen[i]);
        continue;
      }
      const auto hold_id = str(offer->at("hold_id"));
      if (!w.hold_id.empty()) {
        EXPECT_EQ(hold_id, w.hold_id) << w.name << "'s offer changed: " << text(seen[i]);
        continue;
      }
      w.hold_id = hold_id;
      auto hold = hold_of(w.client, hold_id);
      EXPECT_EQ(hold.at("status"), "active") << w.name << ": " << text(hold);
      EXPECT_EQ(num(hold.at("quantity")), w.quantity) << w.name << ": " << text(hold);
      EXPECT_EQ(hold.at("event_id"), json::value(event_id)) << text(hold);
      EXPECT_EQ(hold.at("section"), json::value(section)) << text(hold);
      EXPECT_EQ(hold.at("expires_at"), offer->at("expires_at")) << text(hold) << text(seen[i]);
    }
    return true;
  }

  std::deque<Waiter> waiters;

 private:
  void serve() {
    for (;;) {
      Waiter* first = nullptr;
      for (auto& w : waiters) {
        if (w.status == "waiting" && w.quantity <= kept_) {
          first = &w;
          break;
        }
      }
      if (!first) break;
      first->status = "offered";
      first->offer_order = ++offers_;
      kept_ -= first->quantity;
    }
    if (waiting_count() == 0) kept_ = 0;  // nobody waits: the rest is the public's
  }

  int64_t expected_position(size_t i) const {
    int64_t ahead = 0;
    for (size_t j = 0; j < i; ++j) ahead += waiters[j].status == "waiting";
    return ahead + 1;
  }

  bool matches(size_t i, const json::object& entry) const {
    const auto& w = waiters[i];
    if (entry.at("status") != json::value(w.status)) return false;
    if (w.status == "waiting") {
      const auto* p = entry.if_contains("position");
      if (!p || !(p->is_int64() || p->is_uint64()) || num(*p) != expected_position(i)) return false;
    }
    return true;
  }

  std::string expected(size_t i) const {
    const auto& w = waiters[i];
    return w.status == "waiting" ? "waiting at " + std::to_string(expected_position(i)) : w.status;
  }

  int64_t kept_ = 0;
  int offers_ = 0;
};

}  // namespace boxoffice::testing::api::waitlist

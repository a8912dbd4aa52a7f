#include <fmt/format.h>

#include <boost/json.hpp>

#include "loadgen/sale_state.h"

namespace boxoffice::loadgen {

namespace json = boost::json;

SectionPlan general_section(std::string id, std::string name, uint32_t capacity, int64_t price) {
  return {std::move(id), std::move(name), false, 0, 0, capacity, price};
}

SectionPlan reserved_section(std::string id, std::string name, uint32_t rows, uint32_t per_row,
                             int64_t price) {
  return {std::move(id), std::move(name), true, rows, per_row, rows * per_row, price};
}

Request request(std::string method, std::string target, std::string body, std::string bearer,
                std::string route) {
  return {std::move(method),
          std::move(target),
          std::move(body),
          std::move(bearer),
          {},
          std::move(route),
          {}};
}

std::string row_name(uint32_t index) {
  std::string name;
  for (uint32_t n = index + 1; n > 0; n = (n - 1) / 26) {
    name.insert(name.begin(), static_cast<char>('A' + (n - 1) % 26));
  }
  return name;
}

std::string event_body(const Plan& plan) {
  json::array sections;
  for (const auto& s : plan.sections) {
    json::object section{{"id", s.id}, {"name", s.name}, {"price", s.price}};
    if (s.reserved) {
      section["kind"] = "reserved";
      json::array rows;
      for (uint32_t r = 0; r < s.rows; ++r) {
        rows.push_back(json::object{{"row", row_name(r)}, {"seats", s.seats_per_row}});
      }
      section["rows"] = std::move(rows);
    } else {
      section["kind"] = "general";
      section["capacity"] = s.capacity;
    }
    sections.push_back(std::move(section));
  }
  return json::serialize(json::object{{"name", plan.name},
                                      {"starts_at", "2027-06-01T19:00:00Z"},
                                      {"currency", "USD"},
                                      {"hold_ttl_seconds", plan.hold_ttl_seconds},
                                      {"max_seats_per_order", plan.max_seats_per_order},
                                      {"max_seats_per_buyer", plan.max_seats_per_order},
                                      {"sections", std::move(sections)}});
}

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto value = json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

int64_t int_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return 0;
}

std::string str_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string{v->as_string()} : std::string{};
}

const json::array* array_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->as_array() : nullptr;
}

/// The problem+json code of a refusal ("seats_unavailable"), or empty.
std::string code_of(const Response& response) {
  auto body = parse_object(response.body);
  return body ? str_of(*body, "code") : std::string{};
}

std::string describe(const Response& r) {
  if (r.status == kNoResponse) return "no response (" + r.error + ")";
  auto body = r.body.substr(0, 300);
  return "HTTP " + std::to_string(r.status) + ": " + body;
}

/// 6000 → "6,000": the report is read by people.
std::string num(int64_t n) {
  auto s = std::to_string(n < 0 ? -n : n);
  for (auto i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

std::string secs(Steady::duration d) {
  return fmt::format("{:.1f} s", std::chrono::duration<double>(d).count());
}

std::string ms(Micros us) { return fmt::format("{:.1f}", us.count() / 1000.0); }

std::vector<SectionState> sections_of(const json::object& body) {
  std::vector<SectionState> out;
  if (const auto* sections = array_of(body, "sections")) {
    for (const auto& v : *sections) {
      if (!v.is_object()) continue;
      const auto& s = v.as_object();
      out.push_back({str_of(s, "id"), str_of(s, "kind") == "reserved", int_of(s, "capacity"),
                     int_of(s, "available"), int_of(s, "held"), int_of(s, "sold")});
    }
  }
  return out;
}

BookingCounts counts_of(const json::object& stats) {
  BookingCounts c;
  if (const auto* v = stats.if_contains("bookings"); v && v->is_object()) {
    const auto& b = v->as_object();
    c = {int_of(b, "pending_payment"), int_of(b, "confirmed"), int_of(b, "payment_failed"),
         int_of(b, "cancelled"), int_of(b, "refunded")};
  }
  return c;
}

LineCounts line_counts_of(const json::object& stats) {
  LineCounts c;
  if (const auto* v = stats.if_contains("waitlist"); v && v->is_object()) {
    const auto& w = v->as_object();
    c = {int_of(w, "waiting"), int_of(w, "offered"), int_of(w, "converted"), int_of(w, "expired"),
         int_of(w, "left")};
  }
  return c;
}

std::string line_counts_text(const LineCounts& c) {
  return fmt::format("waiting {}, offered {}, converted {}, expired {}, left {}", num(c.waiting),
                     num(c.offered), num(c.converted), num(c.expired), num(c.left));
}

std::optional<Plan> plan_from_event(const json::object& event) {
  const auto* sections = array_of(event, "sections");
  if (!sections || str_of(event, "id").empty()) return std::nullopt;
  Plan plan;
  plan.name = str_of(event, "name");
  if (const auto ttl = int_of(event, "hold_ttl_seconds"); ttl > 0) {
    plan.hold_ttl_seconds = static_cast<uint32_t>(ttl);
  }
  auto order_max = int_of(event, "max_seats_per_order");
  if (const auto buyer_max = int_of(event, "max_seats_per_buyer"); buyer_max > 0) {
    order_max = order_max > 0 ? std::min(order_max, buyer_max) : buyer_max;
  }
  if (order_max > 0) plan.max_seats_per_order = static_cast<uint32_t>(order_max);
  for (const auto& v : *sections) {
    if (!v.is_object()) continue;
    const auto& s = v.as_object();
    SectionPlan section{
        str_of(s, "id"),   str_of(s, "name"), str_of(s, "kind") == "reserved", 0, 0, 0,
        int_of(s, "price")};
    if (section.reserved) {
      const auto* rows = array_of(s, "rows");
      uint32_t widest = 0;
      for (const auto& r : rows ? *rows : json::array{}) {
        if (!r.is_object()) continue;
        const auto seats =
            static_cast<uint32_t>(std::max<int64_t>(0, int_of(r.as_object(), "seats")));
        ++section.rows;
        widest = std::max(widest, seats);
        section.capacity += seats;
      }
      section.seats_per_row = widest;
    } else {
      section.capacity = static_cast<uint32_t>(std::max<int64_t>(0, int_of(s, "capacity")));
    }
    plan.sections.push_back(std::move(section));
  }
  if (plan.sections.empty()) return std::nullopt;
  return plan;
}

bool is_live(const std::string& status) {
  return status == "pending_payment" || status == "confirmed" || status == "cancelled";
}

}  // namespace boxoffice::loadgen

#include "http/json_codec.h"

#include <boost/json.hpp>
#include <initializer_list>
#include <limits>

namespace boxoffice::http {

namespace json = boost::json;

namespace {

Error invalid(std::string detail) { return make_error(Errc::invalid_request, std::move(detail)); }

/// Reads fields of one JSON object and remembers the first problem, so parsers read top-down.
class Fields {
 public:
  Fields(const json::object& object, std::string where)
      : object_(object), where_(std::move(where)) {}

  /// Refuses any key not in `known`.
  void only(std::initializer_list<std::string_view> known) {
    for (const auto& field : object_) {
      bool ok = false;
      for (auto k : known) ok = ok || field.key() == k;
      if (!ok) fail("unknown field \"" + std::string{field.key()} + "\"" + where_);
    }
  }

  const json::value* get(std::string_view key, bool required) {
    const auto* value = object_.if_contains(key);
    if ((!value || value->is_null()) && required)
      fail("\"" + std::string{key} + "\" is required" + where_);
    return value && !value->is_null() ? value : nullptr;
  }

  void string(std::string_view key, std::string& out, bool required, size_t max_length = 200) {
    const auto* value = get(key, required);
    if (!value) return;
    if (!value->is_string()) return fail("\"" + std::string{key} + "\" must be a string" + where_);
    const auto& text = value->get_string();
    if (text.size() > max_length) {
      return fail("\"" + std::string{key} + "\" is longer than " + std::to_string(max_length) +
                  " characters" + where_);
    }
    out.assign(text.data(), text.size());
  }

  template <class Int>
  void integer(std::string_view key, Int& out, bool required, int64_t min, int64_t max) {
    const auto* value = get(key, required);
    if (!value) return;
    int64_t number = 0;
    if (value->is_int64()) {
      number = value->get_int64();
    } else if (value->is_uint64() &&
               value->get_uint64() <= uint64_t(std::numeric_limits<int64_t>::max())) {
      number = static_cast<int64_t>(value->get_uint64());
    } else {
      return fail("\"" + std::string{key} + "\" must be an integer" + where_);
    }
    if (number < min || number > max) {
      return fail("\"" + std::string{key} + "\" must be between " + std::to_string(min) + " and " +
                  std::to_string(max) + where_);
    }
    out = static_cast<Int>(number);
  }

  void time(std::string_view key, Timestamp& out, bool required) {
    std::string text;
    string(key, text, required, 64);
    if (text.empty() || error_) return;
    auto t = parse_rfc3339(text);
    if (!t) return fail("\"" + std::string{key} + "\" must be an RFC 3339 time" + where_);
    out = *t;
  }

  const json::array* array(std::string_view key, bool required) {
    const auto* value = get(key, required);
    if (!value) return nullptr;
    if (!value->is_array()) {
      fail("\"" + std::string{key} + "\" must be an array" + where_);
      return nullptr;
    }
    return &value->get_array();
  }

  void fail(std::string detail) {
    if (!error_) error_ = invalid(std::move(detail));
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  const json::object& object_;
  std::string where_;
  std::optional<Error> error_;
};

Result<const json::object*> as_object(const json::value& value, std::string_view what) {
  if (!value.is_object()) return invalid(std::string{what} + " must be a JSON object");
  return &value.get_object();
}

}  // namespace

Result<json::value> parse_json(std::string_view body) {
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 16;
  auto value = json::parse(body, ec, {}, options);
  if (ec) return make_error(Errc::malformed_request, "the body is not valid JSON: " + ec.message());
  return value;
}

Result<Event> event_from_json(std::string_view body, Timestamp now) {
  auto parsed = parse_json(body);
  if (!parsed) return parsed.take_error();
  auto root = as_object(*parsed, "the event");
  if (!root) return root.take_error();
  Fields f(**root, "");
  f.only({"name", "starts_at", "currency", "sale_opens_at", "hold_ttl_seconds",
          "max_seats_per_order", "max_seats_per_buyer", "sections"});
  Event event;
  event.sale_opens_at = now;
  f.string("name", event.name, true);
  f.time("starts_at", event.starts_at, true);
  f.string("currency", event.currency, true, 3);
  f.time("sale_opens_at", event.sale_opens_at, false);
  f.integer("hold_ttl_seconds", event.hold_ttl_seconds, false, 0, 1'000'000);
  f.integer("max_seats_per_order", event.max_seats_per_order, false, 0, 1'000'000);
  const auto* buyer_cap = (*root)->if_contains("max_seats_per_buyer");
  const bool buyer_cap_given = buyer_cap && !buyer_cap->is_null();  // null means "the default"
  f.integer("max_seats_per_buyer", event.max_seats_per_buyer, false, 0, 1'000'000);
  if (!buyer_cap_given) event.max_seats_per_buyer = event.max_seats_per_order;
  if (const auto* sections = f.array("sections", true)) {
    if (sections->size() > EventLimits::sections_max) f.fail("an event has at most 1000 sections");
    for (size_t i = 0; i < sections->size() && !f.error(); ++i) {
      const std::string where = " in sections[" + std::to_string(i) + "]";
      if (!(*sections)[i].is_object()) {
        f.fail("sections[" + std::to_string(i) + "] must be an object");
        break;
      }
      Fields s((*sections)[i].get_object(), where);
      s.only({"id", "name", "kind", "capacity", "price", "rows"});
      Section section;
      std::string kind;
      s.string("id", section.id, true, 64);
      s.string("name", section.name, false);
      s.string("kind", kind, true, 16);
      s.integer("price", section.price, true, 0, EventLimits::price_max);
      if (kind == "general") {
        section.kind = SectionKind::general;
        s.integer("capacity", section.capacity, true, 1, EventLimits::seats_per_event_max);
        if (s.get("rows", false)) s.fail("a general section has no \"rows\"" + where);
      } else if (kind == "reserved") {
        section.kind = SectionKind::reserved;
        s.integer("capacity", section.capacity, false, 1, EventLimits::seats_per_event_max);
        if (const auto* rows = s.array("rows", true)) {
          if (rows->size() > EventLimits::rows_per_section_max) s.fail("too many rows" + where);
          for (size_t r = 0; r < rows->size() && !s.error(); ++r) {
            if (!(*rows)[r].is_object()) {
              s.fail("rows[" + std::to_string(r) + "] must be an object" + where);
              break;
            }
            Fields rf((*rows)[r].get_object(), " in rows[" + std::to_string(r) + "]" + where);
            rf.only({"row", "seats"});
            Row row;
            rf.string("row", row.name, true, 64);
            rf.integer("seats", row.seats, true, 1, EventLimits::seats_per_row_max);
            if (rf.error()) s.fail(rf.error()->detail);
            section.rows.push_back(std::move(row));
          }
        }
      } else if (!s.error()) {
        s.fail("\"kind\" must be \"general\" or \"reserved\"" + where);
      }
      if (s.error()) f.fail(s.error()->detail);
      event.sections.push_back(std::move(section));
    }
  }
  if (f.error()) return *f.error();
  return event;
}

Result<HoldSelection> hold_selection_from_json(std::string_view body) {
  auto parsed = parse_json(body);
  if (!parsed) return parsed.take_error();
  auto root = as_object(*parsed, "the hold request");
  if (!root) return root.take_error();
  Fields f(**root, "");
  const bool by_seats = (*root)->if_contains("seats") != nullptr;
  if (by_seats) {
    f.only({"seats"});
    ExactSeats exact;
    if (const auto* seats = f.array("seats", true)) {
      if (seats->empty()) f.fail("\"seats\" must list at least one seat");
      if (seats->size() > EventLimits::seats_per_order_max) f.fail("too many seats in one hold");
      for (const auto& seat : *seats) {
        if (!seat.is_string() || seat.get_string().empty() || seat.get_string().size() > 200) {
          f.fail("\"seats\" must be an array of seat ids like \"orch:A:1\"");
          break;
        }
        exact.seat_ids.emplace_back(seat.get_string().c_str());
      }
    }
    if (f.error()) return *f.error();
    return HoldSelection{std::move(exact)};
  }
  f.only({"section", "quantity"});
  SectionQuantity wanted;
  f.string("section", wanted.section, true, 64);
  f.integer("quantity", wanted.quantity, true, 1, EventLimits::seats_per_order_max);
  if (f.error()) {
    auto error = *f.error();
    if ((*root)->empty()) error.detail = "give either \"seats\" or \"section\" and \"quantity\"";
    return error;
  }
  return HoldSelection{std::move(wanted)};
}

Result<SectionQuantity> waitlist_join_from_json(std::string_view body) {
  auto parsed = parse_json(body);
  if (!parsed) return parsed.take_error();
  auto root = as_object(*parsed, "the waitlist request");
  if (!root) return root.take_error();
  Fields f(**root, "");
  f.only({"section", "quantity"});
  SectionQuantity wanted;
  f.string("section", wanted.section, true, 64);
  f.integer("quantity", wanted.quantity, true, 1, EventLimits::seats_per_order_max);
  if (f.error()) return *f.error();
  return wanted;
}

Result<std::string> checkout_from_json(std::string_view body) {
  auto parsed = parse_json(body);
  if (!parsed) return parsed.take_error();
  auto root = as_object(*parsed, "the checkout request");
  if (!root) return root.take_error();
  Fields f(**root, "");
  f.only({"payment_method"});
  std::string method;
  f.string("payment_method", method, true, 64);
  if (f.error()) return *f.error();
  return method;
}

json::object to_json(const Event& event) {
  json::array sections;
  for (const auto& section : event.sections) {
    json::object s{{"id", section.id},
                   {"name", section.name},
                   {"kind", to_string(section.kind)},
                   {"capacity", section.capacity},
                   {"price", section.price}};
    if (section.kind == SectionKind::reserved) {
      json::array rows;
      for (const auto& row : section.rows)
        rows.push_back(json::object{{"row", row.name}, {"seats", row.seats}});
      s["rows"] = std::move(rows);
    }
    sections.push_back(std::move(s));
  }
  return json::object{{"id", event.id},
                      {"name", event.name},
                      {"starts_at", format_rfc3339(event.starts_at)},
                      {"currency", event.currency},
                      {"sale_opens_at", format_rfc3339(event.sale_opens_at)},
                      {"hold_ttl_seconds", event.hold_ttl_seconds},
                      {"max_seats_per_order", event.max_seats_per_order},
                      {"max_seats_per_buyer", event.max_seats_per_buyer},
                      {"sections", std::move(sections)},
                      {"created_at", format_rfc3339(event.created_at)}};
}

namespace {
json::array string_array(const std::vector<std::string>& items) {
  json::array out;
  out.reserve(items.size());
  for (const auto& item : items) out.emplace_back(item);
  return out;
}
}  // namespace

json::object to_json(const Hold& hold) {
  return json::object{{"id", hold.id},
                      {"event_id", hold.event_id},
                      {"section", hold.section},
                      {"seats", string_array(hold.seats)},
                      {"quantity", hold.quantity},
                      {"status", to_string(hold.status)},
                      {"expires_at", format_rfc3339(hold.expires_at)},
                      {"amount", hold.amount},
                      {"currency", hold.currency},
                      {"created_at", format_rfc3339(hold.created_at)}};
}

json::object to_json(const Booking& booking) {
  json::object payment{{"attempts", booking.payment_attempts}};
  payment["last_error"] =
      booking.last_error.empty() ? json::value(nullptr) : json::value(booking.last_error);
  return json::object{{"id", booking.id},
                      {"event_id", booking.event_id},
                      {"hold_id", booking.hold_id},
                      {"section", booking.section},
                      {"seats", string_array(booking.seats)},
                      {"quantity", booking.quantity},
                      {"amount", booking.amount},
                      {"currency", booking.currency},
                      {"status", to_string(booking.status)},
                      {"payment_method", booking.payment_method},
                      {"created_at", format_rfc3339(booking.created_at)},
                      {"updated_at", format_rfc3339(booking.updated_at)},
                      {"payment", std::move(payment)}};
}

json::object availability_to_json(const std::string& event_id,
                                  const std::vector<SectionAvailability>& sections) {
  json::array out;
  for (const auto& s : sections) {
    out.push_back(json::object{{"id", s.id},
                               {"kind", to_string(s.kind)},
                               {"capacity", s.capacity},
                               {"available", s.available},
                               {"held", s.held},
                               {"sold", s.sold},
                               {"waitlisted", s.waitlisted}});
  }
  return json::object{{"event_id", event_id}, {"sections", std::move(out)}};
}

json::object seats_to_json(const std::vector<SeatState>& seats) {
  json::array out;
  out.reserve(seats.size());
  for (const auto& seat : seats)
    out.push_back(json::object{{"id", seat.id}, {"status", to_string(seat.status)}});
  return json::object{{"seats", std::move(out)}};
}

json::object to_json(const WaitlistEntry& entry) {
  json::object out{{"id", entry.id},
                   {"event_id", entry.event_id},
                   {"section", entry.section},
                   {"quantity", entry.quantity},
                   {"status", to_string(entry.status)},
                   {"created_at", format_rfc3339(entry.created_at)},
                   {"updated_at", format_rfc3339(entry.updated_at)}};
  out["position"] = entry.position ? json::value(*entry.position) : json::value(nullptr);
  if (entry.offer) {
    out["offer"] = json::object{{"hold_id", entry.offer->hold_id},
                                {"expires_at", format_rfc3339(entry.offer->expires_at)}};
  }
  return out;
}

json::object stats_to_json(const EventStats& stats, const WaitlistCounts& waitlist) {
  auto out = availability_to_json(stats.event_id, stats.sections);
  const auto& b = stats.bookings;
  out["bookings"] = json::object{{"pending_payment", b.pending_payment},
                                 {"confirmed", b.confirmed},
                                 {"payment_failed", b.payment_failed},
                                 {"cancelled", b.cancelled},
                                 {"refunded", b.refunded}};
  out["revenue"] = b.revenue;
  out["payments"] = json::object{{"attempts", b.payment_attempts},
                                 {"declines", b.payment_failed},
                                 {"dead_lettered", b.dead_lettered}};
  out["waitlist"] = json::object{{"waiting", waitlist.waiting},
                                 {"offered", waitlist.offered},
                                 {"converted", waitlist.converted},
                                 {"expired", waitlist.expired},
                                 {"left", waitlist.left}};
  return out;
}

}  // namespace boxoffice::http

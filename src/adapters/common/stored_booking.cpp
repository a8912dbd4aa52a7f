#include "adapters/common/stored_booking.h"

#include <algorithm>
#include <boost/json.hpp>
#include <limits>
#include <set>
#include <string_view>

#include "domain/error.h"

namespace boxoffice::stored {

namespace json = boost::json;

namespace {

// --- JSON columns
// ---------------------------------------------------------------------------------

std::string text_field(const json::object& object, std::string_view key) {
  return std::string(object.at(key).as_string());
}

template <class T>
T number_field(const json::object& object, std::string_view key) {
  return object.at(key).to_number<T>();
}

}  // namespace

std::string encode_event(const Event& event) {
  json::array sections;
  sections.reserve(event.sections.size());
  for (const auto& section : event.sections) {
    json::array rows;
    rows.reserve(section.rows.size());
    for (const auto& row : section.rows) {
      rows.push_back(json::object{{"name", row.name}, {"seats", row.seats}});
    }
    sections.push_back(json::object{{"id", section.id},
                                    {"name", section.name},
                                    {"kind", to_string(section.kind)},
                                    {"capacity", section.capacity},
                                    {"price", section.price},
                                    {"rows", std::move(rows)}});
  }
  return json::serialize(json::object{{"id", event.id},
                                      {"name", event.name},
                                      {"starts_at_ms", to_unix_ms(event.starts_at)},
                                      {"currency", event.currency},
                                      {"sale_opens_at_ms", to_unix_ms(event.sale_opens_at)},
                                      {"hold_ttl_seconds", event.hold_ttl_seconds},
                                      {"max_seats_per_order", event.max_seats_per_order},
                                      {"max_seats_per_buyer", event.max_seats_per_buyer},
                                      {"created_at_ms", to_unix_ms(event.created_at)},
                                      {"sections", std::move(sections)}});
}

Event decode_event(std::string_view text) {
  try {
    const json::value value = json::parse(text);
    const json::object& object = value.as_object();
    Event event;
    event.id = text_field(object, "id");
    event.name = text_field(object, "name");
    event.starts_at = from_unix_ms(number_field<int64_t>(object, "starts_at_ms"));
    event.currency = text_field(object, "currency");
    event.sale_opens_at = from_unix_ms(number_field<int64_t>(object, "sale_opens_at_ms"));
    event.hold_ttl_seconds = number_field<uint32_t>(object, "hold_ttl_seconds");
    event.max_seats_per_order = number_field<uint32_t>(object, "max_seats_per_order");
    event.max_seats_per_buyer = number_field<uint32_t>(object, "max_seats_per_buyer");
    event.created_at = from_unix_ms(number_field<int64_t>(object, "created_at_ms"));
    for (const auto& section_value : object.at("sections").as_array()) {
      const json::object& section_object = section_value.as_object();
      Section section;
      section.id = text_field(section_object, "id");
      section.name = text_field(section_object, "name");
      const std::string kind = text_field(section_object, "kind");
      if (kind == to_string(SectionKind::reserved)) {
        section.kind = SectionKind::reserved;
      } else if (kind == to_string(SectionKind::general)) {
        section.kind = SectionKind::general;
      } else {
        throw std::invalid_argument("section kind \"" + kind + "\"");
      }
      section.capacity = number_field<uint32_t>(section_object, "capacity");
      section.price = number_field<int64_t>(section_object, "price");
      for (const auto& row_value : section_object.at("rows").as_array()) {
        const json::object& row_object = row_value.as_object();
        section.rows.push_back(
            Row{text_field(row_object, "name"), number_field<uint32_t>(row_object, "seats")});
      }
      event.sections.push_back(std::move(section));
    }
    return event;
  } catch (const std::exception& e) {
    throw StorageError(std::string("corrupt event row: ") + e.what());
  }
}

std::string encode_seats(const std::vector<std::string>& seats) {
  json::array array;
  array.reserve(seats.size());
  for (const auto& seat : seats) array.emplace_back(seat);
  return json::serialize(array);
}

std::vector<std::string> decode_seats(std::string_view text) {
  try {
    const json::value value = json::parse(text);
    std::vector<std::string> seats;
    for (const auto& seat : value.as_array()) seats.emplace_back(seat.as_string());
    return seats;
  } catch (const std::exception& e) {
    throw StorageError(std::string("corrupt seats column: ") + e.what());
  }
}

// A hold as the lock store hands it over has a shape; one that breaks it is a bug upstream and
// must not become a booking.
std::optional<Error> check_hold_shape(const Hold& hold, SectionKind kind) {
  if (hold.quantity == 0) return make_error(Errc::invalid_request, "the hold has no seats");
  if (kind == SectionKind::general) {
    if (!hold.seats.empty()) {
      return make_error(Errc::invalid_request, "a general-admission hold names no seats");
    }
    return std::nullopt;
  }
  if (hold.seats.size() != hold.quantity) {
    return make_error(Errc::invalid_request, "the hold's seats do not match its quantity");
  }
  const std::set<std::string_view> distinct(hold.seats.begin(), hold.seats.end());
  if (distinct.size() != hold.seats.size()) {
    return make_error(Errc::invalid_request, "the hold names a seat twice");
  }
  return std::nullopt;
}

BookingStatus decode_status(std::string_view text) {
  const auto status = parse_booking_status(text);
  if (!status) throw StorageError("corrupt booking row: status \"" + std::string{text} + "\"");
  return *status;
}

int64_t to_sql_limit(size_t limit) {
  return static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

}  // namespace boxoffice::stored

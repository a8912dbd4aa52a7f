#include "domain/event.h"

#include <unordered_set>

#include "domain/ids.h"

namespace boxoffice {

std::string_view to_string(SectionKind kind) {
  return kind == SectionKind::reserved ? "reserved" : "general";
}

const Section* Event::find_section(std::string_view section_id) const {
  for (const auto& section : sections) {
    if (section.id == section_id) return &section;
  }
  return nullptr;
}

uint64_t Event::capacity() const {
  uint64_t total = 0;
  for (const auto& section : sections) total += section.capacity;
  return total;
}

namespace {

Error invalid(std::string detail) { return make_error(Errc::invalid_request, std::move(detail)); }

bool is_currency(const std::string& c) {
  if (c.size() != 3) return false;
  for (char ch : c) {
    if (ch < 'A' || ch > 'Z') return false;
  }
  return true;
}

}  // namespace

std::optional<Error> validate_and_normalize(Event& event) {
  using L = EventLimits;
  if (event.name.empty() || event.name.size() > L::name_length_max) {
    return invalid("name must have 1 to 200 characters");
  }
  if (!is_currency(event.currency))
    return invalid("currency must be an ISO 4217 code like \"USD\"");
  if (event.hold_ttl_seconds < L::hold_ttl_seconds_min ||
      event.hold_ttl_seconds > L::hold_ttl_seconds_max) {
    return invalid("hold_ttl_seconds must be between 10 and 3600");
  }
  if (event.max_seats_per_order < 1 || event.max_seats_per_order > L::seats_per_order_max) {
    return invalid("max_seats_per_order must be between 1 and 100");
  }
  if (event.max_seats_per_buyer < 1 || event.max_seats_per_buyer > 10 * L::seats_per_order_max) {
    return invalid("max_seats_per_buyer must be between 1 and 1000");
  }
  if (event.sections.empty() || event.sections.size() > L::sections_max) {
    return invalid("an event has 1 to 1000 sections");
  }
  std::unordered_set<std::string> section_ids;
  uint64_t seats_total = 0;
  for (auto& section : event.sections) {
    if (!is_valid_id(section.id)) {
      return invalid("section id \"" + section.id + "\" must be 1-64 of [A-Za-z0-9_-]");
    }
    if (!section_ids.insert(section.id).second) {
      return invalid("section id \"" + section.id + "\" is used twice");
    }
    if (section.name.empty()) section.name = section.id;
    if (section.name.size() > L::name_length_max) return invalid("section name too long");
    if (section.price < 0 || section.price > L::price_max) {
      return invalid("section \"" + section.id + "\": price must be 0 to 1000000000 minor units");
    }
    if (section.kind == SectionKind::general) {
      if (!section.rows.empty()) {
        return invalid("section \"" + section.id + "\": a general section has no rows");
      }
      if (section.capacity < 1) {
        return invalid("section \"" + section.id + "\": capacity must be at least 1");
      }
    } else {
      if (section.rows.empty() || section.rows.size() > L::rows_per_section_max) {
        return invalid("section \"" + section.id + "\": a reserved section has 1 to 10000 rows");
      }
      std::unordered_set<std::string> row_names;
      uint64_t capacity = 0;
      for (const auto& row : section.rows) {
        if (!is_valid_id(row.name)) {
          return invalid("section \"" + section.id + "\": row \"" + row.name +
                         "\" must be 1-64 of [A-Za-z0-9_-]");
        }
        if (!row_names.insert(row.name).second) {
          return invalid("section \"" + section.id + "\": row \"" + row.name + "\" is used twice");
        }
        if (row.seats < 1 || row.seats > L::seats_per_row_max) {
          return invalid("section \"" + section.id + "\": row \"" + row.name +
                         "\" must have 1 to 10000 seats");
        }
        capacity += row.seats;
      }
      if (section.capacity != 0 && section.capacity != capacity) {
        return invalid("section \"" + section.id +
                       "\": capacity, when given, must equal the number of seats in its rows");
      }
      section.capacity = static_cast<uint32_t>(capacity);
    }
    seats_total += section.capacity;
    if (seats_total > L::seats_per_event_max) return invalid("an event has at most 2000000 seats");
  }
  return std::nullopt;
}

}  // namespace boxoffice

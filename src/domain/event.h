#pragma once
// Events, sections and rows, and the rules an event must satisfy before it is sold.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/time.h"

namespace boxoffice {

/// Limits on the shape of an event. They keep every per-event structure bounded and every
/// request that names an event cheap; raise them deliberately.
struct EventLimits {
  static constexpr uint32_t sections_max = 1'000;
  static constexpr uint32_t rows_per_section_max = 10'000;
  static constexpr uint32_t seats_per_row_max = 10'000;
  static constexpr uint64_t seats_per_event_max = 2'000'000;
  static constexpr uint32_t hold_ttl_seconds_min = 10;
  static constexpr uint32_t hold_ttl_seconds_max = 3'600;
  static constexpr uint32_t seats_per_order_max = 100;
  static constexpr size_t name_length_max = 200;
  static constexpr int64_t price_max = 1'000'000'000;  // minor units
};

enum class SectionKind { reserved, general };
std::string_view to_string(SectionKind kind);

struct Row {
  std::string name;  // "A"; [A-Za-z0-9_-], no ':' since it is part of seat ids
  uint32_t seats = 0;
};

struct Section {
  std::string id;  // "orch"; [A-Za-z0-9_-]
  std::string name;
  SectionKind kind = SectionKind::general;
  uint32_t capacity = 0;  // general: given; reserved: the sum of the rows' seats
  int64_t price = 0;      // per seat, minor units of the event's currency
  std::vector<Row> rows;  // reserved only
};

struct Event {
  std::string id;
  std::string name;
  Timestamp starts_at{};
  std::string currency;  // ISO 4217, three upper-case letters
  Timestamp sale_opens_at{};
  uint32_t hold_ttl_seconds = 600;
  uint32_t max_seats_per_order = 8;
  uint32_t max_seats_per_buyer = 8;
  std::vector<Section> sections;
  Timestamp created_at{};

  const Section* find_section(std::string_view section_id) const;
  uint64_t capacity() const;
};

/// Checks every rule of an event (ids, names, kinds, capacities, limits) and fills derived fields
/// (a reserved section's capacity). Returns the first broken rule as invalid_request.
std::optional<Error> validate_and_normalize(Event& event);

}  // namespace boxoffice

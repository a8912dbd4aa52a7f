#pragma once
// A hold: seats (or a general-admission quantity) reserved for one buyer until expires_at.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/time.h"

namespace boxoffice {

enum class HoldStatus { active, checked_out, expired, released };
std::string_view to_string(HoldStatus status);

struct Hold {
  std::string id;
  std::string event_id;
  std::string buyer;
  std::string section;
  std::vector<std::string> seats;  // empty for general admission
  uint32_t quantity = 0;
  int64_t amount = 0;
  std::string currency;
  HoldStatus status = HoldStatus::active;
  Timestamp created_at{};
  Timestamp expires_at{};
  /// Strictly increasing across the holds a store grants in one section (and above every fence
  /// the bookings store has seen), so the bookings store, which compares fences per seat (per
  /// general section), can tell a newer holder from an older one. A store-wide counter would do
  /// too, but in Redis it would be one hot key for every hold of every section.
  uint64_t fence = 0;

  /// A hold is valid only while now < expires_at, judged at the moment of use.
  bool is_active_at(Timestamp now) const {
    return status == HoldStatus::active && now < expires_at;
  }
};

/// What to hold: these exact seats, or a quantity in one section (general admission, or best
/// available in a reserved section).
struct ExactSeats {
  std::vector<std::string> seat_ids;
};
struct SectionQuantity {
  std::string section;
  uint32_t quantity = 0;
};
using HoldSelection = std::variant<ExactSeats, SectionQuantity>;

}  // namespace boxoffice

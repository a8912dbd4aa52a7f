#pragma once
// Waitlist entries: a buyer waiting for `quantity` seats of one section of a sold-out event.
//   waiting -> offered (released seats became a hold owned by the buyer)
//   offered -> converted (the offer was checked out) | expired (the offer lapsed or was declined)
//   waiting | offered -> left (the buyer left)
//   waiting -> expired (the line cannot serve the buyer: their cap is full with other seats)

#include <cstdint>
#include <optional>
#include <string>

#include "domain/time.h"

namespace boxoffice {

enum class WaitlistStatus { waiting, offered, converted, expired, left };
std::string_view to_string(WaitlistStatus status);

/// The only transitions that exist (the diagram above).
bool can_transition(WaitlistStatus from, WaitlistStatus to);

struct WaitlistOffer {
  std::string hold_id;
  Timestamp expires_at{};
};

struct WaitlistEntry {
  std::string id;
  std::string event_id;
  std::string section;
  std::string buyer;
  uint32_t quantity = 0;
  WaitlistStatus status = WaitlistStatus::waiting;
  /// Order of joining within the section: strictly increasing, never reused.
  int64_t sequence = 0;
  /// 1 + the number of entries still waiting ahead of this one (waiting entries only).
  std::optional<uint64_t> position;
  std::optional<WaitlistOffer> offer;
  Timestamp created_at{};
  Timestamp updated_at{};

  /// Waiting or offered: the buyer is still in line or holding an offer.
  bool live() const {
    return status == WaitlistStatus::waiting || status == WaitlistStatus::offered;
  }
};

}  // namespace boxoffice

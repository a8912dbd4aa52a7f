#include "domain/waitlist.h"

namespace boxoffice {

std::string_view to_string(WaitlistStatus status) {
  switch (status) {
    case WaitlistStatus::waiting:
      return "waiting";
    case WaitlistStatus::offered:
      return "offered";
    case WaitlistStatus::converted:
      return "converted";
    case WaitlistStatus::expired:
      return "expired";
    case WaitlistStatus::left:
      return "left";
  }
  return "unknown";
}

bool can_transition(WaitlistStatus from, WaitlistStatus to) {
  using S = WaitlistStatus;
  switch (from) {
    case S::waiting:
      return to == S::offered || to == S::left || to == S::expired;
    case S::offered:
      return to == S::converted || to == S::expired || to == S::left;
    case S::converted:
    case S::expired:
    case S::left:
      return false;
  }
  return false;
}

}  // namespace boxoffice

#include "domain/waitlist.h"

namespace boxoffice {

std::string_view to_string(WaitlistStatus status) {
  switch (status) {
    case WaitlistStatus::waiting: return "waiting";
    case WaitlistStatus::offered: return "offered";
    case WaitlistStatus::converted: return "converted";
    case WaitlistStatus::expired: return "expired";
    case WaitlistStatus::left: return "left";
  }
  return "unknown";
}

}  // namespace boxoffice

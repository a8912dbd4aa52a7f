#include "domain/hold.h"

namespace boxoffice {

std::string_view to_string(HoldStatus status) {
  switch (status) {
    case HoldStatus::active:
      return "active";
    case HoldStatus::checked_out:
      return "checked_out";
    case HoldStatus::expired:
      return "expired";
    case HoldStatus::released:
      return "released";
  }
  return "unknown";
}

}  // namespace boxoffice

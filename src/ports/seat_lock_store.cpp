#include "ports/seat_lock_store.h"

namespace boxoffice {

std::string_view to_string(SeatStatus status) {
  switch (status) {
    case SeatStatus::available:
      return "available";
    case SeatStatus::held:
      return "held";
    case SeatStatus::sold:
      return "sold";
  }
  return "unknown";
}

}  // namespace boxoffice

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

void SeatLockStore::async_hold(const HoldRequest& request, HoldDone done) {
  std::exception_ptr error;
  std::optional<Result<Hold>> held;
  try {
    held.emplace(hold(request));
  } catch (...) {
    error = std::current_exception();
  }
  done(error, held ? std::move(*held) : Result<Hold>(make_error(Errc::unavailable)));
}

}  // namespace boxoffice

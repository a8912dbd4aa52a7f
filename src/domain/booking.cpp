#include "domain/booking.h"

namespace boxoffice {

std::string_view to_string(BookingStatus status) {
  switch (status) {
    case BookingStatus::pending_payment:
      return "pending_payment";
    case BookingStatus::confirmed:
      return "confirmed";
    case BookingStatus::payment_failed:
      return "payment_failed";
    case BookingStatus::cancelled:
      return "cancelled";
    case BookingStatus::refunded:
      return "refunded";
  }
  return "unknown";
}

std::optional<BookingStatus> parse_booking_status(std::string_view text) {
  for (auto s :
       {BookingStatus::pending_payment, BookingStatus::confirmed, BookingStatus::payment_failed,
        BookingStatus::cancelled, BookingStatus::refunded}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

bool can_transition(BookingStatus from, BookingStatus to) {
  using S = BookingStatus;
  switch (from) {
    case S::pending_payment:
      return to == S::confirmed || to == S::payment_failed;
    case S::confirmed:
      return to == S::cancelled;
    case S::cancelled:
      return to == S::refunded;
    case S::payment_failed:
    case S::refunded:
      return false;
  }
  return false;
}

bool holds_seats(BookingStatus status) {
  return status == BookingStatus::pending_payment || status == BookingStatus::confirmed ||
         status == BookingStatus::cancelled;
}

}  // namespace boxoffice

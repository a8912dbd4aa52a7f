#pragma once
// Bookings and their state machine:
//   pending_payment -> confirmed | payment_failed;  confirmed -> cancelled -> refunded.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/time.h"

namespace boxoffice {

enum class BookingStatus { pending_payment, confirmed, payment_failed, cancelled, refunded };
std::string_view to_string(BookingStatus status);
std::optional<BookingStatus> parse_booking_status(std::string_view text);

/// The only transitions that exist.
bool can_transition(BookingStatus from, BookingStatus to);

/// A live booking holds its seats: pending_payment, confirmed, and cancelled until refunded.
bool holds_seats(BookingStatus status);

struct Booking {
  std::string id;
  std::string event_id;
  std::string hold_id;
  std::string buyer;
  std::string section;
  std::vector<std::string> seats;  // empty for general admission
  uint32_t quantity = 0;
  int64_t amount = 0;
  std::string currency;
  std::string payment_method;
  BookingStatus status = BookingStatus::pending_payment;
  uint64_t fence = 0;  // the hold's fencing token
  Timestamp created_at{};
  Timestamp updated_at{};
  uint32_t payment_attempts = 0;
  std::string last_error;
};

}  // namespace boxoffice

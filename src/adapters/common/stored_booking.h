#pragma once
// What every SQL adapter of the Bookings DB stores the same way: events and seat lists as JSON
// columns, and the shape a hold must have before it may become a booking.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/booking.h"
#include "domain/error.h"
#include "domain/event.h"
#include "domain/hold.h"

namespace boxoffice::stored {

std::string encode_event(const Event& event);
/// Throws StorageError for a column that is not an event.
Event decode_event(std::string_view text);
std::string encode_seats(const std::vector<std::string>& seats);
/// Throws StorageError for a column that is not a list of seat ids.
std::vector<std::string> decode_seats(std::string_view text);

/// A booking status column; throws StorageError for one that is not a status.
BookingStatus decode_status(std::string_view text);

/// A size_t limit as the int64 a SQL LIMIT takes (clamped).
int64_t to_sql_limit(size_t limit);

/// A hold as the lock store hands it over has a shape; one that breaks it is a bug upstream and
/// must not become a booking (invalid_request).
std::optional<Error> check_hold_shape(const Hold& hold, SectionKind kind);

}  // namespace boxoffice::stored

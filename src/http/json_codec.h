#pragma once
// JSON mapping of the API's objects (CONTRACT.md). Parsing is strict: wrong types, unknown fields
// and out-of-range numbers are refused with invalid_request naming the field; text that is not
// JSON is malformed_request.

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "domain/booking.h"
#include "domain/event.h"
#include "domain/hold.h"
#include "domain/result.h"
#include "domain/waitlist.h"
#include "ports/seat_lock_store.h"
#include "ports/waitlist_store.h"
#include "services/booking_service.h"

namespace boxoffice::http {

Result<boost::json::value> parse_json(std::string_view body);

/// A new event from POST /v1/events, with the contract's defaults filled in (sale_opens_at = now).
Result<Event> event_from_json(std::string_view body, Timestamp now);
Result<HoldSelection> hold_selection_from_json(std::string_view body);
/// {"section","quantity"} of POST /v1/events/{id}/waitlist.
Result<SectionQuantity> waitlist_join_from_json(std::string_view body);
/// The payment method of POST /v1/holds/{id}/checkout.
Result<std::string> checkout_from_json(std::string_view body);

boost::json::object to_json(const Event& event);
boost::json::object to_json(const Hold& hold);
boost::json::object to_json(const Booking& booking);
boost::json::object availability_to_json(const std::string& event_id,
                                         const std::vector<SectionAvailability>& sections);
boost::json::object seats_to_json(const std::vector<SeatState>& seats);
boost::json::object stats_to_json(const EventStats& stats, const WaitlistCounts& waitlist);
boost::json::object to_json(const WaitlistEntry& entry);

}  // namespace boxoffice::http

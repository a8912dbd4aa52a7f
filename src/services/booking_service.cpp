#include "services/booking_service.h"

#include <algorithm>
#include <mutex>

#include "domain/ids.h"

namespace boxoffice {

namespace {

Error not_found(const std::string& what, const std::string& id) {
  return make_error(Errc::not_found, "no " + what + " " + id);
}

bool is_payment_method(const std::string& method) {
  if (method.empty() || method.size() > 64) return false;
  return std::all_of(method.begin(), method.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

BookingService::BookingService(const Clock& clock, SeatLockStore& locks, BookingStore& bookings)
    : clock_(clock), locks_(locks), bookings_(bookings) {}

void BookingService::recover() {
  locks_.raise_fence_floor(bookings_.max_fence());
  refresh_events();
}

std::shared_ptr<const Event> BookingService::find_event(const std::string& event_id) {
  // The cache only: this runs on I/O threads, and a miss must not become a database read that an
  // anonymous client could repeat at will. Events made elsewhere arrive by refresh_events().
  std::shared_lock lock(events_mutex_);
  auto it = events_.find(event_id);
  return it == events_.end() ? nullptr : it->second;
}

size_t BookingService::refresh_events() {
  size_t added = 0;
  for (auto& event : bookings_.list_events()) {
    {
      std::shared_lock lock(events_mutex_);
      if (events_.count(event.id)) continue;
    }
    locks_.add_event(event);
    locks_.restore(event.id, bookings_.live_claims(event.id));
    auto cached = std::make_shared<const Event>(std::move(event));
    std::unique_lock lock(events_mutex_);
    events_.emplace(cached->id, std::move(cached));
    ++added;
  }
  return added;
}

Result<Event> BookingService::create_event(const Caller& caller, Event event) {
  if (!caller.admin) return make_error(Errc::forbidden, "creating events needs the admin role");
  if (auto error = validate_and_normalize(event)) return *error;
  event.id = new_id("evt");
  event.created_at = clock_.now();
  if (auto status = bookings_.create_event(event); !status) return status.take_error();
  locks_.add_event(event);
  locks_.restore(event.id, {});
  auto cached = std::make_shared<const Event>(event);
  std::unique_lock lock(events_mutex_);
  events_[event.id] = std::move(cached);
  return event;
}

std::vector<Event> BookingService::list_events() { return bookings_.list_events(); }

Result<Event> BookingService::get_event(const std::string& event_id) {
  auto event = find_event(event_id);
  if (!event) return not_found("event", event_id);
  return *event;
}

Result<std::vector<SectionAvailability>> BookingService::availability(const std::string& event_id) {
  if (!find_event(event_id)) return not_found("event", event_id);
  const auto now = clock_.now();
  if (availability_max_age_.count() <= 0) return locks_.availability(event_id, now);
  // The count's age by the steady clock: a wall clock stepped back would freeze it.
  const auto counting = std::chrono::steady_clock::now();
  {
    std::shared_lock lock(availability_mutex_);
    const auto it = availability_counts_.find(event_id);
    if (it != availability_counts_.end() &&
        counting - it->second.counted_at < availability_max_age_) {
      return it->second.sections;
    }
  }
  auto counted = locks_.availability(event_id, now);
  if (counted) {
    std::unique_lock lock(availability_mutex_);
    auto& entry = availability_counts_[event_id];
    // A slower, older count does not win.
    if (entry.counted_at <= counting) entry = {*counted, counting};
  }
  return counted;
}

bool BookingService::availability_cached(const std::string& event_id) const {
  if (availability_max_age_.count() <= 0) return false;
  std::shared_lock lock(availability_mutex_);
  const auto it = availability_counts_.find(event_id);
  return it != availability_counts_.end() &&
         std::chrono::steady_clock::now() - it->second.counted_at < availability_max_age_ / 2;
}

Result<std::vector<SeatState>> BookingService::seats(const std::string& event_id,
                                                     const std::string& section_id,
                                                     const std::optional<std::string>& row) {
  if (!find_event(event_id)) return not_found("event", event_id);
  return locks_.seats(event_id, section_id, row, clock_.now());
}

Result<EventStats> BookingService::stats(const Caller& caller, const std::string& event_id) {
  if (!caller.admin) return make_error(Errc::forbidden, "event statistics need the admin role");
  auto sections = availability(event_id);
  if (!sections) return sections.take_error();
  return EventStats{event_id, std::move(*sections), bookings_.counts(event_id)};
}

Result<HoldRequest> BookingService::hold_request(const Caller& caller, const std::string& event_id,
                                                 const HoldSelection& selection) {
  auto event = find_event(event_id);
  if (!event) return not_found("event", event_id);
  const auto now = clock_.now();
  if (now < event->sale_opens_at) {
    return make_error(Errc::sale_not_open,
                      "the sale opens at " + format_rfc3339(event->sale_opens_at));
  }
  const auto quantity = std::visit(
      [](const auto& s) -> size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(s)>, ExactSeats>) {
          return s.seat_ids.size();
        } else {
          return s.quantity;
        }
      },
      selection);
  if (quantity == 0) return make_error(Errc::invalid_request, "a hold needs at least one seat");
  if (quantity > event->max_seats_per_order) {
    return make_error(Errc::limit_exceeded,
                      "at most " + std::to_string(event->max_seats_per_order) + " seats per order");
  }
  HoldRequest request;
  request.hold_id = new_id("hld");
  request.event_id = event_id;
  request.buyer = caller.buyer;
  request.selection = selection;
  request.now = now;
  request.expires_at = now + std::chrono::seconds{event->hold_ttl_seconds};
  request.buyer_seats_max = event->max_seats_per_buyer;
  return request;
}

Result<Hold> BookingService::create_hold(const Caller& caller, const std::string& event_id,
                                         const HoldSelection& selection) {
  auto request = hold_request(caller, event_id, selection);
  if (!request) return request.take_error();
  return locks_.hold(*request);
}

void BookingService::async_create_hold(const Caller& caller, const std::string& event_id,
                                       const HoldSelection& selection,
                                       SeatLockStore::HoldDone done) {
  auto request = hold_request(caller, event_id, selection);
  if (!request) return done(nullptr, request.take_error());
  locks_.async_hold(*request, std::move(done));
}

Result<Hold> BookingService::get_hold(const Caller& caller, const std::string& hold_id) {
  auto hold = locks_.get_hold(hold_id, clock_.now());
  if (!hold) return hold;
  if (!caller.may_see(hold->buyer)) return not_found("hold", hold_id);
  return hold;
}

Result<Hold> BookingService::release_hold(const Caller& caller, const std::string& hold_id) {
  auto hold = get_hold(caller, hold_id);
  if (!hold) return hold;
  if (hold->buyer != caller.buyer) return not_found("hold", hold_id);  // admins only read
  auto released = locks_.release(hold_id, clock_.now());
  if (released && hooks_.hold_released) hooks_.hold_released(*released);
  return released;
}

Result<Booking> BookingService::checkout(const Caller& caller, const std::string& hold_id,
                                         const std::string& payment_method) {
  if (!is_payment_method(payment_method)) {
    return make_error(Errc::invalid_request,
                      "payment_method must be 1-64 of [A-Za-z0-9_], like \"pm_card_ok\"");
  }
  auto current = get_hold(caller, hold_id);
  if (!current) return current.take_error();
  if (current->buyer != caller.buyer) return not_found("hold", hold_id);  // admins only read
  if (current->status == HoldStatus::checked_out) {
    if (auto booking = bookings_.find_booking_by_hold(hold_id)) {
      // A retry after a crash may find the booking committed but its hooks never run.
      if (hooks_.payment_job_committed) hooks_.payment_job_committed(*booking);
      return *booking;
    }
    return make_error(Errc::request_in_progress, "a checkout of this hold is in progress");
  }
  const auto now = clock_.now();
  auto hold = locks_.begin_checkout(hold_id, now);
  if (!hold) {
    if (hold.error().code == Errc::invalid_state) {  // a concurrent checkout won the race
      if (auto booking = bookings_.find_booking_by_hold(hold_id)) return *booking;
      return make_error(Errc::request_in_progress, "a checkout of this hold is in progress");
    }
    return hold.take_error();
  }
  Result<Booking> booking = make_error(Errc::unavailable);
  try {
    booking = bookings_.create_booking({new_id("bkg"), *hold, payment_method, now});
  } catch (const StorageError&) {
    locks_.abort_checkout(hold_id, /*keep=*/true);  // nothing was written: the buyer may retry
    throw;
  }
  if (!booking) {
    // The arbiter refused what the gate allowed (the hold outlived its expiry, or the lock store
    // lost state): this hold can never become a booking, so its seats go back.
    locks_.abort_checkout(hold_id, /*keep=*/false);
    return make_error(Errc::hold_expired,
                      "the hold can no longer be booked: " + booking.error().detail);
  }
  if (hooks_.payment_job_committed) hooks_.payment_job_committed(*booking);
  return booking;
}

Result<Booking> BookingService::get_booking(const Caller& caller, const std::string& booking_id) {
  auto booking = bookings_.get_booking(booking_id);
  if (!booking || !caller.may_see(booking->buyer)) return not_found("booking", booking_id);
  return *booking;
}

std::vector<Booking> BookingService::list_bookings(const Caller& caller) {
  return bookings_.list_bookings(caller.buyer, bookings_list_max);
}

Result<Booking> BookingService::cancel_booking(const Caller& caller,
                                               const std::string& booking_id) {
  auto booking = get_booking(caller, booking_id);
  if (!booking) return booking;
  if (booking->buyer != caller.buyer) return not_found("booking", booking_id);  // admins only read
  if (booking->status != BookingStatus::confirmed) {
    return make_error(Errc::invalid_state,
                      "only a confirmed booking can be cancelled; this one is " +
                          std::string{to_string(booking->status)});
  }
  auto cancelled = bookings_.transition(booking_id, BookingStatus::confirmed,
                                        BookingStatus::cancelled, clock_.now());
  if (cancelled && hooks_.payment_job_committed) hooks_.payment_job_committed(*cancelled);
  return cancelled;
}

}  // namespace boxoffice

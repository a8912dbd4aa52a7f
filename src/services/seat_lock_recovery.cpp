#include "services/seat_lock_recovery.h"

#include <spdlog/spdlog.h>

namespace boxoffice {

RecoveringSeatLockStore::RecoveringSeatLockStore(SeatLockStore& inner, BookingStore& bookings)
    : inner_(inner), bookings_(bookings) {}

uint64_t RecoveringSeatLockStore::rebuilds() const {
  std::lock_guard lock(mutex_);
  return rebuilds_;
}

template <class Call>
auto RecoveringSeatLockStore::recovering(Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const LockStateLost& lost) {
    rebuild(lost.event_id());
  }
  return call();  // a second loss right away propagates: 503, and the next call tries again
}

void RecoveringSeatLockStore::rebuild(const std::string& event_id) {
  {
    std::lock_guard lock(mutex_);
    if (!rebuilding_.insert(event_id).second) {
      throw StorageError("event " + event_id +
                         " is being rebuilt in the seat lock store; retry shortly");
    }
  }
  struct Done {
    RecoveringSeatLockStore& self;
    const std::string& event_id;
    ~Done() {
      std::lock_guard lock(self.mutex_);
      self.rebuilding_.erase(event_id);
    }
  } done{*this, event_id};
  spdlog::warn("the seat lock store lost event {}: rebuilding it from the bookings database",
               event_id);
  auto event = bookings_.get_event(event_id);
  if (!event) throw StorageError("the seat lock store names an unknown event " + event_id);
  // Fences granted after the rebuild must exceed every fence booked since this process started,
  // not only those booked before it: the engine forgot its counters.
  inner_.raise_fence_floor(bookings_.max_fence());
  inner_.add_event(*event);
  const auto claims = bookings_.live_claims(event_id);
  inner_.restore(event_id, claims);
  spdlog::warn("rebuilt event {} in the seat lock store ({} live bookings)", event_id,
               claims.size());
  std::lock_guard lock(mutex_);
  ++rebuilds_;
}

void RecoveringSeatLockStore::add_event(const Event& event) { inner_.add_event(event); }

void RecoveringSeatLockStore::restore(const std::string& event_id,
                                      const std::vector<RestoredClaim>& claims) {
  inner_.restore(event_id, claims);
}

void RecoveringSeatLockStore::raise_fence_floor(uint64_t fence) { inner_.raise_fence_floor(fence); }

Result<Hold> RecoveringSeatLockStore::hold(const HoldRequest& request) {
  return recovering([&] { return inner_.hold(request); });
}

void RecoveringSeatLockStore::async_hold(const HoldRequest& request, HoldDone done) {
  inner_.async_hold(request, std::move(done));
}

Result<Hold> RecoveringSeatLockStore::get_hold(const std::string& hold_id, Timestamp now) {
  return recovering([&] { return inner_.get_hold(hold_id, now); });
}

Result<Hold> RecoveringSeatLockStore::release(const std::string& hold_id, Timestamp now) {
  return recovering([&] { return inner_.release(hold_id, now); });
}

Result<Hold> RecoveringSeatLockStore::begin_checkout(const std::string& hold_id, Timestamp now) {
  return recovering([&] { return inner_.begin_checkout(hold_id, now); });
}

void RecoveringSeatLockStore::abort_checkout(const std::string& hold_id, bool keep) {
  recovering([&] { inner_.abort_checkout(hold_id, keep); });
}

void RecoveringSeatLockStore::load_events() {
  for (const auto& event : bookings_.list_events()) inner_.add_event(event);
}

Status RecoveringSeatLockStore::mark_sold(const std::string& hold_id, Timestamp now) {
  auto sold = recovering([&] { return inner_.mark_sold(hold_id, now); });
  if (sold || sold.error().code != Errc::not_found) return sold;
  load_events();
  return recovering([&] { return inner_.mark_sold(hold_id, now); });
}

Status RecoveringSeatLockStore::release_booked(const std::string& hold_id, Timestamp now) {
  auto released = recovering([&] { return inner_.release_booked(hold_id, now); });
  if (released || released.error().code != Errc::not_found) return released;
  load_events();
  return recovering([&] { return inner_.release_booked(hold_id, now); });
}

void RecoveringSeatLockStore::set_waitlisted(const std::string& event_id,
                                             const std::string& section, uint32_t waiting) {
  recovering([&] { inner_.set_waitlisted(event_id, section, waiting); });
}

Result<uint32_t> RecoveringSeatLockStore::free_seats(const std::string& event_id,
                                                     const std::string& section, Timestamp now) {
  return recovering([&] { return inner_.free_seats(event_id, section, now); });
}

std::vector<SectionRef> RecoveringSeatLockStore::sweep_expired(Timestamp now, size_t limit) {
  return recovering([&] { return inner_.sweep_expired(now, limit); });
}

Result<std::vector<SectionAvailability>> RecoveringSeatLockStore::availability(
    const std::string& event_id, Timestamp now) {
  return recovering([&] { return inner_.availability(event_id, now); });
}

Result<std::vector<SeatState>> RecoveringSeatLockStore::seats(const std::string& event_id,
                                                              const std::string& section_id,
                                                              const std::optional<std::string>& row,
                                                              Timestamp now) {
  return recovering([&] { return inner_.seats(event_id, section_id, row, now); });
}

}  // namespace boxoffice

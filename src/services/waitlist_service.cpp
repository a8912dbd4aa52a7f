#include "services/waitlist_service.h"

#include <spdlog/spdlog.h>

#include "domain/ids.h"

namespace boxoffice {

WaitlistService::WaitlistService(const Clock& clock, SeatLockStore& locks, WaitlistStore& store,
                                 BookingService& bookings, WaitlistOptions options)
    : clock_(clock), locks_(locks), store_(store), bookings_(bookings), options_(options) {}

WaitlistService::~WaitlistService() { stop(); }

void WaitlistService::recover() {
  const auto now = clock_.now();
  for (const auto& s : store_.active_sections()) {
    if (!bookings_.get_event(s.event_id).ok()) continue;  // loads the event into the lock store
    update_gate(s.event_id, s.section);
  }
  // Every outstanding offer (lapsed ones included: the sweeper expires them) gets its hold back,
  // with its own id and expiry, from the seats the line was keeping.
  const auto far_future = now + std::chrono::hours{24 * 365 * 100};
  for (const auto& entry : store_.lapsed_offers(far_future, SIZE_MAX)) {
    auto event = bookings_.get_event(entry.event_id);
    if (!event || !entry.offer) continue;
    HoldRequest request;
    request.hold_id = entry.offer->hold_id;
    request.event_id = entry.event_id;
    request.buyer = entry.buyer;
    request.selection = SectionQuantity{entry.section, entry.quantity};
    request.now = now;
    request.expires_at = entry.offer->expires_at;
    request.buyer_seats_max = event->max_seats_per_buyer;
    request.for_waitlist = true;
    if (locks_.get_hold(request.hold_id, now).ok()) continue;
    if (auto hold = locks_.hold(request); !hold) {
      spdlog::warn("waitlist: could not restore offer {} of entry {}: {}", request.hold_id,
                   entry.id, hold.error().detail);
    }
  }
}

void WaitlistService::start() {
  std::lock_guard lock(mutex_);
  if (sweeper_.joinable()) return;
  stopping_ = false;
  sweeper_ = std::thread([this] { run(); });
}

void WaitlistService::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!sweeper_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  sweeper_.join();
}

void WaitlistService::run() {
  for (;;) {
    try {
      sweep();
    } catch (const std::exception& e) {
      spdlog::warn("waitlist sweep: {}; retrying shortly", e.what());
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, options_.sweep_interval,
                   [this] { return stopping_ || !poked_.empty() || !declined_offers_.empty(); });
    if (stopping_) return;
  }
}

void WaitlistService::poke(const std::string& event_id, const std::string& section) {
  {
    std::lock_guard lock(mutex_);
    poked_.emplace(event_id, section);
  }
  wake_.notify_one();
}

void WaitlistService::on_hold_released(const Hold& hold) {
  {
    std::lock_guard lock(mutex_);
    poked_.emplace(hold.event_id, hold.section);
    if (hold.id.rfind(kOfferHoldPrefix, 0) == 0) declined_offers_.push_back(hold.id);
  }
  wake_.notify_one();
}

Result<WaitlistEntry> WaitlistService::join(const Caller& caller, const std::string& event_id,
                                            const std::string& section, uint32_t quantity) {
  auto event = bookings_.get_event(event_id);
  if (!event) return event.take_error();
  const auto now = clock_.now();
  if (now < event->sale_opens_at) {
    return make_error(Errc::sale_not_open,
                      "the sale opens at " + format_rfc3339(event->sale_opens_at));
  }
  if (!event->find_section(section)) return make_error(Errc::not_found, "no section " + section);
  if (quantity < 1) return make_error(Errc::invalid_request, "quantity must be at least 1");
  if (quantity > event->max_seats_per_order) {
    return make_error(Errc::limit_exceeded,
                      "at most " + std::to_string(event->max_seats_per_order) + " seats per order");
  }
  auto sections = locks_.availability(event_id, now);
  if (!sections) return sections.take_error();
  for (const auto& s : *sections) {
    if (s.id == section && s.available > 0) {
      return make_error(Errc::seats_available, std::to_string(s.available) +
                                                   " seats are available in " + section +
                                                   " now: hold them instead");
    }
  }
  WaitlistEntry entry;
  entry.id = new_id("wle");
  entry.event_id = event_id;
  entry.section = section;
  entry.buyer = caller.buyer;
  entry.quantity = quantity;
  entry.created_at = entry.updated_at = now;
  auto joined = store_.join(entry);
  if (!joined) {
    if (joined.error().code == Errc::conflict) {
      return make_error(Errc::conflict, "you are already in the waitlist of section " + section);
    }
    return joined;
  }
  {
    // The sweeper also sets the gate; one writer at a time, so a stale count never lands last.
    std::lock_guard serving(serve_mutex_);
    update_gate(event_id, section);
  }
  // Seats may have come back between the availability check and the gate: serve them.
  poke(event_id, section);
  return store_.get(joined->id).value_or(*joined);
}

Result<WaitlistEntry> WaitlistService::get(const Caller& caller, const std::string& entry_id) {
  auto entry = store_.get(entry_id);
  if (!entry || !caller.may_see(entry->buyer)) {
    return make_error(Errc::not_found, "no waitlist entry " + entry_id);
  }
  return *entry;
}

Result<WaitlistEntry> WaitlistService::leave(const Caller& caller, const std::string& entry_id) {
  auto entry = get(caller, entry_id);
  if (!entry) return entry;
  if (entry->buyer != caller.buyer) {  // admins only read
    return make_error(Errc::not_found, "no waitlist entry " + entry_id);
  }
  if (!entry->live()) {
    return make_error(Errc::invalid_state,
                      "the entry is already " + std::string{to_string(entry->status)});
  }
  auto left = store_.transition(entry_id, entry->status, WaitlistStatus::left, clock_.now());
  if (!left) return left;
  if (entry->status == WaitlistStatus::offered && entry->offer) {
    (void)locks_.release(entry->offer->hold_id, clock_.now());
  }
  {
    std::lock_guard serving(serve_mutex_);
    update_gate(entry->event_id, entry->section);
  }
  poke(entry->event_id, entry->section);
  return left;
}

void WaitlistService::on_checkout(const std::string& hold_id) {
  if (hold_id.rfind(kOfferHoldPrefix, 0) != 0) return;
  auto entry = store_.find_by_offer(hold_id);
  if (!entry || entry->status != WaitlistStatus::offered) return;
  (void)store_.transition(entry->id, WaitlistStatus::offered, WaitlistStatus::converted,
                          clock_.now());
}

void WaitlistService::update_gate(const std::string& event_id, const std::string& section) {
  locks_.set_waitlisted(event_id, section, store_.waiting_count(event_id, section));
}

size_t WaitlistService::serve(const std::string& event_id, const std::string& section) {
  auto event = bookings_.get_event(event_id);
  if (!event) return 0;
  size_t offers = 0;
  while (offers < options_.offers_per_section_max) {
    const auto now = clock_.now();
    auto free = locks_.free_seats(event_id, section, now);
    if (!free || *free == 0) break;
    auto entry = store_.first_fitting(event_id, section, *free);
    if (!entry) break;
    HoldRequest request;
    request.hold_id = std::string{kOfferHoldPrefix} + new_id("hld").substr(4);
    request.event_id = event_id;
    request.buyer = entry->buyer;
    request.selection = SectionQuantity{section, entry->quantity};
    request.now = now;
    request.expires_at = now + options_.offer_window;
    request.buyer_seats_max = event->max_seats_per_buyer;
    request.for_waitlist = true;
    auto hold = locks_.hold(request);
    if (!hold) {
      // This buyer cannot take the seats (their cap is full with other seats): the line moves on.
      spdlog::info("waitlist: entry {} cannot be offered seats ({}); expiring it", entry->id,
                   hold.error().detail);
      (void)store_.transition(entry->id, WaitlistStatus::waiting, WaitlistStatus::expired, now);
      continue;
    }
    auto offered = store_.transition(entry->id, WaitlistStatus::waiting, WaitlistStatus::offered,
                                     now, WaitlistOffer{hold->id, hold->expires_at});
    if (!offered) {
      (void)locks_.release(hold->id, now);  // the buyer left meanwhile
      continue;
    }
    ++offers;
  }
  update_gate(event_id, section);
  return offers;
}

size_t WaitlistService::sweep() {
  std::lock_guard serving(serve_mutex_);
  const auto now = clock_.now();
  std::set<std::pair<std::string, std::string>> lines;
  std::vector<std::string> declined;
  {
    std::lock_guard lock(mutex_);
    lines.swap(poked_);
    declined.swap(declined_offers_);
  }
  for (const auto& hold_id : declined) {
    auto entry = store_.find_by_offer(hold_id);
    if (!entry || entry->status != WaitlistStatus::offered) continue;
    (void)store_.transition(entry->id, WaitlistStatus::offered, WaitlistStatus::expired, now);
    lines.emplace(entry->event_id, entry->section);
  }
  for (auto& s : locks_.sweep_expired(now, options_.sweep_batch_max)) {
    lines.emplace(std::move(s.event_id), std::move(s.section));
  }
  for (const auto& entry : store_.lapsed_offers(now, options_.sweep_batch_max)) {
    // Checked out just before its expiry (or before a crash lost the conversion): converted.
    if (entry.offer && bookings_.booking_of_hold(entry.offer->hold_id)) {
      (void)store_.transition(entry.id, WaitlistStatus::offered, WaitlistStatus::converted, now);
      continue;
    }
    // The offer's hold expires at the same instant; its seats go to the next in line.
    (void)store_.transition(entry.id, WaitlistStatus::offered, WaitlistStatus::expired, now);
    if (entry.offer) (void)locks_.release(entry.offer->hold_id, now);
    lines.emplace(entry.event_id, entry.section);
  }
  for (auto& s : store_.active_sections())
    lines.emplace(std::move(s.event_id), std::move(s.section));
  size_t offers = 0;
  for (const auto& [event_id, section] : lines) {
    try {
      offers += serve(event_id, section);
    } catch (const std::exception& e) {
      // One line's trouble (an engine error) must not stop the others; it is retried next sweep.
      spdlog::warn("waitlist: serving {}/{} failed: {}", event_id, section, e.what());
    }
  }
  return offers;
}

}  // namespace boxoffice

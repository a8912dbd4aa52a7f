#include "adapters/memory/memory_seat_lock_store.h"

#include <algorithm>
#include <cassert>
#include <optional>

namespace boxoffice {

namespace {

enum : uint8_t { kFree = 0, kHeld = 1, kSold = 2 };

struct ExpiryEntry {
  Timestamp at;
  std::string hold_id;
  bool operator>(const ExpiryEntry& other) const { return at > other.at; }
};
using ExpiryQueue =
    std::priority_queue<ExpiryEntry, std::vector<ExpiryEntry>, std::greater<ExpiryEntry>>;

}  // namespace

struct MemorySeatLockStore::HoldRecord {
  Hold hold;
  uint32_t section = 0;
  std::vector<uint32_t> seat_indices;  // reserved sections only
  bool sold = false;                   // a checked-out hold whose payment was approved
};

struct MemorySeatLockStore::EventState {
  explicit EventState(const Event& event) : layout(event) {
    for (const auto& section : event.sections) {
      SectionState state;
      state.capacity = section.capacity;
      if (section.kind == SectionKind::reserved) {
        std::vector<uint32_t> row_seats;
        for (const auto& row : section.rows) row_seats.push_back(row.seats);
        state.free_index.emplace(row_seats);
        state.status.assign(section.capacity, kFree);
      }
      sections.push_back(std::move(state));
    }
    seats_returned.assign(sections.size(), false);
  }

  struct SectionState {
    uint32_t capacity = 0;
    uint32_t held = 0;
    uint32_t sold = 0;
    std::optional<RowIndex> free_index;  // reserved only
    std::vector<uint8_t> status;         // reserved only: one per seat
    uint32_t waitlisted = 0;
    uint32_t free() const { return capacity - held - sold; }
    /// What the public may take: nothing while buyers wait for this section.
    uint32_t available() const { return waitlisted ? 0 : free(); }
  };

  std::mutex mutex;
  SeatLayout layout;
  std::vector<SectionState> sections;
  std::unordered_map<std::string, HoldRecord> holds;
  std::unordered_map<std::string, uint32_t> buyer_seats;
  ExpiryQueue expiries;              // active holds by expires_at; stale entries are skipped
  ExpiryQueue forgets;               // finished holds by the time they are forgotten
  std::vector<bool> seats_returned;  // per section: expiry freed seats since the last sweep
};

MemorySeatLockStore::MemorySeatLockStore(Millis finished_hold_retention)
    : retention_(finished_hold_retention) {}

MemorySeatLockStore::~MemorySeatLockStore() = default;

void MemorySeatLockStore::add_event(const Event& event) {
  std::unique_lock lock(events_mutex_);
  if (events_.count(event.id)) return;
  events_.emplace(event.id, std::make_shared<EventState>(event));
}

std::shared_ptr<MemorySeatLockStore::EventState> MemorySeatLockStore::find_event(
    const std::string& event_id) const {
  std::shared_lock lock(events_mutex_);
  auto it = events_.find(event_id);
  return it == events_.end() ? nullptr : it->second;
}

std::shared_ptr<MemorySeatLockStore::EventState> MemorySeatLockStore::find_event_of_hold(
    const std::string& hold_id) const {
  std::string event_id;
  {
    std::lock_guard lock(hold_index_mutex_);
    auto it = event_of_hold_.find(hold_id);
    if (it == event_of_hold_.end()) return nullptr;
    event_id = it->second;
  }
  return find_event(event_id);
}

void MemorySeatLockStore::raise_fence_floor(uint64_t fence) {
  uint64_t current = next_fence_.load();
  while (current <= fence && !next_fence_.compare_exchange_weak(current, fence + 1)) {
  }
}

void MemorySeatLockStore::free_seats(EventState& state, HoldRecord& record) {
  auto& section = state.sections[record.section];
  const uint32_t quantity = record.hold.quantity;
  auto& count = record.sold ? section.sold : section.held;
  assert(count >= quantity);
  count -= quantity;
  record.sold = false;
  if (section.free_index) {
    for (auto index : record.seat_indices) section.status[index] = kFree;
    section.free_index->set_free(record.seat_indices);
  }
  auto buyer = state.buyer_seats.find(record.hold.buyer);
  assert(buyer != state.buyer_seats.end() && buyer->second >= quantity);
  buyer->second -= quantity;
  if (buyer->second == 0) state.buyer_seats.erase(buyer);
}

void MemorySeatLockStore::finish(EventState& state, HoldRecord& record, HoldStatus status,
                                 Timestamp now) {
  free_seats(state, record);
  record.hold.status = status;
  state.forgets.push({now + retention_, record.hold.id});
}

void MemorySeatLockStore::reclaim(EventState& state, Timestamp now, size_t limit) {
  size_t expired = 0;
  while (!state.expiries.empty() && state.expiries.top().at <= now && expired < limit) {
    const auto entry = state.expiries.top();
    state.expiries.pop();
    auto it = state.holds.find(entry.hold_id);
    if (it == state.holds.end()) continue;
    auto& record = it->second;
    if (record.hold.status != HoldStatus::active || record.hold.expires_at != entry.at) continue;
    finish(state, record, HoldStatus::expired, record.hold.expires_at);
    state.seats_returned[record.section] = true;
    ++expired;
  }
  while (!state.forgets.empty() && state.forgets.top().at <= now) {
    const auto hold_id = state.forgets.top().hold_id;
    state.forgets.pop();
    auto it = state.holds.find(hold_id);
    if (it == state.holds.end()) continue;
    const auto status = it->second.hold.status;
    if (status != HoldStatus::expired && status != HoldStatus::released) continue;
    state.holds.erase(it);
    std::lock_guard lock(hold_index_mutex_);
    event_of_hold_.erase(hold_id);
  }
}

Result<Hold> MemorySeatLockStore::hold(const HoldRequest& request) {
  auto state_ptr = find_event(request.event_id);
  if (!state_ptr) return make_error(Errc::not_found, "no event " + request.event_id);
  auto& state = *state_ptr;
  std::lock_guard lock(state.mutex);
  reclaim(state, request.now);
  const auto& event = state.layout.event();

  HoldRecord record;
  std::vector<std::string> seat_ids;
  uint32_t quantity = 0;

  auto resolved = state.layout.resolve(request.selection);
  if (!resolved) return resolved.take_error();
  record.section = resolved->section;
  quantity = resolved->quantity;
  if (const auto* exact = std::get_if<ExactSeats>(&request.selection)) {
    for (const auto& seat : resolved->seats) record.seat_indices.push_back(seat.index);
    seat_ids = exact->seat_ids;
  }

  // The buyer cap comes before availability, so a buyer over it is told so whatever is left.
  const auto buyer_it = state.buyer_seats.find(request.buyer);
  const uint32_t buyer_has = buyer_it == state.buyer_seats.end() ? 0 : buyer_it->second;
  if (buyer_has + quantity > request.buyer_seats_max) {
    return make_error(Errc::limit_exceeded,
                      "a buyer may hold or book at most " +
                          std::to_string(request.buyer_seats_max) + " seats of this event; " +
                          std::to_string(buyer_has) + " already held or booked");
  }

  auto& section = state.sections[record.section];
  const auto& section_def = event.sections[record.section];
  // Seats that come back while buyers wait are theirs: the public sees them as taken.
  const bool kept_for_waitlist = section.waitlisted > 0 && !request.for_waitlist;
  const uint32_t takeable = kept_for_waitlist ? 0 : section.free();
  if (!seat_ids.empty()) {
    Error error = make_error(Errc::seats_unavailable, "some of these seats are not available");
    for (size_t i = 0; i < record.seat_indices.size(); ++i) {
      if (kept_for_waitlist || section.status[record.seat_indices[i]] != kFree) {
        error.unavailable.push_back(seat_ids[i]);
      }
    }
    if (!error.unavailable.empty()) return error;
  } else if (takeable < quantity) {
    return make_error(Errc::sold_out, kept_for_waitlist
                                          ? "buyers are waiting for section " + section_def.id +
                                                "; join the waitlist"
                                          : "section " + section_def.id + " has " +
                                                std::to_string(takeable) + " seats available");
  } else if (section.free_index) {
    auto picked = section.free_index->best_available(quantity);
    assert(picked);  // available() counted them
    record.seat_indices = std::move(*picked);
    for (auto index : record.seat_indices)
      seat_ids.push_back(state.layout.seat_id(record.section, index));
  }

  if (section.free_index) {
    for (auto index : record.seat_indices) section.status[index] = kHeld;
    section.free_index->set_taken(record.seat_indices);
  }
  section.held += quantity;
  state.buyer_seats[request.buyer] = buyer_has + quantity;

  auto& hold = record.hold;
  hold.id = request.hold_id;
  hold.event_id = request.event_id;
  hold.buyer = request.buyer;
  hold.section = section_def.id;
  hold.seats = std::move(seat_ids);
  hold.quantity = quantity;
  hold.amount = section_def.price * quantity;
  hold.currency = event.currency;
  hold.status = HoldStatus::active;
  hold.created_at = request.now;
  hold.expires_at = request.expires_at;
  hold.fence = next_fence_.fetch_add(1);

  state.expiries.push({hold.expires_at, hold.id});
  Hold result = hold;
  {
    std::lock_guard index_lock(hold_index_mutex_);
    if (!event_of_hold_.emplace(hold.id, request.event_id).second) {
      std::abort();  // hold ids are 128 random bits chosen by the caller: a repeat is a bug
    }
  }
  state.holds.emplace(hold.id, std::move(record));
  return result;
}

template <class Fn>
auto MemorySeatLockStore::with_hold(const std::string& hold_id, Timestamp now, Fn&& fn)
    -> decltype(fn(std::declval<EventState&>(), std::declval<HoldRecord&>())) {
  auto state_ptr = find_event_of_hold(hold_id);
  if (!state_ptr) return make_error(Errc::not_found, "no hold " + hold_id);
  std::lock_guard lock(state_ptr->mutex);
  reclaim(*state_ptr, now);
  auto it = state_ptr->holds.find(hold_id);
  if (it == state_ptr->holds.end()) return make_error(Errc::not_found, "no hold " + hold_id);
  return fn(*state_ptr, it->second);
}

Result<Hold> MemorySeatLockStore::get_hold(const std::string& hold_id, Timestamp now) {
  return with_hold(hold_id, now,
                   [](EventState&, HoldRecord& record) -> Result<Hold> { return record.hold; });
}

Result<Hold> MemorySeatLockStore::release(const std::string& hold_id, Timestamp now) {
  return with_hold(hold_id, now, [&](EventState& state, HoldRecord& record) -> Result<Hold> {
    switch (record.hold.status) {
      case HoldStatus::active:
        finish(state, record, HoldStatus::released, now);
        return record.hold;
      case HoldStatus::expired:
        return make_error(Errc::hold_expired, "the hold expired; its seats are already free");
      case HoldStatus::released:
        return make_error(Errc::invalid_state, "the hold was already released");
      case HoldStatus::checked_out:
        return make_error(Errc::invalid_state,
                          "the hold was checked out; cancel the booking instead");
    }
    return make_error(Errc::invalid_state);
  });
}

Result<Hold> MemorySeatLockStore::begin_checkout(const std::string& hold_id, Timestamp now) {
  return with_hold(hold_id, now, [](EventState&, HoldRecord& record) -> Result<Hold> {
    auto& hold = record.hold;
    switch (hold.status) {
      case HoldStatus::active: {
        Hold before = hold;
        hold.status = HoldStatus::checked_out;
        return before;
      }
      case HoldStatus::expired:
        return make_error(Errc::hold_expired, "the hold expired");
      case HoldStatus::released:
        return make_error(Errc::hold_expired, "the hold was released");
      case HoldStatus::checked_out:
        return make_error(Errc::invalid_state, "the hold is already checked out");
    }
    return make_error(Errc::invalid_state);
  });
}

void MemorySeatLockStore::abort_checkout(const std::string& hold_id, bool keep) {
  auto state_ptr = find_event_of_hold(hold_id);
  if (!state_ptr) return;
  auto& state = *state_ptr;
  std::lock_guard lock(state.mutex);
  auto it = state.holds.find(hold_id);
  if (it == state.holds.end() || it->second.hold.status != HoldStatus::checked_out) return;
  auto& record = it->second;
  if (keep) {
    record.hold.status = HoldStatus::active;
    state.expiries.push({record.hold.expires_at, hold_id});  // the next reclaim judges it again
  } else {
    finish(state, record, HoldStatus::released, record.hold.expires_at);
  }
}

void MemorySeatLockStore::set_waitlisted(const std::string& event_id, const std::string& section,
                                         uint32_t waiting) {
  auto state_ptr = find_event(event_id);
  if (!state_ptr) return;
  std::lock_guard lock(state_ptr->mutex);
  if (auto index = state_ptr->layout.section_index(section)) {
    state_ptr->sections[*index].waitlisted = waiting;
  }
}

Result<uint32_t> MemorySeatLockStore::free_seats(const std::string& event_id,
                                                 const std::string& section, Timestamp now) {
  auto state_ptr = find_event(event_id);
  if (!state_ptr) return make_error(Errc::not_found, "no event " + event_id);
  std::lock_guard lock(state_ptr->mutex);
  reclaim(*state_ptr, now);
  auto index = state_ptr->layout.section_index(section);
  if (!index) return make_error(Errc::not_found, "no section " + section);
  return state_ptr->sections[*index].free();
}

std::vector<SectionRef> MemorySeatLockStore::sweep_expired(Timestamp now, size_t limit) {
  std::vector<std::shared_ptr<EventState>> events;
  {
    std::shared_lock lock(events_mutex_);
    for (const auto& [id, state] : events_) events.push_back(state);
  }
  std::vector<SectionRef> returned;
  for (auto& state : events) {
    std::lock_guard lock(state->mutex);
    reclaim(*state, now, limit);
    for (size_t i = 0; i < state->seats_returned.size(); ++i) {
      if (!state->seats_returned[i]) continue;
      state->seats_returned[i] = false;
      const auto& event = state->layout.event();
      returned.push_back({event.id, event.sections[i].id});
    }
  }
  return returned;
}

Status MemorySeatLockStore::mark_sold(const std::string& hold_id, Timestamp now) {
  return with_hold(hold_id, now, [](EventState& state, HoldRecord& record) -> Status {
    if (record.hold.status != HoldStatus::checked_out) {
      return make_error(Errc::invalid_state, "only a checked-out hold can be sold");
    }
    if (record.sold) return Ok{};
    auto& section = state.sections[record.section];
    assert(section.held >= record.hold.quantity);
    section.held -= record.hold.quantity;
    section.sold += record.hold.quantity;
    for (auto index : record.seat_indices) section.status[index] = kSold;
    record.sold = true;
    return Ok{};
  });
}

Status MemorySeatLockStore::release_booked(const std::string& hold_id, Timestamp now) {
  return with_hold(hold_id, now, [&](EventState& state, HoldRecord& record) -> Status {
    if (record.hold.status == HoldStatus::released) return Ok{};
    if (record.hold.status != HoldStatus::checked_out) {
      return make_error(Errc::invalid_state, "only a checked-out hold's booking can be released");
    }
    finish(state, record, HoldStatus::released, now);
    return Ok{};
  });
}

void MemorySeatLockStore::restore(const std::string& event_id,
                                  const std::vector<RestoredClaim>& claims) {
  auto state_ptr = find_event(event_id);
  if (!state_ptr) return;
  auto& state = *state_ptr;
  std::lock_guard lock(state.mutex);
  const auto& event = state.layout.event();
  for (const auto& claim : claims) {
    if (state.holds.count(claim.hold_id)) continue;
    const auto section_index = state.layout.section_index(claim.section);
    if (!section_index) continue;  // the bookings store and the event disagree: nothing to take
    auto& section = state.sections[*section_index];
    HoldRecord record;
    record.section = *section_index;
    for (const auto& id : claim.seats) {
      if (auto address = state.layout.parse(id)) record.seat_indices.push_back(address->index);
    }
    const uint8_t mark = claim.sold ? kSold : kHeld;
    if (section.free_index) {
      for (auto index : record.seat_indices) section.status[index] = mark;
      section.free_index->set_taken(record.seat_indices);
    }
    (claim.sold ? section.sold : section.held) += claim.quantity;
    state.buyer_seats[claim.buyer] += claim.quantity;
    record.sold = claim.sold;  // kept, so a refund can release the seats later
    auto& hold = record.hold;
    hold.id = claim.hold_id;
    hold.event_id = event_id;
    hold.buyer = claim.buyer;
    hold.section = claim.section;
    hold.seats = claim.seats;
    hold.quantity = claim.quantity;
    hold.amount = event.sections[*section_index].price * claim.quantity;
    hold.currency = event.currency;
    hold.status = HoldStatus::checked_out;
    hold.created_at = claim.hold_created_at;
    hold.expires_at = claim.hold_expires_at;
    {
      std::lock_guard index_lock(hold_index_mutex_);
      event_of_hold_.emplace(hold.id, event_id);
    }
    state.holds.emplace(claim.hold_id, std::move(record));
  }
}

Result<std::vector<SectionAvailability>> MemorySeatLockStore::availability(
    const std::string& event_id, Timestamp now) {
  auto state_ptr = find_event(event_id);
  if (!state_ptr) return make_error(Errc::not_found, "no event " + event_id);
  auto& state = *state_ptr;
  std::lock_guard lock(state.mutex);
  reclaim(state, now);
  std::vector<SectionAvailability> result;
  const auto& event = state.layout.event();
  for (size_t i = 0; i < state.sections.size(); ++i) {
    const auto& s = state.sections[i];
    const uint32_t kept = s.waitlisted ? s.free() : 0;
    result.push_back({event.sections[i].id, event.sections[i].kind, s.capacity, s.available(),
                      s.held + kept, s.sold, s.waitlisted});
  }
  return result;
}

Result<std::vector<SeatState>> MemorySeatLockStore::seats(const std::string& event_id,
                                                          const std::string& section_id,
                                                          const std::optional<std::string>& row,
                                                          Timestamp now) {
  auto state_ptr = find_event(event_id);
  if (!state_ptr) return make_error(Errc::not_found, "no event " + event_id);
  auto& state = *state_ptr;
  std::lock_guard lock(state.mutex);
  reclaim(state, now);
  const auto section_index = state.layout.section_index(section_id);
  if (!section_index) return make_error(Errc::not_found, "no section " + section_id);
  const auto& section_def = state.layout.event().sections[*section_index];
  if (section_def.kind != SectionKind::reserved) {
    return make_error(Errc::invalid_request, "section " + section_id + " is general admission");
  }
  uint32_t begin = 0, end = section_def.capacity;
  if (row) {
    const auto it = std::find_if(section_def.rows.begin(), section_def.rows.end(),
                                 [&](const Row& r) { return r.name == *row; });
    if (it == section_def.rows.end()) return make_error(Errc::not_found, "no row " + *row);
    const auto r = static_cast<uint32_t>(it - section_def.rows.begin());
    begin = state.layout.row_offset(*section_index, r);
    end = begin + it->seats;
  }
  const auto& status = state.sections[*section_index].status;
  const bool kept = state.sections[*section_index].waitlisted > 0;
  std::vector<SeatState> result;
  result.reserve(end - begin);
  for (uint32_t i = begin; i < end; ++i) {
    const auto s = status[i] == kFree   ? (kept ? SeatStatus::held : SeatStatus::available)
                   : status[i] == kHeld ? SeatStatus::held
                                        : SeatStatus::sold;
    result.push_back({state.layout.seat_id(*section_index, i), s});
  }
  return result;
}

}  // namespace boxoffice

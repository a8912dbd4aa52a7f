#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/result.h"
#include "domain/waitlist.h"

namespace boxoffice {

struct WaitlistCounts {
  uint32_t waiting = 0;
  uint32_t offered = 0;
  uint32_t converted = 0;
  uint32_t expired = 0;
  uint32_t left = 0;
};

/// A section with entries still in line or holding an offer.
struct WaitlistSection {
  std::string event_id;
  std::string section;
};

/// Waitlist Store: durable FIFO entries, partitioned by event and section. Order is the order of
/// join(); positions are exact. Thread-safe; engine failures are thrown as StorageError.
class WaitlistStore {
 public:
  virtual ~WaitlistStore() = default;

  /// Appends a waiting entry (id, event, section, buyer, quantity, created_at given; sequence
  /// assigned). Errors: conflict when the buyer already has a live entry in this section.
  virtual Result<WaitlistEntry> join(const WaitlistEntry& entry) = 0;

  /// The entry with its position filled when waiting. nullopt if unknown.
  virtual std::optional<WaitlistEntry> get(const std::string& entry_id) = 0;
  /// The entry whose offer is this hold, if any.
  virtual std::optional<WaitlistEntry> find_by_offer(const std::string& hold_id) = 0;

  /// The first waiting entry of the section, in join order, whose quantity is at most
  /// `seats_max`: an entry is never passed over for a later one unless it wants more seats than
  /// there are. nullopt when none fits.
  virtual std::optional<WaitlistEntry> first_fitting(const std::string& event_id,
                                                     const std::string& section,
                                                     uint32_t seats_max) = 0;

  /// Moves the entry from `from` to `to` if it is still in `from`, recording the offer when `to`
  /// is offered; updated_at = now. Errors: not_found, invalid_state (not in `from`).
  virtual Result<WaitlistEntry> transition(const std::string& entry_id, WaitlistStatus from,
                                           WaitlistStatus to, Timestamp now,
                                           const std::optional<WaitlistOffer>& offer = {}) = 0;

  /// Offered entries whose offer expires at or before `now`, oldest first, at most `limit`.
  virtual std::vector<WaitlistEntry> lapsed_offers(Timestamp now, size_t limit) = 0;
  /// Sections with at least one waiting or offered entry.
  virtual std::vector<WaitlistSection> active_sections() = 0;
  /// Waiting entries of one section.
  virtual uint32_t waiting_count(const std::string& event_id, const std::string& section) = 0;
  /// Entries of an event by status (all sections).
  virtual WaitlistCounts counts(const std::string& event_id) = 0;
};

}  // namespace boxoffice

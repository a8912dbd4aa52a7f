#pragma once
// The embedded Waitlist Store: a table in the bookings file (created by the same migrations as
// SqliteBookingStore and SqlitePaymentQueue), so a laptop needs no Redis and a place in line is as
// durable as a booking.
//
// The database, not a prior read, keeps the line in order and honest: join order is an
// AUTOINCREMENT sequence assigned under SQLite's write lock, a partial unique index allows one
// live entry per buyer and section, and every transition is an UPDATE guarded by the status it
// leaves. Positions are counted, never stored, so they cannot drift from the line. All times
// come from the caller.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "adapters/sqlite/sqlite_connection.h"
#include "ports/waitlist_store.h"

namespace boxoffice {

class SqliteWaitlistStore final : public WaitlistStore {
 public:
  static constexpr Millis busy_timeout_default{5'000};

  // Opens (creating if needed) the bookings file at `path`, whose directory must exist, and
  // brings its schema up to date. Every call waits at most `busy_timeout` for a connection and
  // for SQLite's locks, then throws StorageError.
  // Bugs of the caller throw std::invalid_argument: joining without an id or without seats, a
  // transition the waitlist's state machine (domain/waitlist.h) does not have, or an offer
  // without a hold.
  SqliteWaitlistStore(const std::string& path, size_t connections,
                      Millis busy_timeout = busy_timeout_default);
  ~SqliteWaitlistStore() override;

  Result<WaitlistEntry> join(const WaitlistEntry& entry) override;
  std::optional<WaitlistEntry> get(const std::string& entry_id) override;
  std::optional<WaitlistEntry> find_by_offer(const std::string& hold_id) override;
  std::optional<WaitlistEntry> first_fitting(const std::string& event_id,
                                             const std::string& section,
                                             uint32_t seats_max) override;
  Result<WaitlistEntry> transition(const std::string& entry_id, WaitlistStatus from,
                                   WaitlistStatus to, Timestamp now,
                                   const std::optional<WaitlistOffer>& offer = {}) override;
  std::vector<WaitlistEntry> lapsed_offers(Timestamp now, size_t limit) override;
  std::vector<WaitlistSection> active_sections() override;
  uint32_t waiting_count(const std::string& event_id, const std::string& section) override;
  WaitlistCounts counts(const std::string& event_id) override;

 private:
  SqlitePool pool_;
};

}  // namespace boxoffice

#pragma once
// The production Waitlist Store: the lines live in Redis (one server with AOF, or a Cluster), so
// any number of waitlist roles share them and a sold-out stadium's lines spread over the nodes.
//
// Everything about one section sits under one hash tag, {w:<event>:<section>}, and every change to
// a section is one Lua script: join order is an INCR inside the script that files the entry, the
// rule of one live entry per buyer is a hash read in that same script, and every transition is
// guarded by the status it leaves. Positions are ZRANKs of the line, never stored. Questions that
// do not name a section (an entry by id, an entry by its offer's hold, the active sections, an
// event's counts) go through small index keys on other nodes; those are written before the
// section script runs, so a crash between the two leaves an index that points at nothing (and is
// read as nothing), never an entry that no index can find. See the .cpp for the key layout.
//
// Durability is Redis's: with `appendonly yes` and `appendfsync always` every reply the store
// acted on is on disk before the client sees it. All times come from the caller, except the
// bookkeeping stamp of the active-section index (see `active_section_grace`).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/redis/redis_client.h"
#include "ports/waitlist_store.h"

namespace boxoffice {

struct RedisWaitlistStoreOptions {
  // A section whose line has emptied leaves the active-section index only once nobody has
  // started joining it for this long: a join stamps the index before its section script runs, so
  // this must exceed the longest a join can stall between those two round trips (each bounded by
  // the client's command timeout). Until then an empty section is merely skipped when read.
  std::chrono::milliseconds active_section_grace{std::chrono::minutes{10}};
};

class RedisWaitlistStore final : public WaitlistStore {
 public:
  // The largest quantity an entry may want: the byqty index packs quantity and sequence into one
  // exact double (quantity * 2^32 + sequence < 2^53). Far above any per-order cap.
  static constexpr uint32_t quantity_max = 1u << 20;
  // Sections read per ZSCAN of the active-section index, and stale ones removed per call.
  static constexpr size_t active_scan_batch = 500;
  static constexpr size_t active_prune_max = 100;

  // `client` is shared with whoever else talks to the same Redis (the seat lock store). Engine
  // failures (no connection, a timeout, an error reply) throw StorageError. Bugs of the caller
  // throw std::invalid_argument: joining without an id, without seats or for more than
  // quantity_max, a transition the state machine (domain/waitlist.h) does not have, or an offer
  // without a hold.
  explicit RedisWaitlistStore(std::shared_ptr<redis::Client> client,
                              RedisWaitlistStoreOptions options = {});
  ~RedisWaitlistStore() override;

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
  struct LiveSection;
  // The sections of the active index that have someone waiting or offered, with those counts;
  // removes (at most active_prune_max) sections that have been empty for longer than the grace.
  std::vector<LiveSection> live_sections();

  std::shared_ptr<redis::Client> client_;
  RedisWaitlistStoreOptions options_;
};

}  // namespace boxoffice

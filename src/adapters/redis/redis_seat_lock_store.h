#pragma once
// The production Seat Lock Store: seats, holds and counts in Redis (one server or a Cluster),
// every operation one Lua script on one section, so a stadium's sections spread over the
// cluster's nodes. Same contract, and the same suite, as MemorySeatLockStore.
//
// Key layout (prefix "bo:sl:" by default):
//   {e:<event>:<section>}:m|s|t|r|x|h|f   one section: meta hash (counts kept, never recounted;
//       ready flag, fence counter), seat states as a byte string (GETRANGE/SETRANGE per seat), a
//       segment tree of each row's longest free run (best available walks O(log rows) nodes and
//       reads one row), row offsets, a ZSET of active holds by expires_at, the hold records, and
//       a ZSET of finished holds by the time they are forgotten. Nothing grows with the event:
//       a hold reads and writes its own seats and rows, whatever the section's size.
//   {b:<event>:<bucket>}:c, {b:<event>:<bucket>}:c:ready   the buyer cap, which spans the sections
//       of an event: a hash with a field per buyer listing the buyer's claims (hold id, quantity,
//       state: active until expires_at, or booked). Buyers are spread over `buyer_buckets` tags
//       per event, each with a ready marker, so losing one is detected like losing a section.
//   idx:{<n>}, idx:{<n>}:f   where a hold lives (event, section, quantity, buyer), in one of
//       `index_buckets` hashes by the hold id, and when that entry may be forgotten (a ZSET by the
//       store's clock): get_hold and the other hold-id calls carry no event. Written before the
//       section script (a refused hold removes it again), forgettable long after the hold can
//       matter; kept while checked out, since a booked hold stays until its payment outcome.
//       sweep_expired() forgets what is due, a few buckets per call.
//   Neither a buyer nor a hold has a key of its own: the keyspace does not grow with the sale.
//   Upgrading from the layout with a key per buyer and per hold: the claims buckets read as lost
//   (their marker is new), so restore() rebuilds the booked claims (the buyer's active holds of
//   before no longer count against the cap until they expire, as for any lost bucket); a hold's
//   old index key (hold:{<id>}) is read when its bucket has no entry, and moved there. The old
//   claims keys stay behind. Every instance must run the same layout (stop them all to upgrade),
//   and changing buyer_buckets or index_buckets with data in Redis loses claims and entries.
//   (With a key per buyer and a TTL'd key per hold, Redis 7.0 rehashed its keyspace and expiry
//   dictionaries mid-sale; every key lookup of every script then also moved buckets, and at 80%
//   of the maximum hold rate the p99 rose from ~8 ms to 50-90 ms in the seconds it lasted.)
//
// A hold is two scripts on two slots: reserve the quantity against the buyer cap (dropping the
// buyer's claims whose expires_at passed at `now`), then take the seats in the section; a
// refusal gives the reservation back. On one server (no Cluster) the same two scripts, with the
// hold index, run as one (hold_with_claim_script): one round trip, and no crash between them.
// begin_checkout marks the claim booked before the section changes, release and release_booked
// drop it after. A crash between the two steps leaves a
// claim that lapses at its expires_at (or, for a booked claim, stays until a redelivered
// release_booked): the cap is then counted high, never low, so a buyer never exceeds it.
//
// Expiry is judged by the `now` given, never by Redis's clock or TTLs: each section script first
// expires every hold of its section due at `now` (the expiry ZSET), so no correctness depends on
// the sweeper. The hold index's forget-by times only forget entries long after they stopped
// mattering.
//
// Lost state: a section or buyer bucket takes holds only once restore() marked it ready (in the
// same script that replays its claims). Redis restarted empty or a failover to a replica that
// never saw the restore leaves it unmarked: every script answers "lost" and the call throws
// LockStateLost(event_id), so nothing is re-opened with every seat free. restore() rebuilds only
// what is not ready and leaves the rest as it is. Limits of detection: a replica that saw the
// restore but missed later holds is not detected (the bookings store's fences and unique seats
// arbitrate); a lost buyer bucket comes back with the booked claims only, so until their
// expiry the buyer's active holds no longer count against the cap; a lost hold index makes that
// hold read as not_found.
//
// Fences: a per-section counter, raised to the floor given by raise_fence_floor (kept in this
// object, passed to each hold). Fences therefore increase strictly per section, which is what
// the bookings store compares (per seat); a store-wide counter would be one hot key for every
// hold of every section.
//
// Thread-safe. Engine failures throw StorageError (from the client, or an error reply).

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/redis/redis_client.h"
#include "ports/seat_lock_store.h"

namespace boxoffice {

namespace redis_seat_locks {
struct Call;  // one call of a pipeline (redis_seat_lock_store.cpp)
}

struct RedisSeatLockStoreOptions {
  /// Finished holds (expired, released) stay readable this long, judged by the `now` given.
  Millis finished_hold_retention = std::chrono::hours{1};
  /// Prepended to every key; no braces (they would change the hash tags).
  std::string key_prefix = "bo:sl:";
  /// Hash tags the buyer claims of one event are spread over.
  uint32_t buyer_buckets = 16;
  /// Hash tags the hold index is spread over (one hash and one forget-by ZSET each).
  uint32_t index_buckets = 256;
  /// Claims replayed per script by restore(), so a huge event never blocks Redis for long.
  size_t restore_claims_per_script = 256;
  /// Where recent holds live (their index entries never change), remembered in this process so
  /// get_hold, checkout and the payment outcomes of a hold made or seen here skip the index read.
  /// About 150 bytes each; the oldest are forgotten first. 0: always read the index.
  size_t located_holds_max = 100'000;
};

class RedisSeatLockStore final : public SeatLockStore {
 public:
  /// `client` must outlive the store.
  explicit RedisSeatLockStore(redis::Client& client, RedisSeatLockStoreOptions options = {});
  ~RedisSeatLockStore() override;

  void add_event(const Event& event) override;
  void restore(const std::string& event_id, const std::vector<RestoredClaim>& claims) override;
  void raise_fence_floor(uint64_t fence) override;
  /// Waits for async_hold: one implementation of a hold.
  Result<Hold> hold(const HoldRequest& request) override;
  /// The two steps below, each sent from the thread that got the previous reply; `done` runs on
  /// the Redis client's I/O thread. The store must outlive the calls in flight.
  void async_hold(const HoldRequest& request, HoldDone done) override;
  Result<Hold> get_hold(const std::string& hold_id, Timestamp now) override;
  Result<Hold> release(const std::string& hold_id, Timestamp now) override;
  Result<Hold> begin_checkout(const std::string& hold_id, Timestamp now) override;
  void abort_checkout(const std::string& hold_id, bool keep) override;
  Status mark_sold(const std::string& hold_id, Timestamp now) override;
  Status release_booked(const std::string& hold_id, Timestamp now) override;
  void set_waitlisted(const std::string& event_id, const std::string& section,
                      uint32_t waiting) override;
  Result<uint32_t> free_seats(const std::string& event_id, const std::string& section,
                              Timestamp now) override;
  std::vector<SectionRef> sweep_expired(Timestamp now, size_t limit) override;
  Result<std::vector<SectionAvailability>> availability(const std::string& event_id,
                                                        Timestamp now) override;
  Result<std::vector<SeatState>> seats(const std::string& event_id, const std::string& section_id,
                                       const std::optional<std::string>& row,
                                       Timestamp now) override;

  /// The keys of one section (meta first), for tests that look under the store.
  std::vector<std::string> section_keys(const std::string& event_id,
                                        const std::string& section) const;
  /// The hash holding a hold's index entry (field: the hold id; its forget-by ZSET is this key
  /// with ":f"), and the hash holding a buyer's claims of an event (field: the buyer).
  std::string index_key(const std::string& hold_id) const;
  std::string claims_key(const std::string& event_id, const std::string& buyer) const;

 private:
  struct EventInfo;
  /// Where a hold lives: what its index entry says.
  struct Located {
    std::shared_ptr<const EventInfo> event;
    uint32_t section = 0;
    uint32_t quantity = 0;
    std::string buyer;
  };
  struct Scripts;
  struct PendingHold;

  std::shared_ptr<const EventInfo> find_event(const std::string& event_id) const;
  /// Where a hold lives; nullopt when the index forgot it or the event is unknown here.
  std::optional<Located> locate(const std::string& hold_id);
  /// Runs a section script; throws LockStateLost on a "lost" reply, StorageError on an error.
  redis::Reply run_section(const redis::Script& script, const EventInfo& event, uint32_t section,
                           Timestamp now, std::vector<std::string> args);
  /// One section script per section, pipelined (NOSCRIPT answered with EVAL).
  std::vector<redis::Reply> run_sections(const redis::Script& script, const EventInfo& event,
                                         const std::vector<uint32_t>& sections, Timestamp now,
                                         const std::vector<std::string>& args);
  static Error limit_error(const PendingHold& pending, const redis::Reply& reply);
  /// A hold's second step in a Cluster: the section script.
  void take_seats(const std::shared_ptr<PendingHold>& pending);
  /// The section script's answer: the hold, or a refusal; throws LockStateLost, StorageError.
  Result<Hold> judge_hold(const PendingHold& pending, const redis::Reply& reply);
  /// Runs `cleanup`, then ends the hold with `error` or `answer` (or the clean-up's failure).
  void finish_hold(const std::shared_ptr<PendingHold>& pending,
                   std::vector<redis_seat_locks::Call> cleanup, std::exception_ptr error,
                   Result<Hold> answer);
  Hold to_hold(const Located& where, const std::string& record) const;
  /// A finished hold: its buyer claim goes, its index is forgotten after the retention.
  void drop_claim(const std::string& event_id, const std::string& buyer,
                  const std::string& hold_id);
  uint32_t bucket_of(const std::string& buyer) const;
  std::string bucket_tag(const std::string& event_id, uint32_t bucket) const;
  /// Set once restore() rebuilt the bucket's claims: without it the bucket is lost.
  std::string claims_marker(const std::string& event_id, uint32_t bucket) const;
  /// Sets the buyer's claim of a hold ("a|quantity|expires_at", "b|quantity|0"; empty: drops it).
  redis_seat_locks::Call claim_call(const std::string& event_id, const std::string& buyer,
                                    const std::string& hold_id, std::string claim) const;
  std::string index_bucket_key(uint32_t bucket) const;
  /// The hold's index entry may be forgotten `after_ms` from now (by the store's clock).
  redis_seat_locks::Call forget_index_after(const std::string& hold_id, int64_t after_ms) const;
  /// The hold's index entry stays until forget_index_after says otherwise.
  redis_seat_locks::Call keep_index(const std::string& hold_id) const;
  std::vector<redis_seat_locks::Call> drop_index(const std::string& hold_id) const;
  void restore_section(const EventInfo& event, uint32_t section,
                       const std::vector<const RestoredClaim*>& claims);
  void restore_claims(const EventInfo& event, const std::vector<RestoredClaim>& claims,
                      const std::vector<bool>& bucket_ready);

  redis::Client& client_;
  const RedisSeatLockStoreOptions options_;
  std::unique_ptr<const Scripts> scripts_;
  std::atomic<uint64_t> fence_floor_{0};

  mutable std::shared_mutex events_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const EventInfo>> events_;

  /// located_holds_max recent index entries, oldest first in located_order_.
  void remember(const std::string& hold_id, const Located& where);
  std::mutex located_mutex_;
  std::unordered_map<std::string, Located> located_;
  std::deque<std::string> located_order_;

  /// The next index bucket sweep_expired() cleans.
  std::atomic<uint32_t> next_index_bucket_{0};
};

}  // namespace boxoffice

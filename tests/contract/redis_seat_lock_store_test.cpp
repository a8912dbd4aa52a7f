// What only the Redis Seat Lock Store can show: an engine that restarts (empty, or with its
// data), restore in chunks, and a key layout that spreads an event's sections over the nodes of
// a cluster, where one node can lose its data alone.
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "adapters/redis/redis_seat_lock_store.h"
#include "contract/seat_lock_store_contract.h"
#include "domain/ids.h"
#include "support/redis_server.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;

const Timestamp t0 = *parse_rfc3339("2026-12-04T20:00:00Z");

Event stadium(int sections) {
  Event e;
  e.id = new_id("evt");
  e.name = "Stadium";
  e.currency = "EUR";
  e.starts_at = t0 + 24h;
  e.sale_opens_at = t0;
  e.max_seats_per_buyer = 8;
  for (int i = 0; i < sections; ++i) {
    const auto id = "s" + std::to_string(i);
    e.sections.push_back(i % 2 ? Section{id, id, SectionKind::general, 10, 5000, {}}
                               : Section{id, id, SectionKind::reserved, 0, 9000, {{"A", 5}}});
  }
  EXPECT_FALSE(validate_and_normalize(e).has_value());
  return e;
}

HoldRequest request(const Event& e, const std::string& buyer, HoldSelection what) {
  HoldRequest r;
  r.hold_id = new_id("hld");
  r.event_id = e.id;
  r.buyer = buyer;
  r.selection = std::move(what);
  r.now = t0;
  r.expires_at = t0 + 5min;
  r.buyer_seats_max = e.max_seats_per_buyer;
  return r;
}

HoldSelection one_seat(const std::string& section, int number = 1) {
  return ExactSeats{{section + ":A:" + std::to_string(number)}};
}
HoldSelection quantity(const std::string& section, uint32_t n) {
  return SectionQuantity{section, n};
}

redis::ClientOptions client_options(std::string url) {
  redis::ClientOptions options;
  options.url = std::move(url);
  return options;
}

/// After a restart the client reconnects in the background; wait for it (bounded).
void wait_until_reachable(redis::Client& client) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    try {
      if (client.ping()) return;
    } catch (const StorageError&) {
    }
    std::this_thread::sleep_for(50ms);
  }
  FAIL() << "the client did not reconnect";
}

SectionAvailability counts(SeatLockStore& store, const Event& e, const std::string& section,
                           Timestamp now = t0) {
  auto all = store.availability(e.id, now);
  EXPECT_TRUE(all.ok());
  for (const auto& s : *all) {
    if (s.id == section) return s;
  }
  ADD_FAILURE() << "no section " << section;
  return {};
}

/// A store that reads the hold index on every lookup (nothing remembered), and two holds of an
/// event: `active`, and `booked` (checked out).
struct TwoIndexedHolds {
  explicit TwoIndexedHolds(uint32_t index_buckets = 256)
      : store(client, options(index_buckets)), e(stadium(2)) {
    open_event(store, e);
    active = store.hold(request(e, "alice", one_seat("s0", 1)));
    booked = store.hold(request(e, "bob", one_seat("s0", 2)));
    if (!active.ok() || !booked.ok() || !store.begin_checkout(booked->id, t0).ok()) {
      throw std::runtime_error("the two holds could not be made");
    }
  }
  static RedisSeatLockStoreOptions options(uint32_t index_buckets) {
    RedisSeatLockStoreOptions o;
    o.located_holds_max = 0;
    o.index_buckets = index_buckets;
    return o;
  }
  RedisServer server;
  redis::Client client{client_options(server.url())};
  RedisSeatLockStore store;
  Event e;
  Result<Hold> active = make_error(Errc::not_found, ""), booked = make_error(Errc::not_found, "");
};

/// When the hold's index entry may be forgotten (nil: kept).
redis::Reply forget_by(const RedisServer& server, const RedisSeatLockStore& store,
                       const std::string& hold_id) {
  return server.command({"ZSCORE", store.index_key(hold_id) + ":f", hold_id});
}

TEST(RedisSeatLockStore, AnEventTakesHoldsOnlyOnceRestored) {
  RedisServer server;
  redis::Client client(client_options(server.url()));
  RedisSeatLockStore store(client);
  const auto e = stadium(2);
  store.add_event(e);
  EXPECT_THROW((void)store.hold(request(e, "alice", one_seat("s0"))), LockStateLost);
  EXPECT_THROW((void)store.availability(e.id, t0), LockStateLost);
  EXPECT_TRUE(store.sweep_expired(t0, 100).empty());  // the sweeper leaves a lost event alone
  store.restore(e.id, {});
  EXPECT_TRUE(store.hold(request(e, "alice", one_seat("s0"))).ok());
}

TEST(RedisSeatLockStore, ServerRestartedEmptyIsRebuiltAndSoldSeatsStaySold) {
  RedisServer server;
  redis::Client client(client_options(server.url()));
  RedisSeatLockStore store(client);
  const auto e = stadium(2);
  open_event(store, e);
  auto sold = store.hold(request(e, "alice", one_seat("s0", 2)));
  ASSERT_TRUE(sold.ok());
  ASSERT_TRUE(store.begin_checkout(sold->id, t0).ok());
  ASSERT_TRUE(store.mark_sold(sold->id, t0).ok());

  server.restart(RedisServer::Data::empty);  // data and cached scripts gone
  wait_until_reachable(client);
  EXPECT_THROW((void)store.hold(request(e, "bob", one_seat("s0", 2))), LockStateLost);
  EXPECT_THROW((void)store.free_seats(e.id, "s1", t0), LockStateLost);

  store.add_event(e);
  store.restore(e.id, {{sold->id, "alice", "s0", {"s0:A:2"}, 1, true, t0, sold->expires_at}});
  auto again = store.hold(request(e, "bob", one_seat("s0", 2)));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::seats_unavailable);
  auto row = store.seats(e.id, "s0", std::string{"A"}, t0);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ((*row)[1].status, SeatStatus::sold);
  EXPECT_EQ((*row)[0].status, SeatStatus::available);
  EXPECT_EQ(counts(store, e, "s0").sold, 1u);
  EXPECT_EQ(store.get_hold(sold->id, t0)->status, HoldStatus::checked_out);
  // Best available skips the sold seat: the layout (row tree) was rebuilt with the claims.
  auto best = store.hold(request(e, "bob", quantity("s0", 3)));
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->seats, (std::vector<std::string>{"s0:A:3", "s0:A:4", "s0:A:5"}));
}

TEST(RedisSeatLockStore, ServerRestartedWithItsDataKeepsTheEvent) {
  RedisServerOptions durable;
  durable.append_only = true;
  RedisServer server(durable);
  redis::Client client(client_options(server.url()));
  RedisSeatLockStore store(client);
  const auto e = stadium(2);
  open_event(store, e);
  auto hold = store.hold(request(e, "alice", one_seat("s0")));
  ASSERT_TRUE(hold.ok());
  server.restart(RedisServer::Data::keep);
  wait_until_reachable(client);
  EXPECT_EQ(store.get_hold(hold->id, t0 + 1s)->status, HoldStatus::active);
  auto taken = store.hold(request(e, "bob", one_seat("s0")));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, Errc::seats_unavailable);
  // Expiry is still judged by the time given, after the restart as before it.
  auto later = request(e, "bob", one_seat("s0"));
  later.now = hold->expires_at;
  later.expires_at = later.now + 5min;
  EXPECT_TRUE(store.hold(later).ok());
}

TEST(RedisSeatLockStore, RestoreInChunksReplaysEveryClaimOnce) {
  RedisServer server;
  redis::Client client(client_options(server.url()));
  RedisSeatLockStoreOptions options;
  options.buyer_buckets = 2;
  options.restore_claims_per_script = 2;
  RedisSeatLockStore store(client, options);
  const auto e = stadium(2);
  store.add_event(e);
  std::vector<RestoredClaim> claims;
  for (int seat = 1; seat <= 5; ++seat) {
    claims.push_back({"hld_r" + std::to_string(seat),
                      "buyer" + std::to_string(seat % 2),
                      "s0",
                      {"s0:A:" + std::to_string(seat)},
                      1,
                      seat % 2 == 0,
                      t0,
                      t0 + 5min});
  }
  claims.push_back({"hld_ga", "buyer1", "s1", {}, 4, false, t0, t0 + 5min});
  store.restore(e.id, claims);
  EXPECT_EQ(counts(store, e, "s0").sold, 2u);
  EXPECT_EQ(counts(store, e, "s0").held, 3u);
  EXPECT_EQ(counts(store, e, "s1").held, 4u);
  // buyer1 has seats 1, 3, 5 and 4 in s1: 7 of 8.
  auto over = store.hold(request(e, "buyer1", quantity("s1", 2)));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::limit_exceeded);
  // An open event is left as it is.
  store.restore(e.id, {{"hld_more", "carol", "s1", {}, 5, true, t0, t0}});
  EXPECT_EQ(counts(store, e, "s1").sold, 0u);
}

TEST(RedisSeatLockStore, ARefusedHoldLeavesNothingBehind) {
  RedisServer server;
  redis::Client client(client_options(server.url()));
  RedisSeatLockStore store(client);
  const auto e = stadium(2);
  open_event(store, e);
  auto first = store.hold(request(e, "alice", quantity("s1", 8)));
  ASSERT_TRUE(first.ok());
  auto sold_out = request(e, "bob", quantity("s1", 3));
  ASSERT_EQ(store.hold(sold_out).error().code, Errc::sold_out);
  auto over_cap = request(e, "alice", quantity("s0", 1));
  ASSERT_EQ(store.hold(over_cap).error().code, Errc::limit_exceeded);
  auto taken = request(e, "carol", one_seat("s0"));
  ASSERT_TRUE(store.hold(taken).ok());
  auto taken_again = request(e, "dave", one_seat("s0"));
  ASSERT_EQ(store.hold(taken_again).error().code, Errc::seats_unavailable);
  for (const auto* refused : {&sold_out, &over_cap, &taken_again}) {
    EXPECT_EQ(store.get_hold(refused->hold_id, t0).error().code, Errc::not_found);
  }
  // No index for the refused holds, no claims left for the refused buyers (alice keeps hers).
  const auto indexed = [&](const std::string& id) {
    const auto key = store.index_key(id);
    // 1: the entry, 10: its forget-by time.
    return server.command({"HEXISTS", key, id}).integer +
           (server.command({"ZSCORE", key + ":f", id}).is_nil() ? 0 : 10);
  };
  for (const auto* refused : {&sold_out, &over_cap, &taken_again}) {
    EXPECT_EQ(indexed(refused->hold_id), 0) << "neither entry nor forget-by time";
  }
  EXPECT_EQ(indexed(taken.hold_id), 11) << "an entry and its forget-by time";
  for (const char* buyer : {"bob", "dave"}) {
    EXPECT_EQ(server.command({"HEXISTS", store.claims_key(e.id, buyer), buyer}).integer, 0)
        << buyer;
  }
  EXPECT_EQ(server.command({"HEXISTS", store.claims_key(e.id, "alice"), "alice"}).integer, 1);
  // A field per buyer and an entry per hold, in hashes: no key of their own.
  EXPECT_TRUE(server.command({"KEYS", "*hld_*"}).elements.empty());
  EXPECT_TRUE(server.command({"KEYS", "*alice*"}).elements.empty());
  // The released cap is usable at once.
  ASSERT_TRUE(store.release(first->id, t0).ok());
  EXPECT_TRUE(store.hold(request(e, "alice", quantity("s1", 8))).ok());
}

TEST(RedisSeatLockStore, WhereAHoldLivesIsRememberedOnlyWithinItsBound) {
  RedisServer server;
  redis::Client client(client_options(server.url()));
  RedisSeatLockStoreOptions remembering;
  remembering.located_holds_max = 2;
  RedisSeatLockStore store(client, remembering);
  RedisSeatLockStoreOptions forgetting;
  forgetting.located_holds_max = 0;
  RedisSeatLockStore other(client, forgetting);  // another process on the same Redis
  const auto e = stadium(2);
  open_event(store, e);
  open_event(other, e);
  std::vector<std::string> ids;
  for (int i = 1; i <= 3; ++i) {
    auto held = store.hold(request(e, "buyer" + std::to_string(i), one_seat("s0", i)));
    ASSERT_TRUE(held.ok());
    ids.push_back(held->id);
  }
  // With the index gone, only the holds remembered here (the 2 latest) are still found: the
  // index entry is read only for holds this store did not make or see.
  for (const auto& id : ids) server.command({"HDEL", store.index_key(id), id});
  EXPECT_EQ(store.get_hold(ids[0], t0).error().code, Errc::not_found);
  for (size_t i = 1; i < ids.size(); ++i) {
    auto found = store.get_hold(ids[i], t0);
    ASSERT_TRUE(found.ok()) << ids[i];
    EXPECT_EQ(found->buyer, "buyer" + std::to_string(i + 1));
    EXPECT_EQ(other.get_hold(ids[i], t0).error().code, Errc::not_found);
  }
  // A remembered hold goes through checkout and its payment like any other.
  ASSERT_TRUE(store.begin_checkout(ids[2], t0).ok());
  ASSERT_TRUE(store.mark_sold(ids[2], t0).ok());
  EXPECT_EQ(counts(store, e, "s0").sold, 1u);
}

// The hold index is a field per hold in a few hashes (no key, no TTL per hold): the sweep forgets
// entries past their forget-by time, a few buckets per call, and keeps a checked-out hold's.
TEST(RedisSeatLockStore, TheSweepForgetsIndexEntriesPastTheirTimeAndKeepsCheckedOutOnes) {
  TwoIndexedHolds fixture(16);
  auto& [server, client, store, e, released, booked] = fixture;
  ASSERT_TRUE(store.release(released->id, t0).ok());
  ASSERT_FALSE(forget_by(server, store, released->id).is_nil());
  EXPECT_TRUE(forget_by(server, store, booked->id).is_nil())
      << "a checked-out hold's entry is kept";
  // Time passes for the released hold's entry: one turn of the sweep over every bucket.
  server.command({"ZADD", store.index_key(released->id) + ":f", "1", released->id});
  for (int i = 0; i < 2; ++i) (void)store.sweep_expired(t0, 100);  // 8 buckets per call
  EXPECT_EQ(server.command({"HEXISTS", store.index_key(released->id), released->id}).integer, 0);
  EXPECT_TRUE(forget_by(server, store, released->id).is_nil());
  EXPECT_EQ(store.get_hold(released->id, t0).error().code, Errc::not_found);
  auto still = store.get_hold(booked->id, t0);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->status, HoldStatus::checked_out);
}

// Finished holds stay readable for the retention, judged by the `now` given, then are forgotten
// by the next operation on their section (which looks only once the earliest is due).
TEST(RedisSeatLockStore, FinishedHoldsAreForgottenAfterTheRetention) {
  RedisServer server;
  redis::Client client(client_options(server.url()));
  RedisSeatLockStoreOptions options;
  options.finished_hold_retention = std::chrono::seconds{10};
  RedisSeatLockStore store(client, options);
  const auto e = stadium(2);
  open_event(store, e);
  auto released = store.hold(request(e, "alice", one_seat("s0", 1)));
  auto lapsing = store.hold(request(e, "bob", one_seat("s0", 2)));
  ASSERT_TRUE(released.ok());
  ASSERT_TRUE(lapsing.ok());
  ASSERT_TRUE(store.release(released->id, t0 + 1s).ok());
  // The released one is forgotten 10 s after its release, the lapsed one 10 s after it expired.
  EXPECT_EQ(store.get_hold(released->id, t0 + 10s)->status, HoldStatus::released);
  EXPECT_EQ(store.get_hold(released->id, t0 + 11s).error().code, Errc::not_found);
  const auto expired_at = lapsing->expires_at;
  EXPECT_EQ(store.get_hold(lapsing->id, expired_at)->status, HoldStatus::expired);
  EXPECT_EQ(store.get_hold(lapsing->id, expired_at + 9s)->status, HoldStatus::expired);
  EXPECT_EQ(store.get_hold(lapsing->id, expired_at + 10s).error().code, Errc::not_found);
  EXPECT_EQ(counts(store, e, "s0", expired_at + 10s).held, 0u);
}

// Holds made before the index had buckets (a key hold:{<id>} with a TTL, none once checked out)
// are found, and move into their bucket keeping the time left; a checkout retried after a crash
// that came before the entry was kept keeps it then.
TEST(RedisSeatLockStore, HoldsOfTheKeyPerHoldIndexMoveIntoTheirBucketWhenLookedUp) {
  TwoIndexedHolds fixture;
  auto& [server, client, store, e, active, booked] = fixture;
  // Back to the old layout: the entries as keys of their own.
  const auto to_legacy = [&](const std::string& id, std::vector<std::string> ttl) {
    const auto key = store.index_key(id);
    const auto entry = server.command({"HGET", key, id});
    ASSERT_FALSE(entry.is_nil());
    server.command({"HDEL", key, id});
    server.command({"ZREM", key + ":f", id});
    std::vector<std::string> set{"SET", "bo:sl:hold:{" + id + "}", entry.str};
    set.insert(set.end(), ttl.begin(), ttl.end());
    server.command(set);
  };
  to_legacy(active->id, {"PX", "600000"});
  to_legacy(booked->id, {});
  EXPECT_EQ(store.get_hold(active->id, t0)->status, HoldStatus::active);
  EXPECT_EQ(store.get_hold(booked->id, t0)->status, HoldStatus::checked_out);
  for (const auto& id : {active->id, booked->id}) {
    EXPECT_EQ(server.command({"EXISTS", "bo:sl:hold:{" + id + "}"}).integer, 0) << id;
    EXPECT_EQ(server.command({"HEXISTS", store.index_key(id), id}).integer, 1) << id;
  }
  ASSERT_FALSE(forget_by(server, store, active->id).is_nil());  // about ten minutes from now
  EXPECT_TRUE(forget_by(server, store, booked->id).is_nil());   // kept: its payment has not ended
  ASSERT_TRUE(store.mark_sold(booked->id, t0).ok());

  // A crash after the checkout, before its entry was kept: the retry keeps it.
  auto again = store.hold(request(e, "carol", one_seat("s0", 3)));
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(store.begin_checkout(again->id, t0).ok());
  server.command({"ZADD", store.index_key(again->id) + ":f", "1", again->id});
  EXPECT_EQ(store.begin_checkout(again->id, t0).error().code, Errc::invalid_state);
  EXPECT_TRUE(forget_by(server, store, again->id).is_nil());
}

TEST(RedisSeatLockStore, ALostBuyerCapIsDetectedAndRebuiltAlone) {
  RedisServer server;
  redis::Client client(client_options(server.url()));
  RedisSeatLockStore store(client);
  const auto e = stadium(2);
  open_event(store, e);
  auto active = store.hold(request(e, "alice", one_seat("s0")));
  ASSERT_TRUE(active.ok());
  // The buyer claims' ready markers go (as on a node that lost its data); the sections stay.
  const auto markers = server.command({"KEYS", "bo:sl:{b:*}:c:ready"});
  ASSERT_FALSE(markers.elements.empty());
  for (const auto& marker : markers.elements) {
    ASSERT_EQ(server.command({"DEL", marker.str}).integer, 1);
  }
  EXPECT_THROW((void)store.hold(request(e, "bob", one_seat("s0", 2))), LockStateLost);
  store.restore(e.id, {});
  EXPECT_TRUE(store.hold(request(e, "bob", one_seat("s0", 2))).ok());
  EXPECT_EQ(store.get_hold(active->id, t0)->status, HoldStatus::active);
  EXPECT_EQ(counts(store, e, "s0").held, 2u);
}

class RedisClusterSeatLockStore : public ::testing::Test {
 protected:
  void SetUp() override { cluster.flush_all(); }
  RedisCluster& cluster = RedisCluster::shared();
  redis::Client client{client_options(cluster.url())};
  RedisSeatLockStore store{client};
};

TEST_F(RedisClusterSeatLockStore, SectionsSpreadOverTheNodes) {
  const auto e = stadium(12);
  open_event(store, e);
  std::set<size_t> nodes;
  for (const auto& section : e.sections) {
    const auto keys = store.section_keys(e.id, section.id);
    ASSERT_EQ(keys.size(), 7u);
    const auto slot = redis::key_slot(keys[0]);
    for (const auto& key : keys) EXPECT_EQ(redis::key_slot(key), slot) << key;
    nodes.insert(cluster.node_of_slot(slot));
    auto hold = store.hold(request(e, "buyer_" + section.id, quantity(section.id, 1)));
    ASSERT_TRUE(hold.ok()) << hold.error().detail;
  }
  EXPECT_EQ(nodes.size(), RedisCluster::kNodes);
}

TEST_F(RedisClusterSeatLockStore, ANodeThatLostItsDataLosesOnlyItsSections) {
  const auto e = stadium(12);
  open_event(store, e);
  std::vector<size_t> node_of_section;
  for (const auto& section : e.sections) {
    node_of_section.push_back(
        cluster.node_of_slot(redis::key_slot(store.section_keys(e.id, section.id)[0])));
    ASSERT_TRUE(store.hold(request(e, "alice_" + section.id, quantity(section.id, 1))).ok());
  }
  ASSERT_FALSE(cluster.command(0, {"FLUSHALL"}).is_error());
  bool lost_any = false;
  for (size_t i = 0; i < e.sections.size(); ++i) {
    const auto& id = e.sections[i].id;
    if (node_of_section[i] == 0) {
      EXPECT_THROW((void)store.free_seats(e.id, id, t0), LockStateLost) << id;
      lost_any = true;
    } else {
      EXPECT_EQ(*store.free_seats(e.id, id, t0), e.sections[i].capacity - 1) << id;
    }
  }
  ASSERT_TRUE(lost_any);
  store.restore(e.id, {});
  for (size_t i = 0; i < e.sections.size(); ++i) {
    // Rebuilt sections come back without the lost (never booked) holds; the others keep theirs.
    const uint32_t held = node_of_section[i] == 0 ? 0 : 1;
    EXPECT_EQ(counts(store, e, e.sections[i].id).held, held) << e.sections[i].id;
    EXPECT_TRUE(
        store.hold(request(e, "bob_" + e.sections[i].id, quantity(e.sections[i].id, 1))).ok());
  }
}

}  // namespace
}  // namespace boxoffice::testing

#include "contract/seat_lock_store_contract.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "domain/ids.h"

namespace boxoffice::testing {

void open_event(SeatLockStore& store, const Event& event) {
  store.add_event(event);
  store.restore(event.id, {});
}

namespace {

using namespace std::chrono_literals;

const Timestamp t0 = *parse_rfc3339("2026-12-04T20:00:00Z");

Event concert() {
  Event e;
  e.id = new_id("evt");
  e.name = "Night 1";
  e.currency = "USD";
  e.starts_at = t0 + std::chrono::hours{24};
  e.sale_opens_at = t0;
  e.hold_ttl_seconds = 300;
  e.max_seats_per_order = 8;
  e.max_seats_per_buyer = 8;
  Section floor{"floor", "Floor", SectionKind::general, 10, 12000, {}};
  Section orch{"orch", "Orchestra", SectionKind::reserved, 0, 25000, {{"A", 6}, {"B", 4}}};
  e.sections = {floor, orch};
  EXPECT_FALSE(validate_and_normalize(e).has_value());
  return e;
}

HoldRequest request(const Event& e, std::string buyer, HoldSelection what, Timestamp now = t0) {
  HoldRequest r;
  r.hold_id = new_id("hld");
  r.event_id = e.id;
  r.buyer = std::move(buyer);
  r.selection = std::move(what);
  r.now = now;
  r.expires_at = now + std::chrono::seconds{e.hold_ttl_seconds};
  r.buyer_seats_max = e.max_seats_per_buyer;
  return r;
}

HoldSelection seats(std::vector<std::string> ids) { return ExactSeats{std::move(ids)}; }
HoldSelection quantity(std::string section, uint32_t n) {
  return SectionQuantity{std::move(section), n};
}

SectionAvailability section_of(SeatLockStore& store, const Event& e, const std::string& id,
                               Timestamp now = t0) {
  auto sections = store.availability(e.id, now);
  EXPECT_TRUE(sections.ok());
  for (const auto& s : *sections) {
    if (s.id == id) {
      EXPECT_EQ(s.available + s.held + s.sold, s.capacity) << id;
      return s;
    }
  }
  ADD_FAILURE() << "no section " << id;
  return {};
}

TEST_P(SeatLockStoreContract, HoldsExactSeatsWithPriceAndExpiry) {
  const auto e = concert();
  open_event(*store, e);
  auto hold = store->hold(request(e, "alice", seats({"orch:A:1", "orch:A:2"})));
  ASSERT_TRUE(hold.ok()) << hold.error().detail;
  EXPECT_EQ(hold->status, HoldStatus::active);
  EXPECT_EQ(hold->section, "orch");
  EXPECT_EQ(hold->seats, (std::vector<std::string>{"orch:A:1", "orch:A:2"}));
  EXPECT_EQ(hold->quantity, 2u);
  EXPECT_EQ(hold->amount, 50000);
  EXPECT_EQ(hold->currency, "USD");
  EXPECT_EQ(hold->expires_at, t0 + 300s);
  EXPECT_EQ(section_of(*store, e, "orch").held, 2u);
  auto read = store->get_hold(hold->id, t0 + 1s);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->buyer, "alice");
  EXPECT_EQ(read->fence, hold->fence);
}

TEST_P(SeatLockStoreContract, FencesStrictlyIncrease) {
  const auto e = concert();
  open_event(*store, e);
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto hold = store->hold(request(e, "buyer" + std::to_string(i), quantity("floor", 1)));
    ASSERT_TRUE(hold.ok());
    EXPECT_GT(hold->fence, last);
    last = hold->fence;
  }
  store->raise_fence_floor(last + 1000);
  auto hold = store->hold(request(e, "zed", quantity("floor", 1)));
  ASSERT_TRUE(hold.ok());
  EXPECT_GT(hold->fence, last + 1000);
}

TEST_P(SeatLockStoreContract, OverlappingHoldTakesNothingAndNamesTheTakenSeats) {
  const auto e = concert();
  open_event(*store, e);
  ASSERT_TRUE(store->hold(request(e, "alice", seats({"orch:A:2", "orch:A:3"}))).ok());
  auto second =
      store->hold(request(e, "bob", seats({"orch:A:1", "orch:A:2", "orch:A:3", "orch:A:4"})));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::seats_unavailable);
  EXPECT_EQ(
      std::set<std::string>(second.error().unavailable.begin(), second.error().unavailable.end()),
      (std::set<std::string>{"orch:A:2", "orch:A:3"}));
  EXPECT_EQ(section_of(*store, e, "orch").held, 2u);
  // The free seats of the refused request are still free.
  EXPECT_TRUE(store->hold(request(e, "carol", seats({"orch:A:1", "orch:A:4"}))).ok());
}

TEST_P(SeatLockStoreContract, GeneralAdmissionIsAllOrNothingOnTheCount) {
  const auto e = concert();
  open_event(*store, e);
  ASSERT_TRUE(store->hold(request(e, "alice", quantity("floor", 6))).ok());
  auto too_many = store->hold(request(e, "bob", quantity("floor", 5)));
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().code, Errc::sold_out);
  auto hold = store->hold(request(e, "bob", quantity("floor", 4)));
  ASSERT_TRUE(hold.ok());
  EXPECT_TRUE(hold->seats.empty());
  const auto floor = section_of(*store, e, "floor");
  EXPECT_EQ(floor.available, 0u);
  EXPECT_EQ(floor.held, 10u);
}

TEST_P(SeatLockStoreContract, BestAvailablePicksAdjacentSeatsNearTheFront) {
  const auto e = concert();
  open_event(*store, e);
  ASSERT_TRUE(store->hold(request(e, "alice", seats({"orch:A:3"}))).ok());
  // Row A (6 seats) has no 3 adjacent seats left either side of A:3? It has A:4..A:6.
  auto hold = store->hold(request(e, "bob", quantity("orch", 3)));
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(hold->seats, (std::vector<std::string>{"orch:A:4", "orch:A:5", "orch:A:6"}));
  // Now row A has A:1, A:2 free; 4 adjacent seats exist only in row B.
  auto row_b = store->hold(request(e, "carol", quantity("orch", 4)));
  ASSERT_TRUE(row_b.ok());
  EXPECT_EQ(row_b->seats,
            (std::vector<std::string>{"orch:B:1", "orch:B:2", "orch:B:3", "orch:B:4"}));
  // Only A:1 and A:2 remain; 3 seats cannot be had.
  auto none = store->hold(request(e, "dave", quantity("orch", 3)));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::sold_out);
}

TEST_P(SeatLockStoreContract, ExpiryIsJudgedByTheGivenTime) {
  const auto e = concert();
  open_event(*store, e);
  auto hold = store->hold(request(e, "alice", seats({"orch:B:1"})));
  ASSERT_TRUE(hold.ok());
  // One millisecond before expiry it is still held.
  EXPECT_EQ(store->get_hold(hold->id, hold->expires_at - 1ms)->status, HoldStatus::active);
  auto taken = store->hold(request(e, "bob", seats({"orch:B:1"}), hold->expires_at - 1ms));
  EXPECT_FALSE(taken.ok());
  // At expires_at it is not: now < expires_at is the rule.
  EXPECT_EQ(store->get_hold(hold->id, hold->expires_at)->status, HoldStatus::expired);
  EXPECT_EQ(section_of(*store, e, "orch", hold->expires_at).held, 0u);
  EXPECT_TRUE(store->hold(request(e, "bob", seats({"orch:B:1"}), hold->expires_at)).ok());
  auto checkout = store->begin_checkout(hold->id, hold->expires_at);
  ASSERT_FALSE(checkout.ok());
  EXPECT_EQ(checkout.error().code, Errc::hold_expired);
}

TEST_P(SeatLockStoreContract, ReleaseFreesSeatsOnce) {
  const auto e = concert();
  open_event(*store, e);
  auto hold = store->hold(request(e, "alice", quantity("floor", 3)));
  ASSERT_TRUE(hold.ok());
  auto released = store->release(hold->id, t0 + 1s);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->status, HoldStatus::released);
  EXPECT_EQ(section_of(*store, e, "floor").available, 10u);
  auto again = store->release(hold->id, t0 + 2s);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::invalid_state);
  EXPECT_EQ(section_of(*store, e, "floor").available, 10u);

  auto lapsed = store->hold(request(e, "alice", quantity("floor", 1)));
  ASSERT_TRUE(lapsed.ok());
  auto late = store->release(lapsed->id, lapsed->expires_at + 1s);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Errc::hold_expired);
}

TEST_P(SeatLockStoreContract, CheckedOutHoldKeepsItsSeatsPastExpiry) {
  const auto e = concert();
  open_event(*store, e);
  auto hold = store->hold(request(e, "alice", seats({"orch:A:1"})));
  ASSERT_TRUE(hold.ok());
  auto before = store->begin_checkout(hold->id, t0 + 10s);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->status, HoldStatus::active);
  EXPECT_EQ(before->expires_at, hold->expires_at);
  EXPECT_EQ(before->fence, hold->fence);
  auto twice = store->begin_checkout(hold->id, t0 + 11s);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, Errc::invalid_state);
  const auto later = hold->expires_at + std::chrono::hours{1};
  EXPECT_EQ(store->get_hold(hold->id, later)->status, HoldStatus::checked_out);
  EXPECT_EQ(section_of(*store, e, "orch", later).held, 1u);
  EXPECT_FALSE(store->hold(request(e, "bob", seats({"orch:A:1"}), later)).ok());
}

TEST_P(SeatLockStoreContract, AbortedCheckoutKeepsOrReleases) {
  const auto e = concert();
  open_event(*store, e);
  auto kept = store->hold(request(e, "alice", seats({"orch:A:1"})));
  auto dropped = store->hold(request(e, "alice", seats({"orch:A:2"})));
  ASSERT_TRUE(kept.ok() && dropped.ok());
  ASSERT_TRUE(store->begin_checkout(kept->id, t0).ok());
  ASSERT_TRUE(store->begin_checkout(dropped->id, t0).ok());
  store->abort_checkout(kept->id, true);
  store->abort_checkout(dropped->id, false);
  EXPECT_EQ(store->get_hold(kept->id, t0 + 1s)->status, HoldStatus::active);
  EXPECT_EQ(store->get_hold(dropped->id, t0 + 1s)->status, HoldStatus::released);
  EXPECT_EQ(section_of(*store, e, "orch").held, 1u);
  // A kept hold still expires on time.
  EXPECT_EQ(store->get_hold(kept->id, kept->expires_at)->status, HoldStatus::expired);
}

TEST_P(SeatLockStoreContract, BuyerCapCountsEveryHoldOfTheEvent) {
  auto e = concert();
  e.max_seats_per_buyer = 4;
  open_event(*store, e);
  auto first = store->hold(request(e, "alice", quantity("floor", 3)));
  ASSERT_TRUE(first.ok());
  auto over = store->hold(request(e, "alice", seats({"orch:A:1", "orch:A:2"})));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::limit_exceeded);
  EXPECT_TRUE(store->hold(request(e, "bob", seats({"orch:A:1", "orch:A:2"}))).ok());
  ASSERT_TRUE(store->release(first->id, t0).ok());
  EXPECT_TRUE(store->hold(request(e, "alice", quantity("floor", 4))).ok());
}

TEST_P(SeatLockStoreContract, RefusesBadSelections) {
  const auto e = concert();
  open_event(*store, e);
  auto code = [&](HoldSelection what) {
    auto r = store->hold(request(e, "alice", std::move(what)));
    return r.ok() ? std::optional<Errc>{} : std::optional<Errc>{r.error().code};
  };
  EXPECT_EQ(code(seats({"orch:Z:1"})), Errc::not_found);
  EXPECT_EQ(code(seats({"orch:A:7"})), Errc::not_found);
  EXPECT_EQ(code(seats({"orch:A:0"})), Errc::not_found);
  EXPECT_EQ(code(seats({"floor:A:1"})), Errc::not_found);
  EXPECT_EQ(code(seats({"orch:A:1", "orch:A:1"})), Errc::invalid_request);
  EXPECT_EQ(code(quantity("balcony", 1)), Errc::not_found);
  EXPECT_EQ(code(quantity("floor", 0)), Errc::invalid_request);
  HoldRequest unknown = request(e, "alice", quantity("floor", 1));
  unknown.event_id = "evt_nope";
  EXPECT_EQ(store->hold(unknown).error().code, Errc::not_found);
  EXPECT_EQ(section_of(*store, e, "orch").held, 0u);
  EXPECT_EQ(section_of(*store, e, "floor").held, 0u);
}

TEST_P(SeatLockStoreContract, SeatMapShowsEachSeat) {
  const auto e = concert();
  open_event(*store, e);
  ASSERT_TRUE(store->hold(request(e, "alice", seats({"orch:B:2"}))).ok());
  auto all = store->seats(e.id, "orch", std::nullopt, t0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 10u);
  EXPECT_EQ((*all)[0].id, "orch:A:1");
  EXPECT_EQ((*all)[7].id, "orch:B:2");
  EXPECT_EQ((*all)[7].status, SeatStatus::held);
  auto row = store->seats(e.id, "orch", std::string{"B"}, t0);
  ASSERT_TRUE(row.ok());
  ASSERT_EQ(row->size(), 4u);
  EXPECT_EQ((*row)[1].status, SeatStatus::held);
  EXPECT_EQ(store->seats(e.id, "floor", std::nullopt, t0).error().code, Errc::invalid_request);
  EXPECT_EQ(store->seats(e.id, "orch", std::string{"Q"}, t0).error().code, Errc::not_found);
}

TEST_P(SeatLockStoreContract, RestoreReplaysSoldAndPendingClaims) {
  const auto e = concert();
  store->add_event(e);
  store->restore(e.id, {{"hld_sold", "alice", "orch", {"orch:A:1", "orch:A:2"}, 2, true},
                        {"hld_pending", "bob", "floor", {}, 3, false, t0 - 1min, t0 + 4min}});
  EXPECT_EQ(store->get_hold("hld_pending", t0)->created_at, t0 - 1min);
  EXPECT_EQ(store->get_hold("hld_pending", t0)->expires_at, t0 + 4min);
  auto orch = section_of(*store, e, "orch");
  EXPECT_EQ(orch.sold, 2u);
  auto floor = section_of(*store, e, "floor");
  EXPECT_EQ(floor.held, 3u);
  EXPECT_EQ(store->get_hold("hld_pending", t0)->status, HoldStatus::checked_out);
  auto taken = store->hold(request(e, "carol", seats({"orch:A:1"})));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, Errc::seats_unavailable);
  auto seat_map = store->seats(e.id, "orch", std::string{"A"}, t0);
  EXPECT_EQ((*seat_map)[0].status, SeatStatus::sold);
  // Replaying the same claims again changes nothing.
  store->restore(e.id, {{"hld_pending", "bob", "floor", {}, 3, false}});
  EXPECT_EQ(section_of(*store, e, "floor").held, 3u);
  // Restored claims count against the buyer's cap.
  auto over = store->hold(request(e, "bob", quantity("floor", 6)));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::limit_exceeded);
}

TEST_P(SeatLockStoreContract, RacingBuyersNeverShareASeat) {
  auto e = concert();
  e.max_seats_per_buyer = 1000;
  open_event(*store, e);
  constexpr int kThreads = 8, kAttempts = 400;
  std::vector<std::vector<Hold>> won(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kAttempts; ++i) {
        std::vector<std::string> ids;
        const int n = 1 + int(rng() % 3);
        const char row = rng() % 2 ? 'A' : 'B';
        const int start = 1 + int(rng() % 4);
        for (int k = 0; k < n; ++k)
          ids.push_back("orch:" + std::string(1, row) + ":" + std::to_string(start + k));
        auto hold = store->hold(request(e, "buyer" + std::to_string(t), seats(ids)));
        if (hold.ok()) {
          won[t].push_back(*hold);
          if (rng() % 2) (void)store->release(hold->id, t0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, int> holders;
  for (const auto& list : won) {
    for (const auto& h : list) {
      if (store->get_hold(h.id, t0)->status != HoldStatus::active) continue;
      for (const auto& s : h.seats) ++holders[s];
    }
  }
  uint32_t held = 0;
  for (const auto& [seat, count] : holders) {
    EXPECT_EQ(count, 1) << seat;
    held += count;
  }
  EXPECT_EQ(section_of(*store, e, "orch").held, held);
}

TEST_P(SeatLockStoreContract, AMillionSeatEventWorksLikeASmallOne) {
  Event e = concert();
  Section big{"bowl", "Bowl", SectionKind::reserved, 0, 1000, {}};
  for (int r = 0; r < 1000; ++r) big.rows.push_back({"R" + std::to_string(r), 1000});
  e.sections = {big};
  ASSERT_FALSE(validate_and_normalize(e).has_value());
  open_event(*store, e);
  auto hold = store->hold(request(e, "alice", quantity("bowl", 4)));
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(hold->seats.front(), "bowl:R0:499");
  auto exact = store->hold(request(e, "bob", seats({"bowl:R999:1000"})));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(section_of(*store, e, "bowl").available, 1'000'000u - 5);
}

// Best available is only as right as the store's idea of each row's longest free run: random
// holds and releases, checked against a model of the seats after every step.
TEST_P(SeatLockStoreContract, BestAvailableFollowsEveryChangeOfEachRowsLongestFreeRun) {
  Event e = concert();
  e.max_seats_per_buyer = 8;
  constexpr int kRows = 5, kSeats = 10;
  Section hall{"hall", "Hall", SectionKind::reserved, 0, 1000, {}};
  for (int r = 0; r < kRows; ++r) hall.rows.push_back({std::string(1, char('A' + r)), kSeats});
  e.sections = {hall};
  ASSERT_FALSE(validate_and_normalize(e).has_value());
  open_event(*store, e);

  bool taken[kRows][kSeats] = {};
  const auto id = [](int r, int s) {
    return "hall:" + std::string(1, char('A' + r)) + ":" + std::to_string(s + 1);
  };
  const auto where = [](const std::string& seat) {  // "hall:C:7" -> {2, 6}
    const auto colon = seat.rfind(':');
    return std::pair{seat[colon - 1] - 'A', std::stoi(seat.substr(colon + 1)) - 1};
  };
  const auto longest = [&](int r) {
    int best = 0, run = 0;
    for (int s = 0; s < kSeats; ++s) best = std::max(best, run = taken[r][s] ? 0 : run + 1);
    return best;
  };
  std::vector<Hold> live;
  std::mt19937 rng(7);
  int buyer = 0;
  for (int step = 0; step < 400; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const auto dice = rng() % 10;
    if (dice < 4) {  // exact seats: one to three, anywhere in a row
      const int r = int(rng() % kRows);
      std::set<int> picked;
      for (int k = 1 + int(rng() % 3); k > 0; --k) picked.insert(int(rng() % kSeats));
      std::vector<std::string> ids;
      bool free = true;
      for (int s : picked) {
        ids.push_back(id(r, s));
        free = free && !taken[r][s];
      }
      auto hold = store->hold(request(e, "b" + std::to_string(buyer++), seats(ids)));
      ASSERT_EQ(hold.ok(), free);
      if (!free) continue;
      for (int s : picked) taken[r][s] = true;
      live.push_back(*hold);
    } else if (dice < 7) {  // a release
      if (live.empty()) continue;
      const auto k = rng() % live.size();
      ASSERT_TRUE(store->release(live[k].id, t0).ok());
      for (const auto& seat : live[k].seats) {
        const auto [r, s] = where(seat);
        taken[r][s] = false;
      }
      live.erase(live.begin() + long(k));
    } else {  // best available
      const int n = 1 + int(rng() % 8);
      int row = -1, free = 0;
      for (int r = 0; r < kRows && row < 0; ++r) {
        if (longest(r) >= n) row = r;
      }
      for (int r = 0; r < kRows; ++r) free += int(std::count(taken[r], taken[r] + kSeats, false));
      auto hold = store->hold(request(e, "b" + std::to_string(buyer++), quantity("hall", n)));
      if (free < n) {
        ASSERT_FALSE(hold.ok());
        EXPECT_EQ(hold.error().code, Errc::sold_out);
        continue;
      }
      ASSERT_TRUE(hold.ok()) << n << " seats";
      ASSERT_EQ(hold->seats.size(), size_t(n));
      std::vector<std::pair<int, int>> got;
      for (const auto& seat : hold->seats) got.push_back(where(seat));
      if (row >= 0) {  // n adjacent seats in the front-most row that has them
        for (int k = 0; k < n; ++k) {
          EXPECT_EQ(got[k].first, row) << hold->seats[k];
          EXPECT_EQ(got[k].second, got[0].second + k) << hold->seats[k];
        }
      } else {  // no row has them: the n free seats nearest the front
        std::vector<std::pair<int, int>> front;
        for (int r = 0; r < kRows && int(front.size()) < n; ++r) {
          for (int s = 0; s < kSeats && int(front.size()) < n; ++s) {
            if (!taken[r][s]) front.push_back({r, s});
          }
        }
        EXPECT_EQ(got, front);
      }
      for (const auto& [r, s] : got) {
        ASSERT_FALSE(taken[r][s]) << id(r, s);
        taken[r][s] = true;
      }
      live.push_back(*hold);
    }
  }
}

TEST_P(SeatLockStoreContract, SeatsFarApartAndSeatsOutOfOrderAreEachJudgedAndMarked) {
  Event e = concert();
  Section wide{"wide", "Wide", SectionKind::reserved, 0, 1000, {{"A", 900}, {"B", 900}}};
  e.sections = {wide};
  ASSERT_FALSE(validate_and_normalize(e).has_value());
  open_event(*store, e);
  // Adjacent seats asked out of order, and two seats of different rows 1,000 seats apart.
  ASSERT_TRUE(
      store->hold(request(e, "alice", seats({"wide:A:12", "wide:A:10", "wide:A:11"}))).ok());
  ASSERT_TRUE(store->hold(request(e, "bob", seats({"wide:A:1", "wide:B:200"}))).ok());
  auto refused = store->hold(
      request(e, "carol", seats({"wide:B:200", "wide:A:9", "wide:A:11", "wide:B:900"})));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::seats_unavailable);
  EXPECT_EQ(
      std::set<std::string>(refused.error().unavailable.begin(), refused.error().unavailable.end()),
      (std::set<std::string>{"wide:B:200", "wide:A:11"}));
  // What was marked held reads held, its neighbours free.
  auto a = store->seats(e.id, "wide", std::string{"A"}, t0);
  ASSERT_TRUE(a.ok());
  for (const auto& seat : *a) {
    const bool held = seat.id == "wide:A:1" || seat.id == "wide:A:10" || seat.id == "wide:A:11" ||
                      seat.id == "wide:A:12";
    EXPECT_EQ(seat.status, held ? SeatStatus::held : SeatStatus::available) << seat.id;
  }
  EXPECT_EQ(section_of(*store, e, "wide").held, 5u);
  ASSERT_TRUE(store->hold(request(e, "carol", seats({"wide:B:900", "wide:A:9"}))).ok());
  // Best available still finds the longest runs after the marks.
  auto best = store->hold(request(e, "dave", quantity("wide", 8)));
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->seats.size(), 8u);
}

}  // namespace
}  // namespace boxoffice::testing

namespace boxoffice::testing {
namespace {

TEST_P(SeatLockStoreContract, PaymentOutcomesSellOrFreeCheckedOutSeats) {
  const auto e = concert();
  open_event(*store, e);
  auto paid = store->hold(request(e, "alice", seats({"orch:A:1", "orch:A:2"})));
  auto declined = store->hold(request(e, "bob", quantity("floor", 3)));
  ASSERT_TRUE(paid.ok() && declined.ok());
  ASSERT_TRUE(store->begin_checkout(paid->id, t0).ok());
  ASSERT_TRUE(store->begin_checkout(declined->id, t0).ok());
  EXPECT_EQ(store->mark_sold(paid->id, t0).ok(), true);
  EXPECT_TRUE(store->mark_sold(paid->id, t0).ok());  // a redelivered job changes nothing
  auto orch = section_of(*store, e, "orch");
  EXPECT_EQ(orch.sold, 2u);
  EXPECT_EQ(orch.held, 0u);
  EXPECT_EQ((*store->seats(e.id, "orch", std::string{"A"}, t0))[0].status, SeatStatus::sold);

  ASSERT_TRUE(store->release_booked(declined->id, t0).ok());
  ASSERT_TRUE(store->release_booked(declined->id, t0).ok());
  EXPECT_EQ(section_of(*store, e, "floor").available, 10u);
  EXPECT_EQ(store->get_hold(declined->id, t0)->status, HoldStatus::released);

  // A refund frees sold seats, and the buyer's cap counts them no more.
  ASSERT_TRUE(store->release_booked(paid->id, t0).ok());
  orch = section_of(*store, e, "orch");
  EXPECT_EQ(orch.sold, 0u);
  EXPECT_EQ(orch.available, orch.capacity);
  EXPECT_TRUE(store->hold(request(e, "alice", quantity("floor", 8))).ok());

  auto active = store->hold(request(e, "carol", seats({"orch:B:1"})));
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(store->mark_sold(active->id, t0).error().code, Errc::invalid_state);
  EXPECT_EQ(store->mark_sold("hld_unknown", t0).error().code, Errc::not_found);
}

TEST_P(SeatLockStoreContract, RestoredSoldClaimsCanBeReleasedByARefund) {
  const auto e = concert();
  store->add_event(e);
  store->restore(e.id, {{"hld_sold", "alice", "orch", {"orch:A:1"}, 1, true}});
  EXPECT_EQ(section_of(*store, e, "orch").sold, 1u);
  ASSERT_TRUE(store->release_booked("hld_sold", t0).ok());
  EXPECT_EQ(section_of(*store, e, "orch").sold, 0u);
  EXPECT_TRUE(store->hold(request(e, "bob", seats({"orch:A:1"}))).ok());
}

}  // namespace
}  // namespace boxoffice::testing

namespace boxoffice::testing {
namespace {

TEST_P(SeatLockStoreContract, SeatsComingBackWhileBuyersWaitAreKeptForThem) {
  const auto e = concert();
  open_event(*store, e);
  auto first = store->hold(request(e, "alice", quantity("floor", 4)));
  ASSERT_TRUE(first.ok());
  store->set_waitlisted(e.id, "floor", 2);
  auto floor = section_of(*store, e, "floor");
  EXPECT_EQ(floor.available, 0u);
  EXPECT_EQ(floor.held, 10u);  // 4 held + 6 kept for the line
  EXPECT_EQ(floor.waitlisted, 2u);
  EXPECT_EQ(*store->free_seats(e.id, "floor", t0), 6u);
  auto public_hold = store->hold(request(e, "bob", quantity("floor", 1)));
  ASSERT_FALSE(public_hold.ok());
  EXPECT_EQ(public_hold.error().code, Errc::sold_out);
  auto offer = request(e, "carol", quantity("floor", 2));
  offer.for_waitlist = true;
  ASSERT_TRUE(store->hold(offer).ok());
  EXPECT_EQ(*store->free_seats(e.id, "floor", t0), 4u);

  store->set_waitlisted(e.id, "orch", 1);
  auto exact = store->hold(request(e, "bob", seats({"orch:A:1"})));
  ASSERT_FALSE(exact.ok());
  EXPECT_EQ(exact.error().code, Errc::seats_unavailable);
  EXPECT_EQ((*store->seats(e.id, "orch", std::string{"A"}, t0))[0].status, SeatStatus::held);

  // Nobody waits any more: the free seats are the public's again.
  store->set_waitlisted(e.id, "floor", 0);
  EXPECT_EQ(section_of(*store, e, "floor").available, 4u);
  EXPECT_TRUE(store->hold(request(e, "bob", quantity("floor", 1))).ok());
}

TEST_P(SeatLockStoreContract, SweepExpiresDueHoldsAndNamesTheirSections) {
  const auto e = concert();
  open_event(*store, e);
  auto a = store->hold(request(e, "alice", quantity("floor", 2)));
  auto b = store->hold(request(e, "bob", seats({"orch:A:1"}), t0 + 5s));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(store->sweep_expired(a->expires_at - 1ms, 100).empty());
  auto swept = store->sweep_expired(a->expires_at, 100);
  ASSERT_EQ(swept.size(), 1u);
  EXPECT_EQ(swept[0], (SectionRef{e.id, "floor"}));
  // Expired lazily by another call: still reported by the next sweep.
  (void)store->availability(e.id, b->expires_at);
  auto later = store->sweep_expired(b->expires_at, 100);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0], (SectionRef{e.id, "orch"}));
  EXPECT_TRUE(store->sweep_expired(b->expires_at + 1s, 100).empty());
}

}  // namespace
}  // namespace boxoffice::testing

namespace boxoffice::testing {
namespace {

TEST_P(SeatLockStoreContract, LostStateRefusesHoldsUntilRestoredWithTheClaims) {
  if (!under_test->can_wipe_engine()) GTEST_SKIP() << "no engine apart from the store";
  const auto e = concert();
  open_event(*store, e);
  auto sold = store->hold(request(e, "alice", seats({"orch:A:1", "orch:A:2"})));
  auto pending = store->hold(request(e, "bob", quantity("floor", 3)));
  auto active = store->hold(request(e, "carol", seats({"orch:B:1"})));
  ASSERT_TRUE(sold.ok() && pending.ok() && active.ok());
  ASSERT_TRUE(store->begin_checkout(sold->id, t0).ok());
  ASSERT_TRUE(store->mark_sold(sold->id, t0).ok());
  ASSERT_TRUE(store->begin_checkout(pending->id, t0).ok());

  under_test->wipe_engine();
  try {
    (void)store->hold(request(e, "dave", quantity("floor", 1)));
    ADD_FAILURE() << "a forgotten event took a hold";
  } catch (const LockStateLost& lost) {
    EXPECT_EQ(lost.event_id(), e.id);
  }
  EXPECT_THROW((void)store->hold(request(e, "dave", seats({"orch:A:1"}))), LockStateLost);
  EXPECT_THROW((void)store->availability(e.id, t0), LockStateLost);

  // The Booking Service rebuilds the event from the bookings store: its checked-out holds.
  store->add_event(e);
  store->restore(
      e.id, {{sold->id, "alice", "orch", {"orch:A:1", "orch:A:2"}, 2, true, t0, sold->expires_at},
             {pending->id, "bob", "floor", {}, 3, false, t0, pending->expires_at}});
  const auto orch = section_of(*store, e, "orch");
  EXPECT_EQ(orch.sold, 2u);
  EXPECT_EQ(orch.held, 0u);  // carol's hold was never booked: it went with the engine
  EXPECT_EQ(section_of(*store, e, "floor").held, 3u);
  auto taken = store->hold(request(e, "dave", seats({"orch:A:1", "orch:B:1"})));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, Errc::seats_unavailable);
  EXPECT_EQ(taken.error().unavailable, std::vector<std::string>{"orch:A:1"});
  EXPECT_TRUE(store->hold(request(e, "dave", seats({"orch:B:1"}))).ok());
  auto restored = store->get_hold(pending->id, t0);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->status, HoldStatus::checked_out);
  EXPECT_EQ(restored->expires_at, pending->expires_at);
  // The restored claims count against the buyer cap again.
  auto over = store->hold(request(e, "alice", quantity("floor", 7)));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::limit_exceeded);
  // And the payment outcome of a restored hold still applies.
  ASSERT_TRUE(store->release_booked(pending->id, t0).ok());
  EXPECT_EQ(section_of(*store, e, "floor").available, 10u);
}

}  // namespace
}  // namespace boxoffice::testing

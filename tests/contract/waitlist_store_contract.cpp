#include "contract/waitlist_store_contract.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace boxoffice::testing {

void WaitlistStoreContract::SetUp() {
  storage_ = GetParam().make_storage();
  store_ = storage_->open();
}

void WaitlistStoreContract::TearDown() {
  store_.reset();  // before the storage it lives in
  storage_.reset();
}

void WaitlistStoreContract::reopen() {
  store_.reset();
  store_ = storage_->open();
}

namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using S = WaitlistStatus;

const Timestamp kT0 = from_unix_ms(1'800'000'000'000);
const std::string kEvent = "ev_night1";
const std::string kFloor = "floor";
const std::string kBalcony = "balcony";

WaitlistEntry entry(const std::string& id, const std::string& buyer, uint32_t quantity = 1,
                    const std::string& section = kFloor, const std::string& event_id = kEvent,
                    Timestamp created_at = kT0) {
  WaitlistEntry wanted;
  wanted.id = id;
  wanted.event_id = event_id;
  wanted.section = section;
  wanted.buyer = buyer;
  wanted.quantity = quantity;
  wanted.created_at = created_at;
  return wanted;
}

template <class T>
std::string outcome(const Result<T>& result) {
  return result.ok() ? "ok" : std::string(to_string(result.error().code));
}

// The entry as join() returned it; fails the test (not just the expectation) otherwise.
WaitlistEntry joined(WaitlistStore& store, const WaitlistEntry& wanted) {
  auto result = store.join(wanted);
  if (!result.ok()) {
    ADD_FAILURE() << "join " << wanted.id << ": " << to_string(result.error().code) << " "
                  << result.error().detail;
    return wanted;
  }
  return *std::move(result);
}

WaitlistEntry moved(WaitlistStore& store, const std::string& id, S from, S to, Timestamp now,
                    const std::optional<WaitlistOffer>& offer = {}) {
  auto result = store.transition(id, from, to, now, offer);
  if (!result.ok()) {
    ADD_FAILURE() << id << " " << to_string(from) << " -> " << to_string(to) << ": "
                  << to_string(result.error().code) << " " << result.error().detail;
    return WaitlistEntry{};
  }
  return *std::move(result);
}

WaitlistOffer offer_of(const std::string& hold_id, Timestamp expires_at) {
  return WaitlistOffer{hold_id, expires_at};
}

// "a:1 b:- c:2": each entry's position as the store reports it now ("-" when it has none,
// "?" when the store does not know the entry). One readable line per expectation.
std::string positions(WaitlistStore& store, const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) {
    if (!text.empty()) text += ' ';
    text += id + ':';
    const auto found = store.get(id);
    if (!found) {
      text += '?';
    } else if (!found->position) {
      text += '-';
    } else {
      text += std::to_string(*found->position);
    }
  }
  return text;
}

// The entry's status, or "unknown".
std::string status_of(WaitlistStore& store, const std::string& id) {
  const auto found = store.get(id);
  return found ? std::string(to_string(found->status)) : "unknown";
}

std::string id_or_none(const std::optional<WaitlistEntry>& found) {
  return found ? found->id : "none";
}

std::vector<std::string> ids_of(const std::vector<WaitlistEntry>& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.id);
  return ids;
}

std::string show(const WaitlistCounts& counts) {
  return "waiting=" + std::to_string(counts.waiting) +
         " offered=" + std::to_string(counts.offered) +
         " converted=" + std::to_string(counts.converted) +
         " expired=" + std::to_string(counts.expired) + " left=" + std::to_string(counts.left);
}

std::vector<std::pair<std::string, std::string>> pairs_of(
    const std::vector<WaitlistSection>& sections) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& section : sections) pairs.emplace_back(section.event_id, section.section);
  return pairs;
}

void expect_same_entry(const WaitlistEntry& actual, const WaitlistEntry& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.event_id, expected.event_id);
  EXPECT_EQ(actual.section, expected.section);
  EXPECT_EQ(actual.buyer, expected.buyer);
  EXPECT_EQ(actual.quantity, expected.quantity);
  EXPECT_EQ(actual.status, expected.status) << to_string(actual.status);
  EXPECT_EQ(actual.sequence, expected.sequence);
  EXPECT_EQ(actual.position, expected.position);
  EXPECT_EQ(actual.offer.has_value(), expected.offer.has_value());
  if (actual.offer && expected.offer) {
    EXPECT_EQ(actual.offer->hold_id, expected.offer->hold_id);
    EXPECT_EQ(actual.offer->expires_at, expected.offer->expires_at);
  }
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.updated_at, expected.updated_at);
}

// --- joining -----------------------------------------------------------------------------------

TEST_P(WaitlistStoreContract, JoinAssignsIncreasingSequencesAndExactPositions) {
  const WaitlistEntry a = joined(store(), entry("wl_a", "alice", 2, kFloor, kEvent, kT0));
  const WaitlistEntry b =
      joined(store(), entry("wl_b", "bob", 1, kFloor, kEvent, kT0 + milliseconds{1}));
  // Other lines, interleaved with this one, do not move its positions.
  const WaitlistEntry x = joined(store(), entry("wl_x", "xavier", 1, kBalcony));
  const WaitlistEntry y = joined(store(), entry("wl_y", "yann", 1, kFloor, "ev_other"));
  const WaitlistEntry c = joined(store(), entry("wl_c", "carol", 4));

  EXPECT_LT(a.sequence, b.sequence);
  EXPECT_LT(b.sequence, c.sequence);
  EXPECT_EQ(a.position, 1u);
  EXPECT_EQ(b.position, 2u);
  EXPECT_EQ(c.position, 3u);
  EXPECT_EQ(x.position, 1u);
  EXPECT_EQ(y.position, 1u);
  EXPECT_EQ(a.status, S::waiting);
  EXPECT_FALSE(a.offer.has_value());
  EXPECT_EQ(a.updated_at, a.created_at);
  EXPECT_EQ(positions(store(), {"wl_a", "wl_b", "wl_c", "wl_x", "wl_y"}),
            "wl_a:1 wl_b:2 wl_c:3 wl_x:1 wl_y:1");

  // What get() returns is what join() returned, every field.
  const auto got = store().get("wl_b");
  ASSERT_TRUE(got.has_value());
  expect_same_entry(*got, b);
  EXPECT_EQ(got->event_id, kEvent);
  EXPECT_EQ(got->section, kFloor);
  EXPECT_EQ(got->buyer, "bob");
  EXPECT_EQ(got->quantity, 1u);
  EXPECT_EQ(got->created_at, kT0 + milliseconds{1});
  EXPECT_FALSE(store().get("wl_nobody").has_value());
}

TEST_P(WaitlistStoreContract, PositionsShiftWhenAnEarlierEntryIsOfferedOrLeaves) {
  for (const char* name : {"a", "b", "c", "d"}) {
    joined(store(), entry(std::string("wl_") + name, name));
  }
  const std::vector<std::string> line = {"wl_a", "wl_b", "wl_c", "wl_d"};
  EXPECT_EQ(positions(store(), line), "wl_a:1 wl_b:2 wl_c:3 wl_d:4");

  // An offered entry is out of the line: it has no position and nobody counts it.
  moved(store(), "wl_b", S::waiting, S::offered, kT0 + seconds{1},
        offer_of("hld_b", kT0 + minutes{10}));
  EXPECT_EQ(positions(store(), line), "wl_a:1 wl_b:- wl_c:2 wl_d:3");

  moved(store(), "wl_a", S::waiting, S::left, kT0 + seconds{2});
  EXPECT_EQ(positions(store(), line), "wl_a:- wl_b:- wl_c:1 wl_d:2");

  // What happens to the offer afterwards changes nobody's place.
  moved(store(), "wl_b", S::offered, S::expired, kT0 + minutes{10});
  EXPECT_EQ(positions(store(), line), "wl_a:- wl_b:- wl_c:1 wl_d:2");

  // A late joiner goes to the back, even if its buyer was once in front.
  joined(store(), entry("wl_a2", "a"));
  EXPECT_EQ(positions(store(), {"wl_c", "wl_d", "wl_a2"}), "wl_c:1 wl_d:2 wl_a2:3");
  EXPECT_EQ(store().waiting_count(kEvent, kFloor), 3u);
}

TEST_P(WaitlistStoreContract, ABuyerHasOneLiveEntryPerSection) {
  joined(store(), entry("wl_1", "alice", 2));
  EXPECT_EQ(outcome(store().join(entry("wl_2", "alice", 1))), "conflict");
  EXPECT_FALSE(store().get("wl_2").has_value());
  EXPECT_EQ(store().waiting_count(kEvent, kFloor), 1u);

  // Another section, another event, another buyer: all allowed.
  joined(store(), entry("wl_3", "alice", 1, kBalcony));
  joined(store(), entry("wl_4", "alice", 1, kFloor, "ev_other"));
  joined(store(), entry("wl_5", "bob", 2));

  // Holding an offer is still being in line.
  moved(store(), "wl_1", S::waiting, S::offered, kT0, offer_of("hld_1", kT0 + minutes{10}));
  EXPECT_EQ(outcome(store().join(entry("wl_6", "alice", 1))), "conflict");

  // Once the entry is over, whichever way, the buyer may join again (at the back).
  moved(store(), "wl_1", S::offered, S::converted, kT0 + minutes{1});
  const WaitlistEntry again = joined(store(), entry("wl_7", "alice", 1));
  EXPECT_EQ(again.position, 2u);
  moved(store(), "wl_7", S::waiting, S::offered, kT0, offer_of("hld_7", kT0 + minutes{10}));
  moved(store(), "wl_7", S::offered, S::expired, kT0 + minutes{10});
  joined(store(), entry("wl_8", "alice", 1));
  moved(store(), "wl_8", S::waiting, S::left, kT0 + minutes{11});
  joined(store(), entry("wl_9", "alice", 1));
  EXPECT_EQ(outcome(store().join(entry("wl_10", "alice", 3))), "conflict");
  EXPECT_EQ(store().waiting_count(kEvent, kFloor), 2u);  // bob and alice's last entry
}

TEST_P(WaitlistStoreContract, JoiningWithAKnownIdIsAConflictAndChangesNothing) {
  const WaitlistEntry first = joined(store(), entry("wl_1", "alice", 2));
  EXPECT_EQ(outcome(store().join(entry("wl_1", "bob", 3, kBalcony))), "conflict");
  const auto got = store().get("wl_1");
  ASSERT_TRUE(got.has_value());
  expect_same_entry(*got, first);
  EXPECT_EQ(store().waiting_count(kEvent, kBalcony), 0u);
  // Bob was not let in under alice's id, and nothing keeps him out either.
  EXPECT_EQ(joined(store(), entry("wl_2", "bob", 3, kBalcony)).position, 1u);
}

// --- first_fitting: the FIFO rule --------------------------------------------------------------

TEST_P(WaitlistStoreContract, FirstFittingFollowsJoinOrderAcrossQuantities) {
  joined(store(), entry("wl_4", "w", 4));
  joined(store(), entry("wl_2a", "x", 2));
  joined(store(), entry("wl_2b", "y", 2));
  joined(store(), entry("wl_1", "z", 1));

  // Only an entry that wants more seats than there are is passed over.
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 1)), "wl_1");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 2)), "wl_2a");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 3)), "wl_2a");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 4)), "wl_4");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 100)), "wl_4");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 0)), "none");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kBalcony, 4)), "none");
  EXPECT_EQ(id_or_none(store().first_fitting("ev_other", kFloor, 4)), "none");

  // The answer is the entry as get() would show it.
  const auto head = store().first_fitting(kEvent, kFloor, 2);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, S::waiting);
  EXPECT_EQ(head->quantity, 2u);
  EXPECT_EQ(head->buyer, "x");
  EXPECT_EQ(head->position, 2u);

  // Entries out of the line are never offered again; the next compatible one is.
  moved(store(), "wl_2a", S::waiting, S::offered, kT0, offer_of("hld_1", kT0 + minutes{10}));
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 2)), "wl_2b");
  moved(store(), "wl_2b", S::waiting, S::left, kT0);
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 2)), "wl_1");
  moved(store(), "wl_4", S::waiting, S::left, kT0);
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 4)), "wl_1");
  moved(store(), "wl_1", S::waiting, S::offered, kT0, offer_of("hld_2", kT0 + minutes{10}));
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 100)), "none");
}

TEST_P(WaitlistStoreContract, FirstFittingNeverPassesOverAnEarlierCompatibleEntry) {
  // A long line of mixed quantities; every answer is checked against the rule itself.
  const std::vector<uint32_t> quantities = {3, 1, 4, 1, 5, 2, 6, 2, 3, 5, 1, 4};
  std::vector<std::string> ids;
  for (size_t i = 0; i < quantities.size(); ++i) {
    ids.push_back("wl_" + std::to_string(i));
    joined(store(), entry(ids.back(), "buyer" + std::to_string(i), quantities[i]));
  }
  std::set<size_t> served;
  // Releases of varying size, as seats come back one batch at a time.
  for (const uint32_t seats : {2u, 1u, 6u, 3u, 1u, 2u, 4u, 5u, 1u, 6u, 3u, 4u}) {
    std::string expected = "none";
    for (size_t i = 0; i < quantities.size(); ++i) {
      if (!served.contains(i) && quantities[i] <= seats) {
        expected = ids[i];
        served.insert(i);
        break;
      }
    }
    const auto head = store().first_fitting(kEvent, kFloor, seats);
    ASSERT_EQ(id_or_none(head), expected) << seats << " seats";
    if (head)
      moved(store(), head->id, S::waiting, S::offered, kT0, offer_of("hld_" + head->id, kT0));
  }
}

TEST_P(WaitlistStoreContract, FirstFittingFindsASmallEntryBehindALongLineOfLargerOnes) {
  // However long the run of entries that want too much, the first that fits is found: no store
  // may give up after looking at some of them.
  constexpr int kLarge = 300;
  for (int i = 0; i < kLarge; ++i) {
    joined(store(), entry("wl_big" + std::to_string(i), "big" + std::to_string(i),
                          5 + static_cast<uint32_t>(i % 4)));
  }
  joined(store(), entry("wl_small", "small", 2));
  joined(store(), entry("wl_smallest", "smallest", 1));

  const auto found = store().first_fitting(kEvent, kFloor, 4);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, "wl_small");
  EXPECT_EQ(found->position, static_cast<uint64_t>(kLarge + 1));
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 1)), "wl_smallest");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 7)), "wl_big0");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 6)), "wl_big0");
  moved(store(), "wl_big0", S::waiting, S::left, kT0);
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 6)), "wl_big1");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 5)), "wl_big4");
}

// --- names -------------------------------------------------------------------------------------

TEST_P(WaitlistStoreContract, NamesWithSeparatorsInThemKeepTheirLinesApart) {
  // Whatever a store builds its keys from, "a:b" + "c" and "a" + "b:c" are different lines.
  joined(store(), entry("wl_1", "alice", 1, "c", "a:b"));
  EXPECT_EQ(joined(store(), entry("wl_2", "alice", 1, "b:c", "a")).position, 1u);
  EXPECT_EQ(joined(store(), entry("wl_3", "bob", 1, "}{", "{a}")).position, 1u);
  EXPECT_EQ(joined(store(), entry("wl_4", "carol", 1, "}{", "{a}")).position, 2u);
  EXPECT_EQ(store().waiting_count("a:b", "c"), 1u);
  EXPECT_EQ(store().waiting_count("a", "b:c"), 1u);
  EXPECT_EQ(store().waiting_count("a", "b"), 0u);
  EXPECT_EQ(store().waiting_count("{a}", "}{"), 2u);
  EXPECT_EQ(show(store().counts("a:b")), "waiting=1 offered=0 converted=0 expired=0 left=0");
  EXPECT_EQ(show(store().counts("a")), "waiting=1 offered=0 converted=0 expired=0 left=0");
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT(pairs_of(store().active_sections()),
              UnorderedElementsAre(P{"a:b", "c"}, P{"a", "b:c"}, P{"{a}", "}{"}));
  EXPECT_EQ(id_or_none(store().first_fitting("{a}", "}{", 1)), "wl_3");
  const auto got = store().get("wl_2");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->event_id, "a");
  EXPECT_EQ(got->section, "b:c");
}

// --- transitions -------------------------------------------------------------------------------

TEST_P(WaitlistStoreContract, AnOfferIsRecordedAndFoundByItsHold) {
  const WaitlistEntry waiting = joined(store(), entry("wl_1", "alice", 2));
  const Timestamp offered_at = kT0 + seconds{30};
  const WaitlistOffer offer = offer_of("hld_offer1", offered_at + minutes{10});

  const WaitlistEntry offered = moved(store(), "wl_1", S::waiting, S::offered, offered_at, offer);
  EXPECT_EQ(offered.status, S::offered);
  ASSERT_TRUE(offered.offer.has_value());
  EXPECT_EQ(offered.offer->hold_id, "hld_offer1");
  EXPECT_EQ(offered.offer->expires_at, offered_at + minutes{10});
  EXPECT_EQ(offered.updated_at, offered_at);
  EXPECT_EQ(offered.created_at, waiting.created_at);
  EXPECT_EQ(offered.sequence, waiting.sequence);
  EXPECT_FALSE(offered.position.has_value());

  const auto got = store().get("wl_1");
  ASSERT_TRUE(got.has_value());
  expect_same_entry(*got, offered);
  const auto by_hold = store().find_by_offer("hld_offer1");
  ASSERT_TRUE(by_hold.has_value());
  expect_same_entry(*by_hold, offered);
  EXPECT_FALSE(store().find_by_offer("hld_other").has_value());

  // Checkout of the offer's hold converts the entry; it still says which offer it took.
  const WaitlistEntry converted =
      moved(store(), "wl_1", S::offered, S::converted, offered_at + minutes{2});
  EXPECT_EQ(converted.status, S::converted);
  EXPECT_EQ(converted.updated_at, offered_at + minutes{2});
  ASSERT_TRUE(converted.offer.has_value());
  EXPECT_EQ(converted.offer->hold_id, "hld_offer1");
  const auto after = store().find_by_offer("hld_offer1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, S::converted);
}

TEST_P(WaitlistStoreContract, EveryWayOutOfTheLine) {
  joined(store(), entry("wl_expires", "a"));
  joined(store(), entry("wl_leaves_waiting", "b"));
  joined(store(), entry("wl_leaves_offered", "c"));
  const WaitlistOffer offer = offer_of("hld_1", kT0 + minutes{10});

  moved(store(), "wl_expires", S::waiting, S::offered, kT0, offer);
  EXPECT_EQ(moved(store(), "wl_expires", S::offered, S::expired, kT0 + minutes{10}).status,
            S::expired);
  EXPECT_EQ(moved(store(), "wl_leaves_waiting", S::waiting, S::left, kT0 + minutes{1}).status,
            S::left);
  moved(store(), "wl_leaves_offered", S::waiting, S::offered, kT0,
        offer_of("hld_2", kT0 + minutes{10}));
  const WaitlistEntry left =
      moved(store(), "wl_leaves_offered", S::offered, S::left, kT0 + minutes{3});
  EXPECT_EQ(left.status, S::left);
  EXPECT_EQ(left.updated_at, kT0 + minutes{3});
  EXPECT_FALSE(left.position.has_value());

  EXPECT_EQ(status_of(store(), "wl_expires"), "expired");
  EXPECT_EQ(status_of(store(), "wl_leaves_waiting"), "left");
  EXPECT_FALSE(store().get("wl_leaves_waiting").value_or(WaitlistEntry{}).offer.has_value());
  EXPECT_EQ(status_of(store(), "wl_leaves_offered"), "left");
  EXPECT_EQ(show(store().counts(kEvent)), "waiting=0 offered=0 converted=0 expired=1 left=2");
  EXPECT_THAT(store().active_sections(), IsEmpty());
}

TEST_P(WaitlistStoreContract, ATransitionFromTheWrongStatusChangesNothing) {
  joined(store(), entry("wl_1", "alice"));
  const WaitlistOffer offer = offer_of("hld_1", kT0 + minutes{10});

  EXPECT_EQ(outcome(store().transition("wl_1", S::offered, S::converted, kT0)), "invalid_state");
  EXPECT_EQ(outcome(store().transition("wl_1", S::offered, S::expired, kT0)), "invalid_state");
  EXPECT_EQ(status_of(store(), "wl_1"), "waiting");

  moved(store(), "wl_1", S::waiting, S::offered, kT0, offer);
  // A second offer to the same entry loses: the first one stands untouched.
  EXPECT_EQ(outcome(store().transition("wl_1", S::waiting, S::offered, kT0 + seconds{1},
                                       offer_of("hld_2", kT0 + minutes{11}))),
            "invalid_state");
  EXPECT_FALSE(store().find_by_offer("hld_2").has_value());

  // Checkout and the lapse sweeper race; whichever comes second is refused.
  moved(store(), "wl_1", S::offered, S::converted, kT0 + minutes{9});
  EXPECT_EQ(outcome(store().transition("wl_1", S::offered, S::expired, kT0 + minutes{10})),
            "invalid_state");
  EXPECT_EQ(outcome(store().transition("wl_1", S::offered, S::left, kT0 + minutes{10})),
            "invalid_state");
  const auto got = store().get("wl_1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status, S::converted);
  EXPECT_EQ(got->updated_at, kT0 + minutes{9});
  ASSERT_TRUE(got->offer.has_value());
  EXPECT_EQ(got->offer->hold_id, "hld_1");

  EXPECT_EQ(outcome(store().transition("wl_nobody", S::waiting, S::left, kT0)), "not_found");
  EXPECT_EQ(outcome(store().transition("wl_nobody", S::waiting, S::offered, kT0, offer)),
            "not_found");
}

// --- sweeping lapsed offers --------------------------------------------------------------------

TEST_P(WaitlistStoreContract, LapsedOffersAreThoseExpiredByNowOldestFirstWithinTheLimit) {
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    joined(store(), entry(std::string("wl_") + name, name));
  }
  moved(store(), "wl_a", S::waiting, S::offered, kT0, offer_of("hld_a", kT0 + seconds{10}));
  moved(store(), "wl_b", S::waiting, S::offered, kT0, offer_of("hld_b", kT0 + seconds{5}));
  moved(store(), "wl_c", S::waiting, S::offered, kT0, offer_of("hld_c", kT0 + seconds{20}));
  moved(store(), "wl_d", S::waiting, S::offered, kT0, offer_of("hld_d", kT0 + seconds{1}));
  moved(store(), "wl_d", S::offered, S::converted, kT0);  // taken in time: never lapses
  // wl_e waits without an offer.

  EXPECT_THAT(store().lapsed_offers(kT0 + seconds{5} - milliseconds{1}, 10), IsEmpty());
  EXPECT_THAT(ids_of(store().lapsed_offers(kT0 + seconds{5}, 10)), ElementsAre("wl_b"));
  EXPECT_THAT(ids_of(store().lapsed_offers(kT0 + seconds{10}, 10)), ElementsAre("wl_b", "wl_a"));
  EXPECT_THAT(ids_of(store().lapsed_offers(kT0 + minutes{1}, 10)),
              ElementsAre("wl_b", "wl_a", "wl_c"));
  EXPECT_THAT(ids_of(store().lapsed_offers(kT0 + minutes{1}, 2)), ElementsAre("wl_b", "wl_a"));
  EXPECT_THAT(store().lapsed_offers(kT0 + minutes{1}, 0), IsEmpty());

  const auto lapsed = store().lapsed_offers(kT0 + minutes{1}, 1);
  ASSERT_EQ(lapsed.size(), 1u);
  EXPECT_EQ(lapsed[0].status, S::offered);
  ASSERT_TRUE(lapsed[0].offer.has_value());
  EXPECT_EQ(lapsed[0].offer->hold_id, "hld_b");

  // Once the sweeper has moved them on, they are not lapsed offers any more.
  moved(store(), "wl_b", S::offered, S::expired, kT0 + minutes{1});
  moved(store(), "wl_a", S::offered, S::left, kT0 + minutes{1});
  EXPECT_THAT(ids_of(store().lapsed_offers(kT0 + minutes{1}, 10)), ElementsAre("wl_c"));
}

// --- what the service and the stats read -------------------------------------------------------

TEST_P(WaitlistStoreContract, ActiveSectionsAreThoseWithSomeoneWaitingOrOffered) {
  EXPECT_THAT(store().active_sections(), IsEmpty());
  joined(store(), entry("wl_1", "a", 1, kFloor));
  joined(store(), entry("wl_2", "b", 1, kFloor));
  joined(store(), entry("wl_3", "a", 1, kBalcony));
  joined(store(), entry("wl_4", "a", 1, kFloor, "ev_other"));
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT(pairs_of(store().active_sections()),
              UnorderedElementsAre(P{kEvent, kFloor}, P{kEvent, kBalcony}, P{"ev_other", kFloor}));

  moved(store(), "wl_3", S::waiting, S::offered, kT0, offer_of("hld_3", kT0 + minutes{10}));
  moved(store(), "wl_4", S::waiting, S::left, kT0);
  EXPECT_THAT(pairs_of(store().active_sections()),
              UnorderedElementsAre(P{kEvent, kFloor}, P{kEvent, kBalcony}));

  moved(store(), "wl_3", S::offered, S::expired, kT0 + minutes{10});
  moved(store(), "wl_1", S::waiting, S::left, kT0);
  EXPECT_THAT(pairs_of(store().active_sections()), ElementsAre(P{kEvent, kFloor}));
  moved(store(), "wl_2", S::waiting, S::offered, kT0, offer_of("hld_2", kT0 + minutes{10}));
  moved(store(), "wl_2", S::offered, S::converted, kT0);
  EXPECT_THAT(store().active_sections(), IsEmpty());
}

TEST_P(WaitlistStoreContract, WaitingCountAndCountsByStatus) {
  EXPECT_EQ(store().waiting_count(kEvent, kFloor), 0u);
  EXPECT_EQ(show(store().counts(kEvent)), "waiting=0 offered=0 converted=0 expired=0 left=0");
  for (int i = 0; i < 7; ++i) {
    joined(store(), entry("wl_f" + std::to_string(i), "buyer" + std::to_string(i), 1, kFloor));
  }
  joined(store(), entry("wl_b0", "buyer0", 2, kBalcony));
  joined(store(), entry("wl_b1", "buyer1", 2, kBalcony));
  joined(store(), entry("wl_o0", "buyer0", 2, kFloor, "ev_other"));
  const WaitlistOffer offer = offer_of("hld", kT0 + minutes{10});

  moved(store(), "wl_f0", S::waiting, S::offered, kT0, offer_of("hld_0", kT0 + minutes{10}));
  moved(store(), "wl_f1", S::waiting, S::offered, kT0, offer_of("hld_1", kT0 + minutes{10}));
  moved(store(), "wl_f1", S::offered, S::converted, kT0);
  moved(store(), "wl_f2", S::waiting, S::offered, kT0, offer_of("hld_2", kT0 + minutes{10}));
  moved(store(), "wl_f2", S::offered, S::expired, kT0);
  moved(store(), "wl_f3", S::waiting, S::offered, kT0, offer_of("hld_3", kT0 + minutes{10}));
  moved(store(), "wl_f3", S::offered, S::expired, kT0);
  moved(store(), "wl_f4", S::waiting, S::left, kT0);
  moved(store(), "wl_b0", S::waiting, S::offered, kT0, offer);

  EXPECT_EQ(store().waiting_count(kEvent, kFloor), 2u);  // f5, f6
  EXPECT_EQ(store().waiting_count(kEvent, kBalcony), 1u);
  EXPECT_EQ(store().waiting_count("ev_other", kFloor), 1u);
  EXPECT_EQ(store().waiting_count("ev_other", kBalcony), 0u);
  EXPECT_EQ(show(store().counts(kEvent)), "waiting=3 offered=2 converted=1 expired=2 left=1");
  EXPECT_EQ(show(store().counts("ev_other")), "waiting=1 offered=0 converted=0 expired=0 left=0");
  EXPECT_EQ(show(store().counts("ev_none")), "waiting=0 offered=0 converted=0 expired=0 left=0");
}

// --- concurrency -------------------------------------------------------------------------------

TEST_P(WaitlistStoreContract, ConcurrentJoinsGetDistinctSequencesAndExactPositions) {
  constexpr int kThreads = 16;
  constexpr int kBuyersPerThread = 50;
  constexpr int kBuyers = kThreads * kBuyersPerThread;

  // Each buyer is joined by two threads at once, under two ids: exactly one may get in.
  std::mutex mutex;
  std::vector<WaitlistEntry> admitted;
  std::map<std::string, int> admitted_per_buyer;
  std::atomic<int> conflicts{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBuyersPerThread; ++i) {
        for (const int owner : {t, (t + 1) % kThreads}) {
          const std::string buyer = "buyer" + std::to_string(owner * kBuyersPerThread + i);
          const std::string id = "wl_" + buyer + "_by" + std::to_string(t);
          try {
            auto result = store().join(entry(id, buyer, 1 + static_cast<uint32_t>(i % 3)));
            if (result.ok()) {
              std::lock_guard lock(mutex);
              admitted.push_back(*result);
              ++admitted_per_buyer[buyer];
            } else if (result.error().code == Errc::conflict) {
              ++conflicts;
            } else {
              ++other;
            }
          } catch (const std::exception&) {
            ++other;
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(conflicts.load(), kBuyers);
  ASSERT_EQ(admitted.size(), static_cast<size_t>(kBuyers));
  EXPECT_EQ(admitted_per_buyer.size(), static_cast<size_t>(kBuyers));
  for (const auto& [buyer, count] : admitted_per_buyer) EXPECT_EQ(count, 1) << buyer;

  // Sorted by sequence, the entries are the line: positions 1..N with no gap and no tie, both as
  // each join reported it and as the store reports it now.
  std::sort(admitted.begin(), admitted.end(),
            [](const auto& l, const auto& r) { return l.sequence < r.sequence; });
  for (size_t i = 0; i < admitted.size(); ++i) {
    if (i > 0) {
      ASSERT_LT(admitted[i - 1].sequence, admitted[i].sequence) << "duplicate sequence";
    }
    EXPECT_EQ(admitted[i].position, i + 1) << admitted[i].id;
    const auto now = store().get(admitted[i].id);
    ASSERT_TRUE(now.has_value());
    EXPECT_EQ(now->position, i + 1) << admitted[i].id;
  }
  EXPECT_EQ(store().waiting_count(kEvent, kFloor), static_cast<uint32_t>(kBuyers));
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 3)), admitted.front().id);
}

// --- durability --------------------------------------------------------------------------------

TEST_P(WaitlistStoreContract, EntriesTheirOrderAndStatusesSurviveReopening) {
  if (!durable()) GTEST_SKIP() << "this adapter keeps nothing across instances";
  std::vector<WaitlistEntry> before;
  for (int i = 0; i < 6; ++i) {
    before.push_back(
        joined(store(), entry("wl_" + std::to_string(i), "buyer" + std::to_string(i),
                              static_cast<uint32_t>(1 + i % 2), i % 3 == 2 ? kBalcony : kFloor,
                              kEvent, kT0 + milliseconds{i})));
  }
  before[0] = moved(store(), "wl_0", S::waiting, S::offered, kT0 + seconds{1},
                    offer_of("hld_0", kT0 + minutes{10}));
  before[1] = moved(store(), "wl_1", S::waiting, S::left, kT0 + seconds{2});
  before[2] = moved(store(), "wl_2", S::waiting, S::offered, kT0 + seconds{3},
                    offer_of("hld_2", kT0 + minutes{10}));
  before[2] = moved(store(), "wl_2", S::offered, S::converted, kT0 + seconds{4});
  const std::vector<std::string> ids = {"wl_0", "wl_1", "wl_2", "wl_3", "wl_4", "wl_5"};
  const std::string positions_before = positions(store(), ids);
  ASSERT_EQ(positions_before, "wl_0:- wl_1:- wl_2:- wl_3:1 wl_4:2 wl_5:1");
  for (auto& known : before) known = store().get(known.id).value_or(WaitlistEntry{});

  reopen();
  reopen();  // opening an up-to-date store changes nothing

  EXPECT_EQ(positions(store(), ids), positions_before);
  for (const auto& expected : before) {
    const auto got = store().get(expected.id);
    ASSERT_TRUE(got.has_value()) << expected.id;
    expect_same_entry(*got, expected);
  }
  ASSERT_TRUE(store().find_by_offer("hld_0").has_value());
  EXPECT_EQ(store().find_by_offer("hld_0")->id, "wl_0");
  EXPECT_EQ(id_or_none(store().first_fitting(kEvent, kFloor, 2)), "wl_3");
  EXPECT_THAT(ids_of(store().lapsed_offers(kT0 + minutes{10}, 10)), ElementsAre("wl_0"));
  EXPECT_EQ(show(store().counts(kEvent)), "waiting=3 offered=1 converted=1 expired=0 left=1");

  // The line's rules survived too: one live entry per buyer, later joins at the back.
  EXPECT_EQ(outcome(store().join(entry("wl_dup", "buyer3", 1))), "conflict");
  const WaitlistEntry late = joined(store(), entry("wl_late", "buyer1", 1));
  EXPECT_GT(late.sequence, before.back().sequence);
  EXPECT_EQ(late.position, 3u);
}

}  // namespace
}  // namespace boxoffice::testing

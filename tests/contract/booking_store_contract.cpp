#include "contract/booking_store_contract.h"

#include <gmock/gmock.h>

#include <atomic>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "domain/ids.h"

namespace boxoffice::testing {

void BookingStoreContract::SetUp() {
  storage_ = GetParam().make_storage();
  store_ = storage_->open();
}

void BookingStoreContract::TearDown() {
  store_.reset();  // before the storage it lives in
  storage_.reset();
}

void BookingStoreContract::reopen() {
  store_.reset();
  store_ = storage_->open();
}

namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Seats = std::vector<std::string>;

const Timestamp kT0 = from_unix_ms(1'800'000'000'000);
const std::string kEvent = "ev_night1";
constexpr int64_t kFloorPrice = 12'000;
constexpr int64_t kOrchPrice = 25'000;

// floor: general, capacity 10; orch: reserved, rows A (4 seats) and B (3 seats).
Event concert(const std::string& id, Timestamp starts_at, uint32_t floor_capacity = 10) {
  Event event;
  event.id = id;
  event.name = "Nuit 1 \xe2\x80\x94 Z\xc3\xa9nith";  // UTF-8 must survive the round trip
  event.starts_at = starts_at;
  event.currency = "USD";
  event.sale_opens_at = kT0 - hours{1} + milliseconds{250};
  event.hold_ttl_seconds = 300;
  event.max_seats_per_order = 6;
  event.max_seats_per_buyer = 7;
  event.created_at = kT0 - days{3} + milliseconds{123};
  event.sections.push_back(
      Section{"floor", "Floor", SectionKind::general, floor_capacity, kFloorPrice, {}});
  event.sections.push_back(
      Section{"orch", "Orchestra", SectionKind::reserved, 7, kOrchPrice, {{"A", 4}, {"B", 3}}});
  return event;
}

// One row of `seats` seats in a reserved section "stalls".
Event one_row_event(const std::string& id, uint32_t seats) {
  Event event = concert(id, kT0 + days{30});
  event.sections = {Section{"stalls", "Stalls", SectionKind::reserved, seats, 100, {{"A", seats}}}};
  return event;
}

Hold reserved_hold(const std::string& event_id, const std::string& buyer, Seats seats,
                   uint64_t fence, Timestamp created_at = kT0) {
  Hold hold;
  hold.id = new_id("hld");
  hold.event_id = event_id;
  hold.buyer = buyer;
  hold.section = seats.empty() ? "orch" : seats.front().substr(0, seats.front().find(':'));
  hold.quantity = static_cast<uint32_t>(seats.size());
  hold.seats = std::move(seats);
  hold.amount = kOrchPrice * hold.quantity;
  hold.currency = "USD";
  hold.created_at = created_at;
  hold.expires_at = created_at + minutes{5};
  hold.fence = fence;
  return hold;
}

Hold general_hold(const std::string& event_id, const std::string& buyer, uint32_t quantity,
                  uint64_t fence, Timestamp created_at = kT0) {
  Hold hold;
  hold.id = new_id("hld");
  hold.event_id = event_id;
  hold.buyer = buyer;
  hold.section = "floor";
  hold.quantity = quantity;
  hold.amount = kFloorPrice * quantity;
  hold.currency = "USD";
  hold.created_at = created_at;
  hold.expires_at = created_at + minutes{5};
  hold.fence = fence;
  return hold;
}

CheckoutRequest checkout(const Hold& hold, Timestamp now = kT0 + seconds{1}) {
  return CheckoutRequest{new_id("bkg"), hold, "pm_card_ok", now};
}

std::string describe(const Error& error) {
  return std::string(to_string(error.code)) + ": " + error.detail;
}

// "ok", or the code of the refusal: comparable whatever happened, so an unexpected success
// fails the expectation instead of stopping the test.
template <class T>
std::string outcome(const Result<T>& result) {
  return result.ok() ? "ok" : std::string(to_string(result.error().code));
}

// For set-up steps that must succeed; a refusal fails the test with its reason.
Booking book(BookingStore& store, const CheckoutRequest& request) {
  auto booking = store.create_booking(request);
  if (!booking) throw std::runtime_error("create_booking refused: " + describe(booking.error()));
  return *std::move(booking);
}

Booking move_to(BookingStore& store, const Booking& booking, BookingStatus from, BookingStatus to,
                Timestamp now = kT0 + minutes{1}) {
  auto moved = store.transition(booking.id, from, to, now);
  if (!moved) throw std::runtime_error("transition refused: " + describe(moved.error()));
  return *std::move(moved);
}

void expect_same_event(const Event& actual, const Event& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.starts_at, expected.starts_at);
  EXPECT_EQ(actual.currency, expected.currency);
  EXPECT_EQ(actual.sale_opens_at, expected.sale_opens_at);
  EXPECT_EQ(actual.hold_ttl_seconds, expected.hold_ttl_seconds);
  EXPECT_EQ(actual.max_seats_per_order, expected.max_seats_per_order);
  EXPECT_EQ(actual.max_seats_per_buyer, expected.max_seats_per_buyer);
  EXPECT_EQ(actual.created_at, expected.created_at);
  ASSERT_EQ(actual.sections.size(), expected.sections.size());
  for (size_t s = 0; s < expected.sections.size(); ++s) {
    const Section& a = actual.sections[s];
    const Section& e = expected.sections[s];
    EXPECT_EQ(a.id, e.id);
    EXPECT_EQ(a.name, e.name);
    EXPECT_EQ(a.kind, e.kind) << e.id;
    EXPECT_EQ(a.capacity, e.capacity) << e.id;
    EXPECT_EQ(a.price, e.price) << e.id;
    ASSERT_EQ(a.rows.size(), e.rows.size()) << e.id;
    for (size_t r = 0; r < e.rows.size(); ++r) {
      EXPECT_EQ(a.rows[r].name, e.rows[r].name);
      EXPECT_EQ(a.rows[r].seats, e.rows[r].seats);
    }
  }
}

void expect_same_booking(const Booking& actual, const Booking& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.event_id, expected.event_id);
  EXPECT_EQ(actual.hold_id, expected.hold_id);
  EXPECT_EQ(actual.buyer, expected.buyer);
  EXPECT_EQ(actual.section, expected.section);
  EXPECT_EQ(actual.seats, expected.seats);
  EXPECT_EQ(actual.quantity, expected.quantity);
  EXPECT_EQ(actual.amount, expected.amount);
  EXPECT_EQ(actual.currency, expected.currency);
  EXPECT_EQ(actual.payment_method, expected.payment_method);
  EXPECT_EQ(to_string(actual.status), to_string(expected.status));
  EXPECT_EQ(actual.fence, expected.fence);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.updated_at, expected.updated_at);
  EXPECT_EQ(actual.payment_attempts, expected.payment_attempts);
  EXPECT_EQ(actual.last_error, expected.last_error);
}

std::vector<std::string> ids_of(const std::vector<Booking>& bookings) {
  std::vector<std::string> ids;
  for (const auto& booking : bookings) ids.push_back(booking.id);
  return ids;
}

// --- events ------------------------------------------------------------------------------------

TEST_P(BookingStoreContract, EventRoundTripsEveryField) {
  const Event event = concert(kEvent, kT0 + days{30} + milliseconds{7});
  ASSERT_TRUE(store().create_event(event).ok());

  const auto loaded = store().get_event(kEvent);
  ASSERT_TRUE(loaded.has_value());
  expect_same_event(*loaded, event);
  EXPECT_FALSE(store().get_event("ev_missing").has_value());
}

TEST_P(BookingStoreContract, DuplicateEventIdIsAConflictAndChangesNothing) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  Event second = concert(kEvent, kT0 + days{60}, /*floor_capacity=*/1);
  second.name = "Another night";

  const Status status = store().create_event(second);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::conflict);
  EXPECT_EQ(store().get_event(kEvent)->name, concert(kEvent, kT0).name);
  EXPECT_EQ(store().list_events().size(), 1u);
  // The first event's capacity (10) still rules its floor, not the refused one's (1).
  EXPECT_TRUE(store().create_booking(checkout(general_hold(kEvent, "alice", 5, 1))).ok());
}

TEST_P(BookingStoreContract, ListsEventsByStartThenId) {
  EXPECT_THAT(store().list_events(), IsEmpty());
  ASSERT_TRUE(store().create_event(concert("ev_c", kT0 + days{2})).ok());
  ASSERT_TRUE(store().create_event(concert("ev_b", kT0 + days{1})).ok());
  ASSERT_TRUE(store().create_event(concert("ev_a", kT0 + days{2})).ok());

  std::vector<std::string> ids;
  for (const auto& event : store().list_events()) ids.push_back(event.id);
  EXPECT_THAT(ids, ElementsAre("ev_b", "ev_a", "ev_c"));
  expect_same_event(store().list_events().front(), concert("ev_b", kT0 + days{1}));
}

// --- checkout ----------------------------------------------------------------------------------

TEST_P(BookingStoreContract, CheckoutWritesTheBookingItsSeatsAndOneChargeJob) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  const Hold hold = reserved_hold(kEvent, "alice", {"orch:A:1", "orch:A:2"}, 7);
  const CheckoutRequest request = checkout(hold, kT0 + seconds{3});

  auto booking = store().create_booking(request);
  ASSERT_TRUE(booking.ok()) << describe(booking.error());
  Booking expected;
  expected.id = request.booking_id;
  expected.event_id = kEvent;
  expected.hold_id = hold.id;
  expected.buyer = "alice";
  expected.section = "orch";
  expected.seats = {"orch:A:1", "orch:A:2"};
  expected.quantity = 2;
  expected.amount = 2 * kOrchPrice;
  expected.currency = "USD";
  expected.payment_method = "pm_card_ok";
  expected.status = BookingStatus::pending_payment;
  expected.fence = 7;
  expected.created_at = kT0 + seconds{3};
  expected.updated_at = kT0 + seconds{3};
  expect_same_booking(*booking, expected);

  const auto by_id = store().get_booking(request.booking_id);
  ASSERT_TRUE(by_id.has_value());
  expect_same_booking(*by_id, expected);
  const auto by_hold = store().find_booking_by_hold(hold.id);
  ASSERT_TRUE(by_hold.has_value());
  expect_same_booking(*by_hold, expected);

  const auto jobs = store().pending_outbox(10);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, "charge");
  EXPECT_EQ(jobs[0].booking_id, request.booking_id);
  EXPECT_EQ(jobs[0].created_at, kT0 + seconds{3});

  const auto claims = store().live_claims(kEvent);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].seats, (Seats{"orch:A:1", "orch:A:2"}));
  EXPECT_FALSE(claims[0].sold);
}

TEST_P(BookingStoreContract, CheckoutIsIdempotentPerHold) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  const Hold hold = reserved_hold(kEvent, "alice", {"orch:B:1"}, 3);
  const Booking first = book(store(), checkout(hold, kT0 + seconds{1}));

  // A retry gets the first booking, even once the hold itself has run out.
  for (Timestamp now : {kT0 + seconds{2}, hold.expires_at + minutes{1}}) {
    auto again = store().create_booking(checkout(hold, now));
    ASSERT_TRUE(again.ok()) << describe(again.error());
    expect_same_booking(*again, first);
  }
  EXPECT_EQ(store().pending_outbox(10).size(), 1u);
  EXPECT_EQ(store().list_bookings("alice", 10).size(), 1u);
  EXPECT_EQ(store().counts(kEvent).pending_payment, 1u);
}

TEST_P(BookingStoreContract, ExpiredHoldIsRefusedAndWritesNothing) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  const Hold seats = reserved_hold(kEvent, "alice", {"orch:A:1"}, 1);
  const Hold floor = general_hold(kEvent, "alice", 10, 2);

  for (const Hold& hold : {seats, floor}) {
    // Valid only while now < expires_at: the expiry instant itself is too late.
    for (Timestamp now : {hold.expires_at, hold.expires_at + milliseconds{1}}) {
      const CheckoutRequest request = checkout(hold, now);
      auto booking = store().create_booking(request);
      ASSERT_FALSE(booking.ok());
      EXPECT_EQ(booking.error().code, Errc::hold_expired);
      EXPECT_FALSE(store().get_booking(request.booking_id).has_value());
    }
    EXPECT_FALSE(store().find_booking_by_hold(hold.id).has_value());
  }
  EXPECT_THAT(store().pending_outbox(10), IsEmpty());
  EXPECT_THAT(store().live_claims(kEvent), IsEmpty());
  EXPECT_THAT(store().list_bookings("alice", 10), IsEmpty());
  EXPECT_EQ(store().counts(kEvent).pending_payment, 0u);
  // Neither the seat nor the floor's capacity was taken by the refused checkouts.
  EXPECT_TRUE(store().create_booking(checkout(reserved_hold(kEvent, "bob", {"orch:A:1"}, 3))).ok());
  EXPECT_TRUE(store().create_booking(checkout(general_hold(kEvent, "bob", 10, 4))).ok());
}

TEST_P(BookingStoreContract, SeatInALiveBookingIsUnavailableToAnotherHold) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:A:1", "orch:A:2"}, 10)));

  const Hold second = reserved_hold(kEvent, "bob", {"orch:A:3", "orch:A:2", "orch:A:1"}, 20);
  auto refused = store().create_booking(checkout(second));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::seats_unavailable) << describe(refused.error());
  EXPECT_THAT(refused.error().unavailable, UnorderedElementsAre("orch:A:1", "orch:A:2"));

  EXPECT_FALSE(store().find_booking_by_hold(second.id).has_value());
  EXPECT_EQ(store().pending_outbox(10).size(), 1u);
  EXPECT_EQ(store().live_claims(kEvent).size(), 1u);
  // Nothing of the refused checkout stayed behind: neither orch:A:3 nor its fence (20), which
  // would fence out this hold (15).
  auto third = store().create_booking(checkout(reserved_hold(kEvent, "carol", {"orch:A:3"}, 15)));
  EXPECT_TRUE(third.ok()) << describe(third.error());
}

TEST_P(BookingStoreContract, HoldOlderThanABookedOneIsFencedOut) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  const Booking newer = book(store(), checkout(reserved_hold(kEvent, "bob", {"orch:A:1"}, 50)));
  // The seat is free again, so only the fence can tell that the older hold lost it.
  move_to(store(), newer, BookingStatus::pending_payment, BookingStatus::payment_failed);

  const Hold older = reserved_hold(kEvent, "alice", {"orch:A:4", "orch:A:1"}, 40);
  auto refused = store().create_booking(checkout(older));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::hold_expired) << describe(refused.error());
  EXPECT_FALSE(store().find_booking_by_hold(older.id).has_value());
  EXPECT_EQ(store().pending_outbox(10).size(), 1u);

  // The refused hold left no fence on orch:A:4 (30 < 40 still books it); newer holds book A:1.
  EXPECT_TRUE(store().create_booking(checkout(reserved_hold(kEvent, "c", {"orch:A:4"}, 30))).ok());
  EXPECT_TRUE(store().create_booking(checkout(reserved_hold(kEvent, "d", {"orch:A:1"}, 60))).ok());
}

TEST_P(BookingStoreContract, GeneralSectionNeverSellsPastItsCapacity) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30}, /*floor_capacity=*/10)).ok());
  uint64_t fence = 1;
  auto try_book = [&](uint32_t quantity) {
    return store().create_booking(checkout(general_hold(kEvent, "alice", quantity, fence++)));
  };
  const Booking first = book(store(), checkout(general_hold(kEvent, "alice", 4, fence++)));
  EXPECT_EQ(outcome(try_book(4)), "ok");
  EXPECT_EQ(outcome(try_book(4)), "sold_out");
  EXPECT_EQ(outcome(try_book(2)), "ok");  // exactly full
  EXPECT_EQ(outcome(try_book(1)), "sold_out");

  // A failed payment gives its quantity back.
  move_to(store(), first, BookingStatus::pending_payment, BookingStatus::payment_failed);
  EXPECT_EQ(outcome(try_book(4)), "ok");
  EXPECT_EQ(outcome(try_book(1)), "sold_out");

  const BookingCounts counts = store().counts(kEvent);
  EXPECT_EQ(counts.pending_payment, 3u);
  EXPECT_EQ(counts.payment_failed, 1u);
}

TEST_P(BookingStoreContract, ConcurrentCheckoutsNeverOversellAGeneralSection) {
  constexpr uint32_t kCapacity = 40;
  constexpr int kThreads = 16;
  constexpr int kAttemptsPerThread = 10;
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30}, kCapacity)).ok());

  std::atomic<uint64_t> fence{1};
  std::atomic<uint32_t> booked{0};
  std::atomic<uint32_t> sold_out{0};
  std::atomic<uint32_t> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        const Hold hold = general_hold(kEvent, "buyer" + std::to_string(t), 1, fence++);
        try {
          auto booking = store().create_booking(checkout(hold));
          if (booking.ok()) {
            ++booked;
          } else if (booking.error().code == Errc::sold_out) {
            ++sold_out;
          } else {
            ++other;
          }
        } catch (const std::exception&) {
          ++other;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(booked.load(), kCapacity);
  EXPECT_EQ(sold_out.load(), kThreads * kAttemptsPerThread - kCapacity);
  EXPECT_EQ(other.load(), 0u);
  EXPECT_EQ(store().counts(kEvent).pending_payment, kCapacity);
  EXPECT_EQ(store().pending_outbox(1000).size(), kCapacity);
  uint32_t claimed = 0;
  for (const auto& claim : store().live_claims(kEvent)) claimed += claim.quantity;
  EXPECT_EQ(claimed, kCapacity);
}

TEST_P(BookingStoreContract, ConcurrentCheckoutsSellEachReservedSeatOnce) {
  constexpr uint32_t kSeats = 20;
  constexpr int kThreads = 16;
  ASSERT_TRUE(store().create_event(one_row_event(kEvent, kSeats)).ok());

  // Every thread tries every seat, each in its own order and under fresh fences, so each seat is
  // contested by all of them, from higher and from lower fences.
  std::atomic<uint64_t> fence{1};
  std::mutex mutex;
  std::vector<std::string> sold;
  std::atomic<uint32_t> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < kSeats; ++i) {
        const std::string seat = "stalls:A:" + std::to_string((i * 7 + t) % kSeats + 1);
        const Hold hold = reserved_hold(kEvent, "buyer" + std::to_string(t), {seat}, fence++);
        try {
          auto booking = store().create_booking(checkout(hold));
          if (booking.ok()) {
            std::lock_guard lock(mutex);
            sold.push_back(seat);
          } else if (booking.error().code != Errc::seats_unavailable &&
                     booking.error().code != Errc::hold_expired) {
            ++other;
          }
        } catch (const std::exception&) {
          ++other;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(other.load(), 0u);
  EXPECT_EQ(sold.size(), kSeats);
  EXPECT_EQ(std::set<std::string>(sold.begin(), sold.end()).size(), kSeats);
  std::multiset<std::string> claimed;
  for (const auto& claim : store().live_claims(kEvent)) {
    claimed.insert(claim.seats.begin(), claim.seats.end());
  }
  EXPECT_EQ(claimed.size(), kSeats);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), kSeats);
}

TEST_P(BookingStoreContract, ConcurrentMultiSeatCheckoutsAreAllOrNothing) {
  constexpr uint32_t kSeats = 12;
  constexpr int kThreads = 16;
  constexpr int kAttemptsPerThread = 12;
  ASSERT_TRUE(store().create_event(one_row_event(kEvent, kSeats)).ok());

  std::atomic<uint64_t> fence{1};
  std::atomic<uint32_t> booked{0};
  std::atomic<uint32_t> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        const uint32_t first = static_cast<uint32_t>(i * 5 + t) % (kSeats - 2) + 1;
        Seats seats;
        for (uint32_t n = first; n < first + 3; ++n)
          seats.push_back("stalls:A:" + std::to_string(n));
        const Hold hold = reserved_hold(kEvent, "buyer" + std::to_string(t), seats, fence++);
        try {
          if (store().create_booking(checkout(hold)).ok()) ++booked;
        } catch (const std::exception&) {
          ++failed;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(failed.load(), 0u);
  ASSERT_GT(booked.load(), 0u);
  std::multiset<std::string> claimed;
  const auto claims = store().live_claims(kEvent);
  EXPECT_EQ(claims.size(), booked.load());
  for (const auto& claim : claims) {
    EXPECT_EQ(claim.seats.size(), 3u);
    claimed.insert(claim.seats.begin(), claim.seats.end());
  }
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), claimed.size())
      << "a seat is in two live bookings";
}

// 32 callers at once, as a flash sale sends them, with every kind of answer among them: each
// caller gets its own answer, and only the accepted checkouts leave anything behind.
TEST_P(BookingStoreContract, ThirtyTwoConcurrentCheckoutsEachGetTheirOwnAnswer) {
  constexpr uint32_t kSeats = 12;
  constexpr uint32_t kFloorCapacity = 5;
  Event event = one_row_event(kEvent, kSeats);
  event.sections.push_back(
      Section{"floor", "Floor", SectionKind::general, kFloorCapacity, kFloorPrice, {}});
  ASSERT_TRUE(store().create_event(event).ok());

  // 0-19: two holds on each of seats 1-10, from a lower and a higher fence (one of the two wins);
  // 20-27: eight one-place floor holds for 5 places; 28-29: one hold checked out twice;
  // 30-31: expired holds on seats 11 and 12.
  constexpr int kCallers = 32;
  std::vector<CheckoutRequest> requests;
  uint64_t fence = 0;
  for (uint32_t seat = 1; seat <= 10; ++seat) {
    for (int twin = 0; twin < 2; ++twin) {
      requests.push_back(checkout(reserved_hold(kEvent, "buyer" + std::to_string(requests.size()),
                                                {"stalls:A:" + std::to_string(seat)}, ++fence)));
    }
  }
  for (int i = 0; i < 8; ++i) {
    requests.push_back(
        checkout(general_hold(kEvent, "buyer" + std::to_string(requests.size()), 1, ++fence)));
  }
  const Hold twice = reserved_hold(kEvent, "buyer28", {"stalls:A:11"}, ++fence);
  requests.push_back(checkout(twice));
  requests.push_back(checkout(twice));
  for (const std::string seat : {"stalls:A:11", "stalls:A:12"}) {
    const Hold expired = reserved_hold(kEvent, "late", {seat}, ++fence);
    requests.push_back(checkout(expired, expired.expires_at));
  }
  ASSERT_EQ(requests.size(), static_cast<size_t>(kCallers));

  std::vector<std::string> outcomes(kCallers);
  std::vector<std::string> booking_ids(kCallers);
  std::latch start(kCallers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        auto booking = store().create_booking(requests[static_cast<size_t>(i)]);
        outcomes[static_cast<size_t>(i)] = outcome(booking);
        if (booking.ok()) booking_ids[static_cast<size_t>(i)] = booking->id;
      } catch (const std::exception& e) {
        outcomes[static_cast<size_t>(i)] = std::string("exception: ") + e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();

  for (size_t seat = 0; seat < 10; ++seat) {
    const std::multiset<std::string> pair{outcomes[2 * seat], outcomes[2 * seat + 1]};
    EXPECT_EQ(pair.count("ok"), 1u) << "seat " << seat + 1;
    EXPECT_EQ(pair.count("seats_unavailable") + pair.count("hold_expired"), 1u)
        << "seat " << seat + 1 << ": " << outcomes[2 * seat] << ", " << outcomes[2 * seat + 1];
  }
  const std::multiset<std::string> floor(outcomes.begin() + 20, outcomes.begin() + 28);
  EXPECT_EQ(floor.count("ok"), kFloorCapacity);
  EXPECT_EQ(floor.count("sold_out"), 8 - kFloorCapacity);
  EXPECT_EQ(outcomes[28], "ok");
  EXPECT_EQ(outcomes[29], "ok");
  EXPECT_EQ(booking_ids[28], booking_ids[29]) << "one booking per hold";
  EXPECT_EQ(outcomes[30], "hold_expired");
  EXPECT_EQ(outcomes[31], "hold_expired");

  const uint32_t accepted = 10 + kFloorCapacity + 1;
  EXPECT_EQ(store().counts(kEvent).pending_payment, accepted);
  EXPECT_EQ(store().pending_outbox(100).size(), accepted);
  std::multiset<std::string> claimed;
  uint32_t floor_claimed = 0;
  for (const auto& claim : store().live_claims(kEvent)) {
    claimed.insert(claim.seats.begin(), claim.seats.end());
    if (claim.section == "floor") floor_claimed += claim.quantity;
  }
  EXPECT_EQ(claimed.size(), 11u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), 11u);
  EXPECT_EQ(claimed.count("stalls:A:12"), 0u) << "an expired hold leaves nothing behind";
  EXPECT_EQ(floor_claimed, kFloorCapacity);
}

// --- transitions -------------------------------------------------------------------------------

TEST_P(BookingStoreContract, TransitionsFollowTheStateMachine) {
  using S = BookingStatus;
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  const Booking booking = book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:A:1"}, 1)));

  auto expect_refused = [&](S from, S to, Errc code) {
    auto moved = store().transition(booking.id, from, to, kT0 + hours{9});
    ASSERT_FALSE(moved.ok()) << to_string(from) << " -> " << to_string(to);
    EXPECT_EQ(moved.error().code, code) << to_string(from) << " -> " << to_string(to);
  };
  expect_refused(S::confirmed, S::cancelled, Errc::invalid_state);       // not in `from`
  expect_refused(S::pending_payment, S::refunded, Errc::invalid_state);  // no such transition
  expect_refused(S::pending_payment, S::cancelled, Errc::invalid_state);
  EXPECT_EQ(to_string(store().get_booking(booking.id)->status), "pending_payment");

  auto confirmed = store().transition(booking.id, S::pending_payment, S::confirmed, kT0 + hours{1});
  ASSERT_TRUE(confirmed.ok()) << describe(confirmed.error());
  EXPECT_EQ(to_string(confirmed->status), "confirmed");
  EXPECT_EQ(confirmed->updated_at, kT0 + hours{1});
  EXPECT_EQ(confirmed->created_at, booking.created_at);
  expect_same_booking(*store().get_booking(booking.id), *confirmed);

  expect_refused(S::pending_payment, S::payment_failed, Errc::invalid_state);  // already moved
  expect_refused(S::confirmed, S::refunded, Errc::invalid_state);
  EXPECT_EQ(to_string(store().get_booking(booking.id)->status), "confirmed");

  move_to(store(), booking, S::confirmed, S::cancelled, kT0 + hours{2});
  const Booking refunded = move_to(store(), booking, S::cancelled, S::refunded, kT0 + hours{3});
  EXPECT_EQ(refunded.updated_at, kT0 + hours{3});
  for (S to : {S::pending_payment, S::confirmed, S::payment_failed, S::cancelled}) {
    expect_refused(S::refunded, to, Errc::invalid_state);
  }
  EXPECT_EQ(to_string(store().get_booking(booking.id)->status), "refunded");

  auto missing = store().transition("bkg_missing", S::pending_payment, S::confirmed, kT0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
}

TEST_P(BookingStoreContract, PaymentFailureFreesTheSeatsAndKeepsTheError) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  const Booking booking =
      book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:A:1", "orch:A:2"}, 5)));
  auto failed =
      store().transition(booking.id, BookingStatus::pending_payment, BookingStatus::payment_failed,
                         kT0 + minutes{2}, "card_declined");
  ASSERT_TRUE(failed.ok()) << describe(failed.error());
  EXPECT_EQ(failed->last_error, "card_declined");
  EXPECT_EQ(store().get_booking(booking.id)->last_error, "card_declined");
  EXPECT_THAT(store().live_claims(kEvent), IsEmpty());

  auto rebooked = store().create_booking(
      checkout(reserved_hold(kEvent, "bob", {"orch:A:2", "orch:A:1"}, 6), kT0 + minutes{3}));
  EXPECT_TRUE(rebooked.ok()) << describe(rebooked.error());
  EXPECT_EQ(store().counts(kEvent).payment_failed, 1u);
}

TEST_P(BookingStoreContract, CancellationWritesARefundJobAndKeepsTheSeatsUntilRefunded) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30}, /*floor_capacity=*/3)).ok());
  const Booking seat = book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:B:3"}, 1)));
  const Booking floor = book(store(), checkout(general_hold(kEvent, "alice", 3, 2)));
  for (const Booking& booking : {seat, floor}) {
    move_to(store(), booking, BookingStatus::pending_payment, BookingStatus::confirmed);
    move_to(store(), booking, BookingStatus::confirmed, BookingStatus::cancelled);
  }

  const auto jobs = store().pending_outbox(10);
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(jobs[2].kind, "refund");
  EXPECT_EQ(jobs[2].booking_id, seat.id);
  EXPECT_EQ(jobs[3].kind, "refund");
  EXPECT_EQ(jobs[3].booking_id, floor.id);

  // Cancelled is still live: the refund has not happened yet.
  EXPECT_EQ(outcome(store().create_booking(checkout(reserved_hold(kEvent, "b", {"orch:B:3"}, 3)))),
            "seats_unavailable");
  EXPECT_EQ(outcome(store().create_booking(checkout(general_hold(kEvent, "b", 1, 4)))), "sold_out");

  for (const Booking& booking : {seat, floor}) {
    move_to(store(), booking, BookingStatus::cancelled, BookingStatus::refunded);
  }
  EXPECT_EQ(store().pending_outbox(10).size(), 4u);  // refunding writes no further job
  EXPECT_TRUE(store().create_booking(checkout(reserved_hold(kEvent, "bob", {"orch:B:3"}, 5))).ok());
  EXPECT_TRUE(store().create_booking(checkout(general_hold(kEvent, "bob", 3, 6))).ok());
}

// --- reading -----------------------------------------------------------------------------------

// One booking in each status (two pending), plus a confirmed one in another event.
struct MixedBookings {
  Booking pending_seat, confirmed_seats, pending_floor, failed_seat, cancelled_floor, refunded_seat,
      other_event;
};

MixedBookings book_one_of_each(BookingStore& store) {
  using S = BookingStatus;
  MixedBookings m;
  m.pending_seat = book(store, checkout(reserved_hold(kEvent, "alice", {"orch:A:1"}, 11)));
  m.confirmed_seats =
      book(store, checkout(reserved_hold(kEvent, "bob", {"orch:A:2", "orch:A:3"}, 12)));
  move_to(store, m.confirmed_seats, S::pending_payment, S::confirmed);
  m.pending_floor = book(store, checkout(general_hold(kEvent, "carol", 3, 13)));
  m.failed_seat = book(store, checkout(reserved_hold(kEvent, "dave", {"orch:B:1"}, 42)));
  move_to(store, m.failed_seat, S::pending_payment, S::payment_failed);
  m.cancelled_floor = book(store, checkout(general_hold(kEvent, "erin", 2, 14)));
  move_to(store, m.cancelled_floor, S::pending_payment, S::confirmed);
  move_to(store, m.cancelled_floor, S::confirmed, S::cancelled);
  m.refunded_seat = book(store, checkout(reserved_hold(kEvent, "frank", {"orch:B:2"}, 15)));
  move_to(store, m.refunded_seat, S::pending_payment, S::confirmed);
  move_to(store, m.refunded_seat, S::confirmed, S::cancelled);
  move_to(store, m.refunded_seat, S::cancelled, S::refunded);
  m.other_event = book(store, checkout(reserved_hold("ev_other", "alice", {"orch:A:1"}, 16)));
  move_to(store, m.other_event, S::pending_payment, S::confirmed);
  return m;
}

TEST_P(BookingStoreContract, LiveClaimsAreTheBookingsThatHoldSeats) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  ASSERT_TRUE(store().create_event(concert("ev_other", kT0 + days{31})).ok());
  EXPECT_THAT(store().live_claims(kEvent), IsEmpty());
  const MixedBookings m = book_one_of_each(store());

  std::map<std::string, RestoredClaim> claims;
  for (auto& claim : store().live_claims(kEvent)) claims[claim.hold_id] = claim;
  ASSERT_EQ(claims.size(), 4u);

  const RestoredClaim& pending_seat = claims.at(m.pending_seat.hold_id);
  EXPECT_EQ(pending_seat.buyer, "alice");
  EXPECT_EQ(pending_seat.section, "orch");
  EXPECT_EQ(pending_seat.seats, (Seats{"orch:A:1"}));
  EXPECT_EQ(pending_seat.quantity, 1u);
  EXPECT_FALSE(pending_seat.sold);
  // The hold's own times come back, so a rebuilt lock store shows the hold as it was.
  EXPECT_EQ(pending_seat.hold_created_at, kT0);
  EXPECT_EQ(pending_seat.hold_expires_at, kT0 + minutes{5});

  const RestoredClaim& confirmed = claims.at(m.confirmed_seats.hold_id);
  EXPECT_EQ(confirmed.buyer, "bob");
  EXPECT_EQ(confirmed.seats, (Seats{"orch:A:2", "orch:A:3"}));
  EXPECT_EQ(confirmed.quantity, 2u);
  EXPECT_TRUE(confirmed.sold);

  const RestoredClaim& floor = claims.at(m.pending_floor.hold_id);
  EXPECT_EQ(floor.section, "floor");
  EXPECT_THAT(floor.seats, IsEmpty());
  EXPECT_EQ(floor.quantity, 3u);
  EXPECT_FALSE(floor.sold);

  const RestoredClaim& cancelled = claims.at(m.cancelled_floor.hold_id);
  EXPECT_EQ(cancelled.quantity, 2u);
  EXPECT_TRUE(cancelled.sold);  // sold until the refund
}

TEST_P(BookingStoreContract, MaxFenceIsTheHighestFenceOfAnyBooking) {
  EXPECT_EQ(store().max_fence(), 0u);
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  ASSERT_TRUE(store().create_event(concert("ev_other", kT0 + days{31})).ok());
  book_one_of_each(store());
  EXPECT_EQ(store().max_fence(), 42u);  // the failed booking's fence counts too
}

TEST_P(BookingStoreContract, CountsBookingsPerStatusAndRevenue) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  ASSERT_TRUE(store().create_event(concert("ev_other", kT0 + days{31})).ok());
  book_one_of_each(store());

  const BookingCounts counts = store().counts(kEvent);
  EXPECT_EQ(counts.pending_payment, 2u);
  EXPECT_EQ(counts.confirmed, 1u);
  EXPECT_EQ(counts.payment_failed, 1u);
  EXPECT_EQ(counts.cancelled, 1u);
  EXPECT_EQ(counts.refunded, 1u);
  // Confirmed (2 orchestra seats) plus cancelled-not-yet-refunded (2 on the floor).
  EXPECT_EQ(counts.revenue, 2 * kOrchPrice + 2 * kFloorPrice);

  const BookingCounts other = store().counts("ev_other");
  EXPECT_EQ(other.confirmed, 1u);
  EXPECT_EQ(other.revenue, kOrchPrice);
  const BookingCounts none = store().counts("ev_missing");
  EXPECT_EQ(
      none.pending_payment + none.confirmed + none.payment_failed + none.cancelled + none.refunded,
      0u);
  EXPECT_EQ(none.revenue, 0);
  EXPECT_EQ(none.payment_attempts, 0u);
  EXPECT_EQ(none.dead_lettered, 0u);
}

TEST_P(BookingStoreContract, ListsOnlyTheBuyersOwnBookingsNewestFirst) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  const Booking first =
      book(store(), checkout(general_hold(kEvent, "alice", 1, 1), kT0 + seconds{1}));
  const Booking third =
      book(store(), checkout(general_hold(kEvent, "alice", 1, 2), kT0 + seconds{3}));
  const Booking second =
      book(store(), checkout(general_hold(kEvent, "alice", 1, 3), kT0 + seconds{2}));
  const Booking bobs = book(store(), checkout(general_hold(kEvent, "bob", 1, 4), kT0 + seconds{4}));

  EXPECT_THAT(ids_of(store().list_bookings("alice", 10)),
              ElementsAre(third.id, second.id, first.id));
  EXPECT_THAT(ids_of(store().list_bookings("alice", 2)), ElementsAre(third.id, second.id));
  EXPECT_THAT(ids_of(store().list_bookings("bob", 10)), ElementsAre(bobs.id));
  EXPECT_THAT(store().list_bookings("carol", 10), IsEmpty());
  EXPECT_THAT(store().list_bookings("alice", 0), IsEmpty());
}

TEST_P(BookingStoreContract, PendingOutboxListsTheOldestJobsFirst) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  std::vector<Booking> bookings;
  for (uint64_t fence = 1; fence <= 3; ++fence) {
    bookings.push_back(book(store(), checkout(general_hold(kEvent, "alice", 1, fence))));
  }
  move_to(store(), bookings[0], BookingStatus::pending_payment, BookingStatus::confirmed);
  move_to(store(), bookings[0], BookingStatus::confirmed, BookingStatus::cancelled,
          kT0 + minutes{7});

  const auto jobs = store().pending_outbox(10);
  ASSERT_EQ(jobs.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(jobs[i].kind, "charge");
    EXPECT_EQ(jobs[i].booking_id, bookings[i].id);
  }
  EXPECT_EQ(jobs[3].kind, "refund");
  EXPECT_EQ(jobs[3].booking_id, bookings[0].id);
  EXPECT_EQ(jobs[3].created_at, kT0 + minutes{7});
  for (size_t i = 1; i < jobs.size(); ++i) EXPECT_LT(jobs[i - 1].sequence, jobs[i].sequence);

  const auto first_two = store().pending_outbox(2);
  ASSERT_EQ(first_two.size(), 2u);
  EXPECT_EQ(first_two[0].sequence, jobs[0].sequence);
  EXPECT_EQ(first_two[1].sequence, jobs[1].sequence);
  EXPECT_EQ(store().pending_outbox(10).size(), 4u);  // reading takes nothing
}

// --- payment bookkeeping -----------------------------------------------------------------------

TEST_P(BookingStoreContract, PublishedOutboxJobsLeaveThePendingSet) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  for (uint64_t fence = 1; fence <= 3; ++fence) {
    book(store(), checkout(general_hold(kEvent, "alice", 1, fence)));
  }
  const auto jobs = store().pending_outbox(10);
  ASSERT_EQ(jobs.size(), 3u);

  store().mark_outbox_published({jobs[0].sequence, jobs[2].sequence});
  auto left = store().pending_outbox(10);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].sequence, jobs[1].sequence);
  EXPECT_EQ(left[0].booking_id, jobs[1].booking_id);

  // Marking again, marking an unknown sequence or marking nothing changes nothing.
  store().mark_outbox_published({jobs[0].sequence, jobs[2].sequence + 1'000});
  store().mark_outbox_published({});
  EXPECT_EQ(store().pending_outbox(10).size(), 1u);
  // The bookings stay: only their jobs left the outbox.
  EXPECT_EQ(store().counts(kEvent).pending_payment, 3u);

  // A sequence is never given out again, even once the newest job has been published: a relay
  // may name queue jobs after it.
  store().mark_outbox_published({jobs[1].sequence});
  EXPECT_THAT(store().pending_outbox(10), IsEmpty());
  if (durable()) reopen();
  book(store(), checkout(general_hold(kEvent, "bob", 1, 4)));
  left = store().pending_outbox(10);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_GT(left[0].sequence, jobs[2].sequence);
}

TEST_P(BookingStoreContract, PaymentAttemptsAreCountedWithTheLastError) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  ASSERT_TRUE(store().create_event(concert("ev_other", kT0 + days{31})).ok());
  const Booking booking = book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:A:1"}, 1)));
  const Booking other = book(store(), checkout(reserved_hold("ev_other", "bob", {"orch:A:1"}, 2)));

  ASSERT_TRUE(
      store().record_payment_attempt(booking.id, "provider_timeout", kT0 + minutes{1}).ok());
  Booking expected = booking;
  expected.payment_attempts = 1;
  expected.last_error = "provider_timeout";
  expected.updated_at = kT0 + minutes{1};
  expect_same_booking(*store().get_booking(booking.id), expected);

  // An empty error clears the last one.
  ASSERT_TRUE(store().record_payment_attempt(booking.id, "", kT0 + minutes{2}).ok());
  expected.payment_attempts = 2;
  expected.last_error = "";
  expected.updated_at = kT0 + minutes{2};
  expect_same_booking(*store().get_booking(booking.id), expected);
  ASSERT_TRUE(store().record_payment_attempt(other.id, "card_declined", kT0 + minutes{2}).ok());

  EXPECT_EQ(store().counts(kEvent).payment_attempts, 2u);
  EXPECT_EQ(store().counts("ev_other").payment_attempts, 1u);

  auto missing = store().record_payment_attempt("bkg_missing", "x", kT0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);

  // Attempts stay counted whatever the booking becomes.
  move_to(store(), booking, BookingStatus::pending_payment, BookingStatus::confirmed);
  EXPECT_EQ(store().get_booking(booking.id)->payment_attempts, 2u);
  EXPECT_EQ(store().counts(kEvent).payment_attempts, 2u);
  if (!durable()) return;
  reopen();
  EXPECT_EQ(store().counts(kEvent).payment_attempts, 2u);
  EXPECT_EQ(store().get_booking(other.id)->last_error, "card_declined");
}

TEST_P(BookingStoreContract, ADeadLetteredBookingIsCountedOnce) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  ASSERT_TRUE(store().create_event(concert("ev_other", kT0 + days{31})).ok());
  const Booking first = book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:A:1"}, 1)));
  book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:A:2"}, 2)));
  const Booking other = book(store(), checkout(reserved_hold("ev_other", "bob", {"orch:A:1"}, 3)));
  EXPECT_EQ(store().counts(kEvent).dead_lettered, 0u);

  // A job can die more than once (the reconciler enqueues it again); the booking counts once.
  store().mark_dead_lettered(first.id);
  store().mark_dead_lettered(first.id);
  store().mark_dead_lettered("bkg_missing");
  EXPECT_EQ(store().counts(kEvent).dead_lettered, 1u);
  EXPECT_EQ(store().counts("ev_other").dead_lettered, 0u);

  move_to(store(), first, BookingStatus::pending_payment, BookingStatus::payment_failed);
  store().mark_dead_lettered(other.id);
  EXPECT_EQ(store().counts(kEvent).dead_lettered, 1u);
  EXPECT_EQ(store().counts("ev_other").dead_lettered, 1u);
  if (!durable()) return;
  reopen();
  EXPECT_EQ(store().counts(kEvent).dead_lettered, 1u);
}

TEST_P(BookingStoreContract, StaleBookingsAreTheLeastRecentlyUpdatedInAStatus) {
  ASSERT_TRUE(store().create_event(concert(kEvent, kT0 + days{30})).ok());
  std::vector<Booking> b;
  for (int i = 1; i <= 4; ++i) {
    b.push_back(book(store(), checkout(general_hold(kEvent, "alice", 1, static_cast<uint64_t>(i)),
                                       kT0 + seconds{i})));
  }
  const Booking confirmed = move_to(store(), b[3], BookingStatus::pending_payment,
                                    BookingStatus::confirmed, kT0 + seconds{5});
  using S = BookingStatus;

  // Not updated since `before`: one updated at `before` itself is not stale yet.
  EXPECT_THAT(ids_of(store().stale_bookings(S::pending_payment, kT0 + seconds{3}, 10)),
              ElementsAre(b[0].id, b[1].id));
  EXPECT_THAT(ids_of(store().stale_bookings(S::pending_payment, kT0 + seconds{10}, 10)),
              ElementsAre(b[0].id, b[1].id, b[2].id));
  EXPECT_THAT(ids_of(store().stale_bookings(S::pending_payment, kT0 + seconds{10}, 2)),
              ElementsAre(b[0].id, b[1].id));
  EXPECT_THAT(store().stale_bookings(S::pending_payment, kT0 + seconds{10}, 0), IsEmpty());
  EXPECT_THAT(store().stale_bookings(S::pending_payment, kT0, 10), IsEmpty());

  // A payment attempt is activity: the booking goes to the back of the line.
  ASSERT_TRUE(store().record_payment_attempt(b[0].id, "provider_timeout", kT0 + seconds{6}).ok());
  EXPECT_THAT(ids_of(store().stale_bookings(S::pending_payment, kT0 + seconds{10}, 10)),
              ElementsAre(b[1].id, b[2].id, b[0].id));
  EXPECT_THAT(ids_of(store().stale_bookings(S::pending_payment, kT0 + seconds{6}, 10)),
              ElementsAre(b[1].id, b[2].id));

  const auto stale_confirmed = store().stale_bookings(S::confirmed, kT0 + seconds{10}, 10);
  ASSERT_EQ(stale_confirmed.size(), 1u);
  expect_same_booking(stale_confirmed[0], confirmed);
  EXPECT_THAT(store().stale_bookings(S::cancelled, kT0 + seconds{10}, 10), IsEmpty());
}

// --- durability --------------------------------------------------------------------------------

TEST_P(BookingStoreContract, EverythingSurvivesReopening) {
  if (!durable()) GTEST_SKIP() << "this adapter keeps nothing across instances";
  const Event event = concert(kEvent, kT0 + days{30}, /*floor_capacity=*/2);
  ASSERT_TRUE(store().create_event(event).ok());
  const Booking seat = book(store(), checkout(reserved_hold(kEvent, "alice", {"orch:A:1"}, 9)));
  const Booking confirmed = move_to(store(), seat, BookingStatus::pending_payment,
                                    BookingStatus::confirmed, kT0 + minutes{4});
  const Booking floor = book(store(), checkout(general_hold(kEvent, "bob", 2, 8)));
  const auto jobs = store().pending_outbox(10);

  reopen();
  reopen();  // opening an up-to-date store changes nothing

  ASSERT_TRUE(store().get_event(kEvent).has_value());
  expect_same_event(*store().get_event(kEvent), event);
  ASSERT_TRUE(store().get_booking(seat.id).has_value());
  expect_same_booking(*store().get_booking(seat.id), confirmed);
  ASSERT_TRUE(store().find_booking_by_hold(floor.hold_id).has_value());
  expect_same_booking(*store().find_booking_by_hold(floor.hold_id), floor);
  EXPECT_EQ(store().max_fence(), 9u);
  EXPECT_EQ(store().live_claims(kEvent).size(), 2u);
  EXPECT_EQ(store().counts(kEvent).confirmed, 1u);
  const auto reopened_jobs = store().pending_outbox(10);
  ASSERT_EQ(reopened_jobs.size(), jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(reopened_jobs[i].sequence, jobs[i].sequence);
    EXPECT_EQ(reopened_jobs[i].booking_id, jobs[i].booking_id);
  }
  // The sale's guards survived too.
  EXPECT_EQ(outcome(store().create_booking(checkout(reserved_hold(kEvent, "c", {"orch:A:1"}, 10)))),
            "seats_unavailable");
  EXPECT_EQ(outcome(store().create_booking(checkout(general_hold(kEvent, "c", 1, 11)))),
            "sold_out");
  EXPECT_EQ(outcome(store().create_event(event)), "conflict");
}

}  // namespace
}  // namespace boxoffice::testing

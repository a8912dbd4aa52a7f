#include <gtest/gtest.h>

#include "domain/booking.h"
#include "domain/event.h"
#include "domain/hold.h"
#include "domain/ids.h"
#include "domain/seat_layout.h"
#include "domain/waitlist.h"
#include "ports/clock.h"

namespace boxoffice {
namespace {

using namespace std::chrono_literals;

Event sample_event() {
  Event e;
  e.name = "Night 1";
  e.currency = "USD";
  e.sections = {{"floor", "Floor", SectionKind::general, 100, 12000, {}},
                {"orch", "", SectionKind::reserved, 0, 25000, {{"A", 30}, {"B", 28}}}};
  return e;
}

TEST(Event, ValidationFillsReservedCapacityAndNames) {
  auto e = sample_event();
  ASSERT_FALSE(validate_and_normalize(e).has_value());
  EXPECT_EQ(e.sections[1].capacity, 58u);
  EXPECT_EQ(e.sections[1].name, "orch");
  EXPECT_EQ(e.capacity(), 158u);
  EXPECT_EQ(e.find_section("orch"), &e.sections[1]);
  EXPECT_EQ(e.find_section("nope"), nullptr);
}

TEST(Event, ValidationRefusesEachBrokenRule) {
  auto expect_refused = [](auto mutate, const char* what) {
    auto e = sample_event();
    mutate(e);
    auto error = validate_and_normalize(e);
    ASSERT_TRUE(error.has_value()) << what;
    EXPECT_EQ(error->code, Errc::invalid_request) << what;
    EXPECT_FALSE(error->detail.empty()) << what;
  };
  expect_refused([](Event& e) { e.name.clear(); }, "empty name");
  expect_refused([](Event& e) { e.currency = "usd"; }, "lower-case currency");
  expect_refused([](Event& e) { e.currency = "EURO"; }, "four-letter currency");
  expect_refused([](Event& e) { e.hold_ttl_seconds = 5; }, "ttl too short");
  expect_refused([](Event& e) { e.hold_ttl_seconds = 7200; }, "ttl too long");
  expect_refused([](Event& e) { e.max_seats_per_order = 0; }, "order cap 0");
  expect_refused([](Event& e) { e.max_seats_per_buyer = 0; }, "buyer cap 0");
  expect_refused([](Event& e) { e.sections.clear(); }, "no sections");
  expect_refused([](Event& e) { e.sections[1].id = "floor"; }, "duplicate section id");
  expect_refused([](Event& e) { e.sections[0].id = "fl:oor"; }, "':' in a section id");
  expect_refused([](Event& e) { e.sections[0].capacity = 0; }, "general without capacity");
  expect_refused([](Event& e) { e.sections[0].rows = {{"A", 1}}; }, "general with rows");
  expect_refused([](Event& e) { e.sections[1].rows.clear(); }, "reserved without rows");
  expect_refused([](Event& e) { e.sections[1].rows[1].name = "A"; }, "duplicate row");
  expect_refused([](Event& e) { e.sections[1].rows[0].seats = 0; }, "empty row");
  expect_refused([](Event& e) { e.sections[1].capacity = 10; }, "capacity disagreeing with rows");
  expect_refused([](Event& e) { e.sections[0].price = -1; }, "negative price");
  expect_refused([](Event& e) { e.sections[0].capacity = 3'000'000; }, "too many seats");
}

TEST(SeatLayout, ParsesAndNamesSeatsBothWays) {
  auto e = sample_event();
  ASSERT_FALSE(validate_and_normalize(e).has_value());
  SeatLayout layout(e);
  auto a1 = layout.parse("orch:A:1");
  ASSERT_TRUE(a1.has_value());
  EXPECT_EQ(a1->section, 1u);
  EXPECT_EQ(a1->index, 0u);
  auto b28 = layout.parse("orch:B:28");
  ASSERT_TRUE(b28.has_value());
  EXPECT_EQ(b28->index, 57u);
  EXPECT_EQ(layout.seat_id(1, 57), "orch:B:28");
  EXPECT_EQ(layout.seat_id(1, 30), "orch:B:1");
  for (const char* bad : {"orch:B:29", "orch:A:0", "orch:A:01", "orch:C:1", "floor:A:1", "orch:A",
                          "orch:A:1x", "orch:A:-1", "", "::", "orch:A:99999999999"}) {
    EXPECT_FALSE(layout.parse(bad).has_value()) << bad;
  }
}

TEST(Hold, IsActiveOnlyBeforeItsExpiry) {
  const auto t = *parse_rfc3339("2026-12-04T20:00:00Z");
  Hold hold;
  hold.status = HoldStatus::active;
  hold.expires_at = t;
  EXPECT_TRUE(hold.is_active_at(t - 1ms));
  EXPECT_FALSE(hold.is_active_at(t));
  hold.status = HoldStatus::checked_out;
  EXPECT_FALSE(hold.is_active_at(t - 1ms));
}

TEST(Booking, OnlyTheContractsTransitionsExist) {
  using S = BookingStatus;
  const S all[] = {S::pending_payment, S::confirmed, S::payment_failed, S::cancelled, S::refunded};
  int allowed = 0;
  for (auto from : all) {
    for (auto to : all) allowed += can_transition(from, to);
  }
  EXPECT_EQ(allowed, 4);
  EXPECT_TRUE(can_transition(S::pending_payment, S::confirmed));
  EXPECT_TRUE(can_transition(S::pending_payment, S::payment_failed));
  EXPECT_TRUE(can_transition(S::confirmed, S::cancelled));
  EXPECT_TRUE(can_transition(S::cancelled, S::refunded));
  EXPECT_FALSE(can_transition(S::pending_payment, S::cancelled));
  EXPECT_FALSE(can_transition(S::refunded, S::confirmed));
  EXPECT_TRUE(holds_seats(S::pending_payment));
  EXPECT_TRUE(holds_seats(S::cancelled));
  EXPECT_FALSE(holds_seats(S::payment_failed));
  EXPECT_FALSE(holds_seats(S::refunded));
  for (auto s : all) EXPECT_EQ(parse_booking_status(to_string(s)), s);
  EXPECT_FALSE(parse_booking_status("shipped").has_value());
}

TEST(Ids, AreUniqueWellFormedAndPrefixed) {
  const auto a = new_id("hld"), b = new_id("hld");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("hld_", 0), 0u);
  EXPECT_EQ(a.size(), 4u + 32u);
  EXPECT_TRUE(is_valid_id(a));
  EXPECT_FALSE(is_valid_id(""));
  EXPECT_FALSE(is_valid_id("a b"));
  EXPECT_FALSE(is_valid_id(std::string(65, 'a')));
}

TEST(ManualClock, MovesOnlyWhenTold) {
  const auto t = *parse_rfc3339("2026-12-04T20:00:00Z");
  ManualClock clock(t);
  EXPECT_EQ(clock.now(), t);
  clock.advance(1500ms);
  EXPECT_EQ(clock.now(), t + 1500ms);
}

}  // namespace
}  // namespace boxoffice

namespace boxoffice {
namespace {

TEST(Waitlist, OnlyTheDiagramsTransitionsExist) {
  using S = WaitlistStatus;
  const S all[] = {S::waiting, S::offered, S::converted, S::expired, S::left};
  int allowed = 0;
  for (auto from : all) {
    for (auto to : all) allowed += can_transition(from, to);
  }
  EXPECT_EQ(allowed, 6);
  EXPECT_TRUE(can_transition(S::waiting, S::offered));
  EXPECT_TRUE(can_transition(S::waiting, S::expired));  // the line cannot serve this buyer
  EXPECT_TRUE(can_transition(S::offered, S::converted));
  EXPECT_FALSE(can_transition(S::waiting, S::converted));
  EXPECT_FALSE(can_transition(S::converted, S::expired));
}

}  // namespace
}  // namespace boxoffice

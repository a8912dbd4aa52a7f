#include "domain/row_index.h"

#include <gtest/gtest.h>

namespace boxoffice {
namespace {

using Seats = std::vector<uint32_t>;

TEST(RowIndex, PicksTheCentreOfTheFrontRow) {
  RowIndex index({10, 10});
  // Row 0 has seats 0..9; four seats centred in a ten-seat row are 3..6.
  EXPECT_EQ(index.best_available(4), (Seats{3, 4, 5, 6}));
}

TEST(RowIndex, SkipsRowsWithoutALongEnoughRun) {
  RowIndex index({6, 6, 6});
  index.set_taken({0, 2, 4});                           // row 0: runs of 1
  index.set_taken({7, 9, 11});                          // row 1: seats 6, 8, 10 free, runs of 1
  EXPECT_EQ(index.best_available(2), (Seats{14, 15}));  // row 2 is 12..17; its centre is 14.5
}

TEST(RowIndex, FallsBackToTheFreeSeatsNearestTheFront) {
  RowIndex index({4, 4});
  index.set_taken({1, 3, 4, 6});  // free: 0, 2, 5, 7; no two adjacent anywhere
  EXPECT_EQ(index.best_available(3), (Seats{0, 2, 5}));
}

TEST(RowIndex, RefusesMoreThanIsFree) {
  RowIndex index({3});
  index.set_taken({0});
  EXPECT_FALSE(index.best_available(3).has_value());
  EXPECT_EQ(index.free_seats(), 2u);
}

TEST(RowIndex, FreedSeatsBecomeAvailableAgain) {
  RowIndex index({5});
  index.set_taken({0, 1, 2, 3, 4});
  EXPECT_FALSE(index.best_available(1).has_value());
  index.set_free({3, 4});
  EXPECT_EQ(index.best_available(2), (Seats{3, 4}));
  EXPECT_EQ(index.free_seats(), 2u);
}

TEST(RowIndex, ManyRowsFindTheFirstFittingRow) {
  std::vector<uint32_t> rows(1000, 20);
  RowIndex index(rows);
  Seats taken;
  for (uint32_t i = 0; i < 999 * 20; ++i) taken.push_back(i);
  index.set_taken(taken);
  const auto picked = index.best_available(20);
  ASSERT_TRUE(picked.has_value());
  EXPECT_EQ(picked->front(), 999u * 20);
}

}  // namespace
}  // namespace boxoffice

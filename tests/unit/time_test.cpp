#include "domain/time.h"

#include <gtest/gtest.h>

namespace boxoffice {
namespace {

TEST(Time, RoundTripsRfc3339) {
  const auto t = parse_rfc3339("2027-06-01T19:00:00Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(format_rfc3339(*t), "2027-06-01T19:00:00Z");
  EXPECT_EQ(to_unix_ms(*t), 1811876400000);
}

TEST(Time, KeepsMillisecondsAndOffsets) {
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-12-04T20:00:00.5+01:00")),
            "2026-12-04T19:00:00.500Z");
}

TEST(Time, RejectsMalformedTimes) {
  for (const char* bad :
       {"", "2027-06-01", "2027-06-01T19:00:00", "2027-13-01T19:00:00Z", "2027-02-30T00:00:00Z",
        "2027-06-01T25:00:00Z", "2027-06-01T19:00:00Zjunk", "2027-06-01T19:00:00.Z", "tomorrow"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace boxoffice

#include "loadgen/db_check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "adapters/postgres/pg_connection.h"

namespace boxoffice::loadgen {

namespace {

constexpr Millis kConnectTimeout{5000};
constexpr Millis kStatementTimeout{30000};
constexpr int kSeatsShownMax = 5;

constexpr PgQuery kSeatsTwice{
    "loadgen.seats_twice",
    "SELECT seat_id, count(*) FROM booking_seats WHERE event_id = $1 AND live "
    "GROUP BY seat_id HAVING count(*) > 1 ORDER BY seat_id LIMIT 5"};
constexpr PgQuery kLiveSeats{"loadgen.live_seats",
                             "SELECT count(*) FROM booking_seats WHERE event_id = $1 AND live"};
constexpr PgQuery kSections{
    "loadgen.sections",
    "SELECT s.section_id, s.capacity, s.sold, "
    "COALESCE(SUM(b.quantity) FILTER (WHERE b.status = 'confirmed'), 0) "
    "FROM section_sales s LEFT JOIN bookings b ON b.event_id = s.event_id AND b.section = "
    "s.section_id WHERE s.event_id = $1 GROUP BY s.section_id, s.capacity, s.sold "
    "ORDER BY s.section_id"};
constexpr PgQuery kStatuses{
    "loadgen.statuses",
    "SELECT status, count(*) FROM bookings WHERE event_id = $1 GROUP BY status"};

constexpr const char* kStatusNames[] = {"pending_payment", "confirmed", "payment_failed",
                                        "cancelled", "refunded"};

}  // namespace

std::vector<Check> check_database(const std::string& url, const DatabaseView& api) {
  Check seats{"database: no seat in two live bookings", {}, {}};
  Check capacity{"database: confirmed seats within capacity, as the API counts them", {}, {}};
  Check statuses{"database: bookings final, as the API counts them", {}, {}};
  try {
    PgConnection db(url, kConnectTimeout, kStatementTimeout);

    auto twice = db.query(kSeatsTwice, api.event_id);
    for (int row = 0; row < twice.rows(); ++row) {
      seats.fail(fmt::format("{} is in {} live bookings", twice.text(row, 0), twice.int64(row, 1)));
    }
    const auto live = db.query(kLiveSeats, api.event_id).int64(0, 0);
    seats.figures =
        fmt::format("{} live seat rows in booking_seats, {}", num(live),
                    seats.pass() ? "each seat in one booking only"
                                 : fmt::format("some in two (first {} shown)", kSeatsShownMax));

    auto sections = db.query(kSections, api.event_id);
    std::vector<std::string> parts;
    for (int row = 0; row < sections.rows(); ++row) {
      const auto id = sections.text(row, 0);
      const auto cap = sections.int64(row, 1), taken = sections.int64(row, 2),
                 confirmed = sections.int64(row, 3);
      if (taken > cap)
        capacity.fail(fmt::format("{}: section_sales.sold {} > capacity {}", id, taken, cap));
      if (confirmed > cap) {
        capacity.fail(
            fmt::format("{}: {} seats in confirmed bookings > capacity {}", id, confirmed, cap));
      }
      const auto said = api.sold.find(id);
      if (said == api.sold.end()) {
        capacity.fail(id + ": in the database, not in the API's stats");
      } else if (said->second != confirmed) {
        capacity.fail(fmt::format("{}: the API says {} sold, confirmed bookings hold {}", id,
                                  said->second, confirmed));
      }
      parts.push_back(fmt::format("{} {}/{}", id, num(confirmed), num(cap)));
    }
    if (sections.rows() == 0) capacity.fail("no section_sales rows for event " + api.event_id);
    capacity.figures = fmt::format("confirmed/capacity {}", fmt::join(parts, ", "));

    std::array<int64_t, 5> counted{};
    auto rows = db.query(kStatuses, api.event_id);
    for (int row = 0; row < rows.rows(); ++row) {
      const auto status = rows.text(row, 0);
      for (size_t i = 0; i < counted.size(); ++i) {
        if (status == kStatusNames[i]) counted[i] = rows.int64(row, 1);
      }
    }
    std::vector<std::string> listed;
    for (size_t i = 0; i < counted.size(); ++i) {
      if (counted[i] != api.bookings[i]) {
        statuses.fail(fmt::format("{}: {} in the database, {} per the API", kStatusNames[i],
                                  counted[i], api.bookings[i]));
      }
      listed.push_back(fmt::format("{} {}", kStatusNames[i], num(counted[i])));
    }
    if (counted[0]) statuses.fail(num(counted[0]) + " bookings still pending_payment");
    if (counted[3]) statuses.fail(num(counted[3]) + " cancelled bookings awaiting their refund");
    statuses.figures = fmt::format("bookings table: {}", fmt::join(listed, ", "));
  } catch (const StorageError& e) {
    for (auto* check : {&seats, &capacity, &statuses}) {
      check->fail(std::string{"could not read the database: "} + e.what());
    }
  }
  return {seats, capacity, statuses};
}

}  // namespace boxoffice::loadgen

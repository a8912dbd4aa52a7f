#pragma once
// The sale's invariants checked once more straight from the PostgreSQL bookings database's tables
// (migrations/postgres/001_bookings.sql), the final arbiter, next to what the API said.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadgen/sale_state.h"

namespace boxoffice::loadgen {

/// What the API said about the event once the sale was over.
struct DatabaseView {
  std::string event_id;
  /// Bookings by status: pending_payment, confirmed, payment_failed, cancelled, refunded.
  std::array<int64_t, 5> bookings{};
  std::map<std::string, int64_t> sold;  // section → seats sold, per the stats
};

/// Connects to `url` (libpq URL) and checks: no reserved seat in two live bookings; per section,
/// confirmed seats within capacity and equal to what the API counts as sold; bookings by status
/// as the API counts them, none pending. A database that cannot be read fails every check.
std::vector<Check> check_database(const std::string& url, const DatabaseView& api);

}  // namespace boxoffice::loadgen

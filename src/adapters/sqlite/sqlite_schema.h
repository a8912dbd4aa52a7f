#pragma once
// The schema of the bookings file. The Bookings DB, the idempotency records, the Payment Queue and
// the Waitlist Store live in one SQLite file, so they share one list of migrations: whichever
// store opens the file first brings all of it up to date, and a file written by an older build
// upgrades in place.

#include <cstdint>
#include <span>
#include <string_view>

#include "adapters/sqlite/sqlite_connection.h"

namespace boxoffice {

struct SqliteMigration {
  int64_t version;
  std::string_view name;
  std::string_view sql;
};

// Every migration, oldest first. Append only: a migration that has shipped is never edited.
std::span<const SqliteMigration> bookings_file_migrations();

// Applies the migrations the file lacks, each in its own write transaction, so that stores
// opening the same file at once (in this process or another) never apply one twice.
// Throws StorageError for a file from a newer build.
void migrate_bookings_file(SqliteConnection& connection);

}  // namespace boxoffice

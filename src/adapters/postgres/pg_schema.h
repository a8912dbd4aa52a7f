#pragma once
// The PostgreSQL schema of the bookings store, as numbered migrations. The SQL lives in
// migrations/postgres/NNN_name.sql and is embedded into the binary at build time (CMake writes
// pg_migrations.inc from those files), so a deployed binary carries its own schema and an
// operator can still read and review the SQL as files.

#include <cstdint>
#include <span>
#include <string_view>

#include "adapters/postgres/pg_connection.h"

namespace boxoffice {

struct PgMigration {
  int64_t version;
  std::string_view name;
  std::string_view sql;
};

// Every migration this build knows, oldest first.
std::span<const PgMigration> postgres_migrations();

// Applies the migrations the database lacks, each in its own transaction with its row in
// schema_migrations. Idempotent, and safe when several processes start at once (they queue on
// an advisory lock). Throws StorageError when the database is newer than this build.
void migrate_postgres(PgConnection& connection);

}  // namespace boxoffice

#pragma once
// The PostgreSQL schema of the bookings store, as numbered migrations. The SQL lives in
// migrations/postgres/NNN_name.sql and is embedded into the binary at build time (CMake writes
// pg_migrations.inc from those files), so a deployed binary carries its own schema and an
// operator can still read and review the SQL as files.
//
// Who applies them: `boxoffice migrate` (a deploy step), or the store when it opens with
// migrate_on_start (the default, so that a fresh database just works). A store told not to
// migrate only checks the version and refuses a database that is behind.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/postgres/pg_connection.h"

namespace boxoffice {

struct PgMigration {
  int64_t version;
  std::string_view name;
  std::string_view sql;
};

// Every migration this build knows, oldest first.
std::span<const PgMigration> postgres_migrations();
// The version of the newest of them: the version this build needs.
int64_t postgres_schema_version_needed();

struct PgSchemaStatus {
  int64_t version = 0;               // the newest migration applied; 0 for an empty database
  std::vector<PgMigration> pending;  // known to this build, not applied yet, oldest first
};

// What the database has applied, read without changing anything.
PgSchemaStatus postgres_schema_status(PgConnection& connection);

// Applies the migrations the database lacks, each in its own transaction with its row in
// schema_migrations, and returns them (empty when the schema was up to date). Idempotent, and
// safe when several processes start at once (they queue on an advisory lock). Throws
// StorageError when the database is newer than this build.
std::vector<PgMigration> migrate_postgres(PgConnection& connection);

// Throws StorageError unless every migration of this build has been applied and none newer:
// for a process that must not change the schema itself.
void check_postgres_schema(PgConnection& connection);

// For `boxoffice migrate`: a connection of its own to `url`, without a statement timeout (a
// migration may rewrite a table). Throw StorageError when the server cannot be reached.
std::vector<PgMigration> migrate_postgres(const std::string& url);
PgSchemaStatus postgres_schema_status(const std::string& url);

}  // namespace boxoffice

#include "adapters/postgres/pg_schema.h"

#include <algorithm>
#include <iterator>
#include <set>

namespace boxoffice {

namespace {

constexpr PgMigration kMigrations[] = {
#include "adapters/postgres/pg_migrations.inc"
};

// Held for the length of each migration's transaction: two processes upgrading one database
// at once apply each migration once, in order. (The key is arbitrary, fixed, and ours.)
constexpr int64_t kMigrationLockKey = 0x626f786f6666;  // "boxoff"

// `boxoffice migrate` connects once; a migration may run long, so no statement timeout (0).
constexpr Millis kMigrateStatementTimeout{0};

constexpr PgQuery kTakeMigrationLock{"migrations.lock", "SELECT pg_advisory_xact_lock($1)"};
constexpr PgQuery kCreateMigrationsTable{"migrations.create_table",
                                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                         "version bigint PRIMARY KEY, name text NOT NULL, "
                                         "applied_at timestamptz NOT NULL DEFAULT now())"};
// Read without creating the table: a process that only checks changes nothing.
constexpr PgQuery kMigrationsTableExists{"migrations.table_exists",
                                         "SELECT to_regclass('schema_migrations') IS NOT NULL"};
constexpr PgQuery kAppliedMigrations{"migrations.applied_all",
                                     "SELECT version FROM schema_migrations ORDER BY version"};
constexpr PgQuery kNewestMigration{"migrations.newest",
                                   "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"};
constexpr PgQuery kMigrationApplied{"migrations.applied",
                                    "SELECT 1 FROM schema_migrations WHERE version = $1"};
constexpr PgQuery kRecordMigration{"migrations.record",
                                   "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"};

[[noreturn]] void throw_newer(int64_t version) {
  throw StorageError("postgres: the bookings database has schema version " +
                     std::to_string(version) + ", newer than this build knows (" +
                     std::to_string(postgres_schema_version_needed()) + ")");
}

}  // namespace

std::span<const PgMigration> postgres_migrations() { return kMigrations; }

int64_t postgres_schema_version_needed() { return kMigrations[std::size(kMigrations) - 1].version; }

PgSchemaStatus postgres_schema_status(PgConnection& connection) {
  PgSchemaStatus status;
  std::set<int64_t> applied;
  if (connection.query(kMigrationsTableExists).boolean(0, 0)) {
    const PgResult rows = connection.query(kAppliedMigrations);
    for (int row = 0; row < rows.rows(); ++row) applied.insert(rows.int64(row, 0));
  }
  if (!applied.empty()) status.version = *applied.rbegin();
  for (const auto& migration : kMigrations) {
    if (!applied.contains(migration.version)) status.pending.push_back(migration);
  }
  return status;
}

std::vector<PgMigration> migrate_postgres(PgConnection& connection) {
  {
    PgTransaction tx(connection);
    connection.query(kTakeMigrationLock, kMigrationLockKey);
    connection.query(kCreateMigrationsTable);
    const int64_t newest = connection.query(kNewestMigration).int64(0, 0);
    if (newest > postgres_schema_version_needed()) throw_newer(newest);
    tx.commit();
  }
  std::vector<PgMigration> applied;
  for (const auto& migration : kMigrations) {
    PgTransaction tx(connection);
    connection.query(kTakeMigrationLock, kMigrationLockKey);
    // Checked under the lock: another process may have applied it since.
    if (connection.query(kMigrationApplied, migration.version).rows() > 0) continue;
    connection.execute_script(
        "migration " + std::to_string(migration.version) + " " + std::string(migration.name),
        migration.sql);
    connection.query(kRecordMigration, migration.version, migration.name);
    tx.commit();
    applied.push_back(migration);
  }
  return applied;
}

void check_postgres_schema(PgConnection& connection) {
  const PgSchemaStatus status = postgres_schema_status(connection);
  if (status.version > postgres_schema_version_needed()) throw_newer(status.version);
  if (!status.pending.empty()) {
    throw StorageError("the bookings database is at schema version " +
                       std::to_string(status.version) + ", this build needs " +
                       std::to_string(postgres_schema_version_needed()) +
                       ": run `boxoffice migrate`");
  }
}

std::vector<PgMigration> migrate_postgres(const std::string& url) {
  PgConnection connection(url, PgPool::connect_timeout_default, kMigrateStatementTimeout);
  return migrate_postgres(connection);
}

PgSchemaStatus postgres_schema_status(const std::string& url) {
  PgConnection connection(url, PgPool::connect_timeout_default, kMigrateStatementTimeout);
  return postgres_schema_status(connection);
}

}  // namespace boxoffice

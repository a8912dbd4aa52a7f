#include "adapters/postgres/pg_schema.h"

#include <iterator>
#include <string>

namespace boxoffice {

namespace {

constexpr PgMigration kMigrations[] = {
#include "adapters/postgres/pg_migrations.inc"
};

// Held for the length of each migration's transaction: two processes upgrading one database
// at once apply each migration once, in order. (The key is arbitrary, fixed, and ours.)
constexpr int64_t kMigrationLockKey = 0x626f786f6666;  // "boxoff"

constexpr PgQuery kTakeMigrationLock{"migrations.lock", "SELECT pg_advisory_xact_lock($1)"};
constexpr PgQuery kCreateMigrationsTable{"migrations.create_table",
                                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                         "version bigint PRIMARY KEY, name text NOT NULL, "
                                         "applied_at timestamptz NOT NULL DEFAULT now())"};
constexpr PgQuery kNewestMigration{"migrations.newest",
                                   "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"};
constexpr PgQuery kMigrationApplied{"migrations.applied",
                                    "SELECT 1 FROM schema_migrations WHERE version = $1"};
constexpr PgQuery kRecordMigration{"migrations.record",
                                   "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"};

}  // namespace

std::span<const PgMigration> postgres_migrations() { return kMigrations; }

void migrate_postgres(PgConnection& connection) {
  const int64_t known = kMigrations[std::size(kMigrations) - 1].version;
  {
    PgTransaction tx(connection);
    connection.query(kTakeMigrationLock, kMigrationLockKey);
    connection.query(kCreateMigrationsTable);
    const int64_t newest = connection.query(kNewestMigration).int64(0, 0);
    if (newest > known) {
      throw StorageError("postgres: the bookings database has schema version " +
                         std::to_string(newest) + ", newer than this build knows (" +
                         std::to_string(known) + ")");
    }
    tx.commit();
  }
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
  }
}

}  // namespace boxoffice

#include "adapters/sqlite/sqlite_schema.h"

#include <iterator>
#include <string>

namespace boxoffice {

namespace {

constexpr SqliteMigration kMigrations[] = {
    {1, "bookings, seats, sales, fences, outbox, idempotency", R"sql(
CREATE TABLE events (
  id            TEXT PRIMARY KEY,
  starts_at_ms  INTEGER NOT NULL,
  body          TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX events_by_start ON events (starts_at_ms, id);

CREATE TABLE bookings (
  id               TEXT PRIMARY KEY,
  event_id         TEXT NOT NULL REFERENCES events (id),
  hold_id          TEXT NOT NULL UNIQUE,
  buyer            TEXT NOT NULL,
  section          TEXT NOT NULL,
  quantity         INTEGER NOT NULL CHECK (quantity > 0),
  amount           INTEGER NOT NULL,
  currency         TEXT NOT NULL,
  payment_method   TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN
                     ('pending_payment', 'confirmed', 'payment_failed', 'cancelled', 'refunded')),
  fence            INTEGER NOT NULL,
  seats            TEXT NOT NULL,
  created_at_ms    INTEGER NOT NULL,
  updated_at_ms    INTEGER NOT NULL,
  payment_attempts INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX bookings_by_buyer ON bookings (buyer, created_at_ms);
CREATE INDEX bookings_by_event_status ON bookings (event_id, status);

CREATE TABLE booking_seats (
  booking_id TEXT NOT NULL REFERENCES bookings (id),
  event_id   TEXT NOT NULL,
  seat_id    TEXT NOT NULL,
  live       INTEGER NOT NULL CHECK (live IN (0, 1)),
  PRIMARY KEY (booking_id, seat_id)
) STRICT;
-- The arbiter of reserved seats: a seat can be in one live booking only.
CREATE UNIQUE INDEX booking_seats_live ON booking_seats (event_id, seat_id) WHERE live = 1;

CREATE TABLE section_sales (
  event_id   TEXT NOT NULL REFERENCES events (id),
  section_id TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('general', 'reserved')),
  capacity   INTEGER NOT NULL,
  sold       INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0 AND sold <= capacity),
  PRIMARY KEY (event_id, section_id)
) STRICT;

CREATE TABLE seat_fences (
  event_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  fence    INTEGER NOT NULL,
  PRIMARY KEY (event_id, resource)
) STRICT, WITHOUT ROWID;

CREATE TABLE outbox (
  sequence      INTEGER PRIMARY KEY AUTOINCREMENT,
  kind          TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
  booking_id    TEXT NOT NULL REFERENCES bookings (id),
  created_at_ms INTEGER NOT NULL,
  taken         INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX outbox_untaken ON outbox (sequence) WHERE taken = 0;

CREATE TABLE idempotency (
  buyer         TEXT NOT NULL,
  key           TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
  status        INTEGER,
  content_type  TEXT,
  body          BLOB,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (buyer, key)
) STRICT;
CREATE INDEX idempotency_by_age ON idempotency (created_at_ms);
)sql"},
    {2, "payment bookkeeping on bookings, payment queue", R"sql(
-- The reconciler's view of a booking: a flag, so a job that dies twice is counted once.
ALTER TABLE bookings ADD COLUMN dead_lettered INTEGER NOT NULL DEFAULT 0
  CHECK (dead_lettered IN (0, 1));
-- Bookings stuck in a status, oldest first (id breaks ties, so pages are stable).
CREATE INDEX bookings_by_status_age ON bookings (status, updated_at_ms, id);

-- The Payment Queue. A job is 'waiting' (never delivered, or waiting out a retry delay),
-- 'leased' (delivered; in flight until visible_at_ms, then visible again) or 'dead'. One row per
-- job id whatever its state, so a known id is never enqueued twice; `sequence` is the enqueue
-- order and, AUTOINCREMENT, never reused after a job is acked.
CREATE TABLE payment_jobs (
  sequence       INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  kind           TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
  booking_id     TEXT NOT NULL,
  enqueued_at_ms INTEGER NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('waiting', 'leased', 'dead')),
  visible_at_ms  INTEGER NOT NULL,
  deliveries     INTEGER NOT NULL DEFAULT 0 CHECK (deliveries >= 0)
) STRICT;
CREATE INDEX payment_jobs_due ON payment_jobs (visible_at_ms, sequence) WHERE state <> 'dead';
CREATE INDEX payment_jobs_dead ON payment_jobs (sequence) WHERE state = 'dead';
)sql"},
    {3, "waitlist entries", R"sql(
-- The Waitlist Store. `sequence` is the join order: AUTOINCREMENT, so a sequence is never reused
-- and a later join always sorts after an earlier one, whichever section it is in. Entries are
-- kept after they leave the line (converted, expired, left) for the event's counts.
CREATE TABLE waitlist_entries (
  sequence            INTEGER PRIMARY KEY AUTOINCREMENT,
  id                  TEXT NOT NULL UNIQUE,
  event_id            TEXT NOT NULL,
  section             TEXT NOT NULL,
  buyer               TEXT NOT NULL,
  quantity            INTEGER NOT NULL CHECK (quantity > 0),
  status              TEXT NOT NULL CHECK (status IN
                        ('waiting', 'offered', 'converted', 'expired', 'left')),
  offer_hold_id       TEXT,
  offer_expires_at_ms INTEGER,
  created_at_ms       INTEGER NOT NULL,
  updated_at_ms       INTEGER NOT NULL,
  -- An entry in line has no offer yet; an offered one always has both halves of it.
  CHECK (status <> 'waiting' OR (offer_hold_id IS NULL AND offer_expires_at_ms IS NULL)),
  CHECK (status <> 'offered' OR (offer_hold_id IS NOT NULL AND offer_expires_at_ms IS NOT NULL))
) STRICT;
-- The arbiter of "one live entry per buyer and section": two joins racing in different
-- processes cannot both pass it, as they could pass a prior read.
CREATE UNIQUE INDEX waitlist_live_buyer ON waitlist_entries (event_id, section, buyer)
  WHERE status IN ('waiting', 'offered');
-- The line of a section in join order: first_fitting, positions and waiting counts are range
-- scans of it, and carrying quantity lets the fit test skip entries without reading their rows.
CREATE INDEX waitlist_line ON waitlist_entries (event_id, section, status, sequence, quantity);
-- Offers by expiry, for the sweeper; only offered entries are in it.
CREATE INDEX waitlist_offers_by_expiry ON waitlist_entries (offer_expires_at_ms, sequence)
  WHERE status = 'offered';
CREATE INDEX waitlist_by_offer ON waitlist_entries (offer_hold_id) WHERE offer_hold_id IS NOT NULL;
)sql"},
    {4, "hold times on bookings", R"sql(
-- The checked-out hold's own times, so the seat lock store rebuilt after a restart shows the
-- hold as it was. NULL for bookings written before this migration.
ALTER TABLE bookings ADD COLUMN hold_created_at_ms INTEGER;
ALTER TABLE bookings ADD COLUMN hold_expires_at_ms INTEGER;
)sql"},
};

constexpr SqlQuery kCreateMigrationsTable{
    "migrations.create_table",
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT"};
constexpr SqlQuery kNewestMigration{"migrations.newest",
                                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"};
constexpr SqlQuery kMigrationApplied{"migrations.applied",
                                     "SELECT 1 FROM schema_migrations WHERE version = ?1"};
constexpr SqlQuery kRecordMigration{
    "migrations.record", "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)"};

}  // namespace

std::span<const SqliteMigration> bookings_file_migrations() { return kMigrations; }

void migrate_bookings_file(SqliteConnection& connection) {
  const int64_t known = kMigrations[std::size(kMigrations) - 1].version;
  {
    // Under the write lock: two stores creating a fresh file at once must not race here either.
    SqliteTransaction tx(connection, TxMode::write);
    connection.prepare(kCreateMigrationsTable).execute();
    int64_t newest = 0;
    {
      auto statement = connection.prepare(kNewestMigration);
      if (statement.step()) newest = statement.column_int64(0);
    }
    if (newest > known) {
      throw StorageError("sqlite: the bookings database has schema version " +
                         std::to_string(newest) + ", newer than this build knows (" +
                         std::to_string(known) + ")");
    }
    tx.commit();
  }
  // The check is repeated inside each migration's transaction: another store may have applied it
  // since.
  for (const auto& migration : kMigrations) {
    SqliteTransaction tx(connection, TxMode::write);
    if (connection.query(kMigrationApplied, migration.version).step()) continue;
    connection.execute_script(migration.name, migration.sql);
    connection.query(kRecordMigration, migration.version, migration.name).execute();
    tx.commit();
  }
}

}  // namespace boxoffice

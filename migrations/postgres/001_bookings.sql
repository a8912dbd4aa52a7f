-- Bookings, seats, section sales, fences, outbox and idempotency records: the same schema and
-- constraints as the embedded SQLite adapter (src/adapters/sqlite/sqlite_schema.cpp, migrations
-- 1, 2 and 4; the payment queue and the waitlist are not kept in PostgreSQL). Times are
-- milliseconds since the Unix epoch, as in the domain.

CREATE TABLE events (
  id            text PRIMARY KEY,
  starts_at_ms  bigint NOT NULL,
  body          jsonb NOT NULL,
  created_at_ms bigint NOT NULL
);
CREATE INDEX events_by_start ON events (starts_at_ms, id);

CREATE TABLE bookings (
  id                 text PRIMARY KEY,
  event_id           text NOT NULL REFERENCES events (id),
  hold_id            text NOT NULL CONSTRAINT bookings_hold_id_key UNIQUE,
  buyer              text NOT NULL,
  section            text NOT NULL,
  quantity           integer NOT NULL CHECK (quantity > 0),
  amount             bigint NOT NULL,
  currency           text NOT NULL,
  payment_method     text NOT NULL,
  status             text NOT NULL CHECK (status IN
                       ('pending_payment', 'confirmed', 'payment_failed', 'cancelled', 'refunded')),
  fence              bigint NOT NULL,
  seats              jsonb NOT NULL,
  created_at_ms      bigint NOT NULL,
  updated_at_ms      bigint NOT NULL,
  payment_attempts   integer NOT NULL DEFAULT 0,
  last_error         text NOT NULL DEFAULT '',
  -- The reconciler's view of a booking: a flag, so a job that dies twice is counted once.
  dead_lettered      boolean NOT NULL DEFAULT false,
  -- The checked-out hold's own times, so a seat lock store rebuilt after a restart shows the
  -- hold as it was.
  hold_created_at_ms bigint NOT NULL,
  hold_expires_at_ms bigint NOT NULL
);
CREATE INDEX bookings_by_buyer ON bookings (buyer, created_at_ms);
CREATE INDEX bookings_by_event_status ON bookings (event_id, status);
-- Bookings stuck in a status, oldest first (id breaks ties, so pages are stable).
CREATE INDEX bookings_by_status_age ON bookings (status, updated_at_ms, id);
-- max_fence() is read at every start of a seat lock store: an index lookup, not a scan.
CREATE INDEX bookings_by_fence ON bookings (fence);

CREATE TABLE booking_seats (
  booking_id text NOT NULL REFERENCES bookings (id),
  event_id   text NOT NULL,
  seat_id    text NOT NULL,
  live       boolean NOT NULL,
  PRIMARY KEY (booking_id, seat_id)
);
-- The arbiter of reserved seats: a seat can be in one live booking only.
CREATE UNIQUE INDEX booking_seats_live ON booking_seats (event_id, seat_id) WHERE live;

CREATE TABLE section_sales (
  event_id   text NOT NULL REFERENCES events (id),
  section_id text NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('general', 'reserved')),
  capacity   integer NOT NULL,
  sold       integer NOT NULL DEFAULT 0 CHECK (sold >= 0 AND sold <= capacity),
  PRIMARY KEY (event_id, section_id)
);

CREATE TABLE seat_fences (
  event_id text NOT NULL,
  resource text NOT NULL,
  fence    bigint NOT NULL,
  PRIMARY KEY (event_id, resource)
);

-- Jobs leave the outbox when the relay has published them; `sequence` is never reused.
CREATE TABLE outbox (
  sequence      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('charge', 'refund')),
  booking_id    text NOT NULL REFERENCES bookings (id),
  created_at_ms bigint NOT NULL
);

CREATE TABLE idempotency (
  buyer         text NOT NULL,
  key           text NOT NULL,
  fingerprint   text NOT NULL,
  state         text NOT NULL CHECK (state IN ('in_flight', 'done')),
  status        integer,
  content_type  text,
  body          bytea,
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  PRIMARY KEY (buyer, key)
);
CREATE INDEX idempotency_by_age ON idempotency (created_at_ms);

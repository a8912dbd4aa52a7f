-- Setup of the `booking` pgbench script (bench/baselines/pgbench-tps booking): row 3's ceiling.
--
-- The tables are boxoffice's own: pgbench-tps applies every migrations/postgres/*.sql in order
-- before this file, so the bookings and booking_seats written by booking.sql carry exactly the
-- columns, checks, foreign keys and indexes that boxoffice's checkouts maintain — among them the
-- unique bookings.hold_id and the partial unique index booking_seats_live (a seat in one live
-- booking only), the guard that matters.
--
-- This file adds the one event the bookings refer to (bookings.event_id references events).

INSERT INTO events (id, starts_at_ms, body, created_at_ms)
VALUES ('bench-event', 4102444800000, '{"id":"bench-event","name":"pgbench booking ceiling"}', 0);

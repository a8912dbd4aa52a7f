-- Row 3's ceiling (bench/baselines/pgbench-tps booking): one checkout's writes per transaction,
-- as PostgreSQL alone can commit them — one booking and its 4 seats, with no HTTP, no hold to
-- check and no batching of several checkouts into one commit (which is what boxoffice's group
-- commit adds).
--
-- The two statements are boxoffice's own (src/adapters/postgres/postgres_booking_store.cpp:
-- bookings.insert and booking_seats.insert: the seats as a JSON array — built in SQL here, a
-- parameter there — inserted through the partial unique index with ON CONFLICT ... DO NOTHING
-- RETURNING). Not done here: the rest of a checkout's transaction in boxoffice (looking up the
-- hold's booking and the section's kind, claiming the seats' fences, the outbox row). The seats
-- are distinct in every transaction (client id and a per-client counter), so none conflicts:
-- each transaction commits 1 booking and 4 live seats, which pgbench-tps checks afterwards.
--
-- Variables: :client_id (pgbench's), :n (a per-client counter: pgbench-tps defines n=0 with -D
-- and every client keeps its own copy across its transactions). With -M prepared every :var
-- becomes a parameter whose type the server infers from its use: the ::text casts keep the
-- concatenations explicit, and the millisecond times are computed with \set, as `:now - 5000`
-- in SQL would be typed integer and overflow (checked: "out of range for type integer").

\set n :n + 1
\set b :client_id * 1000000000 + :n
\set now 1800000000000 + :n
\set held :now - 5000
\set expires :now + 10000
BEGIN;
INSERT INTO bookings (id, event_id, hold_id, buyer, section, quantity, amount, currency,
                      payment_method, status, fence, seats, created_at_ms, updated_at_ms,
                      payment_attempts, last_error, hold_created_at_ms, hold_expires_at_ms)
VALUES ('bk-' || :b::text, 'bench-event', 'h-' || :b::text, 'buyer-' || :client_id::text, 'orch', 4,
        34000, 'EUR', 'pm_card_ok', 'pending_payment', :b,
        jsonb_build_array('s' || :b::text || '-1', 's' || :b::text || '-2', 's' || :b::text || '-3', 's' || :b::text || '-4'),
        :now, :now, 0, '', :held, :expires);
INSERT INTO booking_seats (booking_id, event_id, seat_id, live)
SELECT 'bk-' || :b::text, 'bench-event', seat, true
FROM jsonb_array_elements_text(jsonb_build_array('s' || :b::text || '-1', 's' || :b::text || '-2', 's' || :b::text || '-3', 's' || :b::text || '-4')) AS seat
ORDER BY seat
ON CONFLICT (event_id, seat_id) WHERE live DO NOTHING
RETURNING seat_id;
COMMIT;

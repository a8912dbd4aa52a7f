-- Row 4, peer 1 (bench/baselines/pgbench-tps alfio): alf.io's reservation of 4 tickets of one
-- category, as its TicketReservationManager.createTicketReservation does it in one transaction
-- (alfio-event/alf.io; statements from TicketReservationRepository.createNewReservation and
-- TicketRepository.selectTicketInCategoryForUpdateSkipLocked / batchReserveTickets):
--   1. insert the reservation (tickets_reservation, status PENDING, valid for 25 minutes);
--   2. lock the first 4 FREE tickets of the category by id, skipping those another transaction
--      holds locked (FOR UPDATE SKIP LOCKED);
--   3. set them PENDING in that reservation (alf.io sends one UPDATE per ticket in a JDBC batch;
--      here one UPDATE ... WHERE id = ANY of the 4 ids, which is no more work for the server);
--   4. commit.
-- pgbench's \gset takes one row, so step 2's ids come back as one array (array_agg over the
-- locked rows). If fewer than 4 tickets are left alf.io throws NotEnoughTicketsException and rolls
-- back; with 2,000,000 tickets that does not happen, and pgbench-tps checks afterwards that
-- PENDING tickets = 4 x transactions.
--
-- Variables: :client_id, :n (a per-client counter, defined with -D n=0 by pgbench-tps).

\set n :n + 1
\set r :client_id * 1000000000 + :n
BEGIN;
INSERT INTO tickets_reservation (id, validity, status, user_language, creation_ts, event_id_fk,
                                 currency_code)
VALUES (lpad(:r::text, 36, '0'), now() + interval '25 minutes', 'PENDING', 'en', now(), 1, 'EUR');
SELECT array_agg(id) AS ids FROM (
  SELECT id FROM ticket
  WHERE status IN ('FREE') AND category_id = 1 AND event_id = 1 AND tickets_reservation_id IS NULL
  ORDER BY id LIMIT 4 FOR UPDATE SKIP LOCKED
) AS locked \gset
UPDATE ticket SET tickets_reservation_id = lpad(:r::text, 36, '0'), status = 'PENDING',
  category_id = 1, user_language = 'en', src_price_cts = 8500, currency_code = 'EUR',
  metadata = '{}'::jsonb, vat_status = 'INCLUDED', first_name = NULL, last_name = NULL,
  email_address = NULL
WHERE id = ANY (:ids::int[]);
COMMIT;

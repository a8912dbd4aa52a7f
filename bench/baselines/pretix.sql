-- Row 4, peer 2 (bench/baselines/pgbench-tps pretix): pretix's way of putting 4 tickets in a cart,
-- CartManager._perform_operations (pretix/pretix, src/pretix/base/services/cart.py) with the quota
-- recount of QuotaAvailability (src/pretix/base/services/quotas.py), in one transaction:
--   1. lock_objects (services/locking.py): SET LOCAL lock_timeout = '3s', then one SELECT taking
--      the event's advisory lock shared and the quota's exclusive — pg_advisory_xact_lock, keys
--      (id << 33) | keyspace (Event 1, Quota 2): event 1 -> 8589934593, quota 1 -> 8589934594.
--      Every cart of the quota waits here, one at a time, until the holder commits;
--   2. recount the quota under the lock, with QuotaAvailability's queries: the quota's items and
--      variations, then the order positions of paid and pending orders, the quota-blocking
--      vouchers, the live cart positions (expires >= now) and the waiting list — each grouped as
--      Django groups it, summed here into one number per query for pgbench's \gset;
--   3. if size minus those counts leaves 4, insert the cart positions: one row per ticket, 4 rows
--      in one INSERT (Django's bulk_create), expiring in 30 minutes (pretix's reservation_time);
--   4. commit.
-- The recount visits every live cart position of the quota's items, so its cost grows with the
-- carts created, as in pretix. What is not reproduced: the reads pretix makes before the
-- transaction other than the quota's size (the item, the event's settings), the cache write of
-- the quota's availability (pretix rewrites it only when its cached state is stale or improves),
-- and recompute_final_prices_and_taxes after it. pretix also caches availability in Redis, but
-- for showing it on the shop's pages; the cart's check under the lock always counts in the
-- database, as here.
--
-- Variables: :client_id, :n (a per-client counter, defined with -D n=0 by pgbench-tps).

\set n :n + 1
\set c :client_id * 1000000000 + :n
SELECT size FROM pretixbase_quota WHERE id = 1 \gset
BEGIN;
SET LOCAL lock_timeout = '3s';
SELECT pg_advisory_xact_lock_shared(8589934593), pg_advisory_xact_lock(8589934594);
SELECT count(*) AS quota_items FROM (
  SELECT quota_id, item_id FROM pretixbase_quota_items WHERE quota_id IN (1)
) AS qi \gset
SELECT count(*) AS quota_variations FROM (
  SELECT quota_id, itemvariation_id FROM pretixbase_quota_variations WHERE quota_id IN (1)
) AS qv \gset
SELECT COALESCE(sum(c), 0) AS ordered FROM (
  SELECT o.status, op.item_id, op.subevent_id, op.variation_id, count(*) AS c
  FROM pretixbase_orderposition op JOIN pretixbase_order o ON o.id = op.order_id
  WHERE op.canceled = false AND o.status IN ('p', 'n') AND o.event_id IN (1)
    AND op.subevent_id IS NULL AND op.variation_id IS NULL AND op.item_id IN (1)
  GROUP BY o.status, op.item_id, op.subevent_id, op.variation_id
) AS lines \gset
SELECT COALESCE(sum(free), 0) AS vouchers FROM (
  SELECT subevent_id, item_id, quota_id, variation_id,
         sum(GREATEST(max_usages - redeemed, 0)) AS free
  FROM pretixbase_voucher
  WHERE event_id IN (1) AND subevent_id IS NULL AND block_quota
    AND (valid_until IS NULL OR valid_until >= now())
    AND ((variation_id IS NULL AND item_id IN (1)) OR quota_id IN (1))
  GROUP BY subevent_id, item_id, quota_id, variation_id
) AS lines \gset
SELECT COALESCE(sum(c), 0) AS carts FROM (
  SELECT cp.item_id, cp.subevent_id, cp.variation_id, count(*) AS c
  FROM pretixbase_cartposition cp LEFT OUTER JOIN pretixbase_voucher v ON v.id = cp.voucher_id
  WHERE cp.event_id IN (1) AND cp.subevent_id IS NULL AND cp.expires >= now()
    AND (cp.voucher_id IS NULL OR NOT v.block_quota OR v.valid_until < now())
    AND cp.variation_id IS NULL AND cp.item_id IN (1)
  GROUP BY cp.item_id, cp.subevent_id, cp.variation_id
) AS lines \gset
SELECT COALESCE(sum(c), 0) AS waiting FROM (
  SELECT item_id, subevent_id, variation_id, count(*) AS c
  FROM pretixbase_waitinglistentry
  WHERE event_id IN (1) AND voucher_id IS NULL AND subevent_id IS NULL
    AND variation_id IS NULL AND item_id IN (1)
  GROUP BY item_id, subevent_id, variation_id
) AS lines \gset
\set available :size - :ordered - :vouchers - :carts - :waiting
\if :available >= 4
INSERT INTO pretixbase_cartposition (event_id, cart_id, item_id, datetime, expires, price,
                                     listed_price, price_after_voucher, line_price_gross, tax_rate)
VALUES (1, 'cart-' || :c::text, 1, now(), now() + interval '30 minutes', 85.00, 85.00, 85.00, 85.00, 0),
       (1, 'cart-' || :c::text, 1, now(), now() + interval '30 minutes', 85.00, 85.00, 85.00, 85.00, 0),
       (1, 'cart-' || :c::text, 1, now(), now() + interval '30 minutes', 85.00, 85.00, 85.00, 85.00, 0),
       (1, 'cart-' || :c::text, 1, now(), now() + interval '30 minutes', 85.00, 85.00, 85.00, 85.00, 0);
\endif
COMMIT;

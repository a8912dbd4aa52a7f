-- One checkout in one statement, so a checkout costs one client/server round trip instead of
-- eight (src/adapters/postgres/postgres_booking_store.h explains the isolation and the batching).
-- The function does what the client did statement by statement before, in the same order and
-- with the same guards: each statement inside it takes a fresh snapshot (a VOLATILE function
-- under READ COMMITTED), and the guarded UPDATE, the fence upsert and the inserts under unique
-- indexes re-check their conditions on the newest row versions exactly as when the client sent
-- them one by one.
--
-- What it guarantees the caller: a checkout it refuses, or that fails, has written nothing. Its
-- writes run in one block with an exception handler (one subtransaction, as the client's
-- SAVEPOINT was): a refusal found after a write raises BX001, which undoes the block, and the
-- outcome says why. Any other error (a deadlock 40P01, a serialization failure 40001, a statement
-- timeout...) also undoes the block and is reported, SQLSTATE first, as outcome 'error': the
-- statement itself succeeds, so the caller's transaction (a group-commit batch) stays usable and
-- keeps the other checkouts' writes, and the caller raises the error as it would have raised the
-- failed statement's (a deadlock is retried). Nothing is retried or hidden here.
--
-- The insert of the booking is ON CONFLICT DO NOTHING rather than a nested block catching
-- unique_violation: a nested block would be a second subtransaction with an xid per checkout,
-- and a batch of 64 checkouts would overflow PostgreSQL's cache of 64 subtransaction ids per
-- backend. A racing insert of the same hold (or booking id) still waits for the other
-- transaction and then skips (it committed) or inserts (it rolled back); which unique index
-- refused is told by looking the hold up again, in a fresh snapshot.
--
-- Outcomes: 'booked' (the booking is the caller's request); 'existing' (this hold's booking,
-- in `booking`, from an earlier checkout); refusals 'hold_expired', 'not_found' (no such
-- section), 'invalid_request' (the hold's shape does not fit the section; `detail` is the
-- section's kind), 'conflict' (the booking id is taken), 'sold_out', 'fenced_out' (`detail`: the
-- first seat a newer hold booked), 'seats_unavailable' (`detail`: a JSON array of the seats
-- taken, in the hold's order); 'error' (`detail`: SQLSTATE, a space, the message).
CREATE OR REPLACE FUNCTION boxoffice_checkout(
  p_booking_id text, p_event_id text, p_hold_id text, p_buyer text, p_section text,
  p_quantity integer, p_amount bigint, p_currency text, p_payment_method text, p_fence bigint,
  p_seats jsonb, p_now_ms bigint, p_hold_created_at_ms bigint, p_hold_expires_at_ms bigint,
  -- The section kind the hold's shape fits ('general': a quantity and no seats; 'reserved': as
  -- many distinct seats as its quantity), '' for none: judged by the caller (check_hold_shape).
  p_shape_fits text,
  OUT outcome text, OUT detail text, OUT booking bookings)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_kind text;
  v_claimed text[];
  v_inserted text[];
  v_unavailable jsonb;
BEGIN
  -- Every statement runs in one block: the writes are undone together on a refusal or an error.
  BEGIN
    -- Before the expiry check: a retried checkout whose first answer was lost gets its booking,
    -- which stands whatever the time is now (a checkout earlier in the same batch counts too).
    SELECT * INTO booking FROM bookings WHERE hold_id = p_hold_id;
    IF FOUND THEN
      outcome := 'existing';
      RETURN;
    END IF;
    IF NOT (p_now_ms < p_hold_expires_at_ms) THEN
      outcome := 'hold_expired';
      RETURN;
    END IF;
    SELECT kind INTO v_kind FROM section_sales
     WHERE event_id = p_event_id AND section_id = p_section;
    IF NOT FOUND THEN
      outcome := 'not_found';
      RETURN;
    END IF;
    IF p_shape_fits IS DISTINCT FROM v_kind THEN
      outcome := 'invalid_request';
      detail := v_kind;
      RETURN;
    END IF;

    -- First, so a second checkout of the same hold racing this one waits here on the unique
    -- hold_id, and then returns the booking this one committed.
    INSERT INTO bookings (id, event_id, hold_id, buyer, section, quantity, amount, currency,
                          payment_method, status, fence, seats, created_at_ms, updated_at_ms,
                          payment_attempts, last_error, hold_created_at_ms, hold_expires_at_ms)
    VALUES (p_booking_id, p_event_id, p_hold_id, p_buyer, p_section, p_quantity, p_amount,
            p_currency, p_payment_method, 'pending_payment', p_fence, p_seats, p_now_ms, p_now_ms,
            0, '', p_hold_created_at_ms, p_hold_expires_at_ms)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      -- Nothing was written. The hold's booking, or else the booking id was taken.
      SELECT * INTO booking FROM bookings WHERE hold_id = p_hold_id;
      outcome := CASE WHEN FOUND THEN 'existing' ELSE 'conflict' END;
      RETURN;
    END IF;

    IF v_kind = 'general' THEN
      -- Many holders share a general section, so a per-section fence would refuse valid holds;
      -- capacity and the expiry check are what protect it. The capacity guard is evaluated again
      -- on the newest row version after waiting for a concurrent checkout's lock.
      UPDATE section_sales SET sold = sold + p_quantity
       WHERE event_id = p_event_id AND section_id = p_section AND sold + p_quantity <= capacity;
      IF NOT FOUND THEN
        outcome := 'sold_out';
        RAISE EXCEPTION USING ERRCODE = 'BX001';
      END IF;
    ELSE
      -- The hold's fence on each of its seats unless a newer holder has already booked it;
      -- sorted, so every checkout locks fence rows in one order.
      WITH claimed AS (
        INSERT INTO seat_fences (event_id, resource, fence)
        SELECT p_event_id, seat, p_fence FROM jsonb_array_elements_text(p_seats) AS seat
         ORDER BY seat
        ON CONFLICT (event_id, resource) DO UPDATE SET fence = excluded.fence
         WHERE excluded.fence >= seat_fences.fence
        RETURNING resource)
      SELECT array_agg(resource) INTO v_claimed FROM claimed;
      SELECT seat INTO detail
        FROM jsonb_array_elements_text(p_seats) WITH ORDINALITY AS s (seat, n)
       WHERE seat <> ALL (COALESCE(v_claimed, '{}'))
       ORDER BY n LIMIT 1;
      IF FOUND THEN
        outcome := 'fenced_out';
        RAISE EXCEPTION USING ERRCODE = 'BX001';
      END IF;
    END IF;

    -- The partial unique index decides: a seat in a live booking is skipped, not inserted. A
    -- racing insert of the same seat waits for the other transaction, then is skipped (it
    -- committed) or goes in (it rolled back).
    WITH inserted AS (
      INSERT INTO booking_seats (booking_id, event_id, seat_id, live)
      SELECT p_booking_id, p_event_id, seat, true FROM jsonb_array_elements_text(p_seats) AS seat
       ORDER BY seat
      ON CONFLICT (event_id, seat_id) WHERE live DO NOTHING
      RETURNING seat_id)
    SELECT array_agg(seat_id) INTO v_inserted FROM inserted;
    SELECT jsonb_agg(seat ORDER BY n) INTO v_unavailable
      FROM jsonb_array_elements_text(p_seats) WITH ORDINALITY AS s (seat, n)
     WHERE seat <> ALL (COALESCE(v_inserted, '{}'));
    IF v_unavailable IS NOT NULL THEN
      outcome := 'seats_unavailable';
      detail := v_unavailable::text;
      RAISE EXCEPTION USING ERRCODE = 'BX001';
    END IF;

    INSERT INTO outbox (kind, booking_id, created_at_ms) VALUES ('charge', p_booking_id, p_now_ms);
    outcome := 'booked';
  EXCEPTION
    WHEN SQLSTATE 'BX001' THEN
      NULL;  -- a refusal: the block's writes are undone, `outcome` and `detail` say why
    WHEN OTHERS OR query_canceled THEN
      -- Undone too, and reported rather than raised (see above). query_canceled is named
      -- because OTHERS leaves it out: a statement timeout fails this checkout, not its batch.
      outcome := 'error';
      detail := SQLSTATE || ' ' || SQLERRM;
      booking := NULL;
  END;
END
$$;

-- Setup of the `alfio` pgbench script (bench/baselines/pgbench-tps alfio): alf.io's tables for
-- a reservation, reduced to the columns its reservation statements touch, with alf.io's keys and
-- indexes (alf.io's PostgreSQL migrations, alfio-event/alf.io, src/main/resources/alfio/db/PGSQL:
-- V1__INITIAL_VERSION.sql and V5__INDEX.sql, plus the ticket columns added later and written by
-- batchReserveTickets). Not reproduced: alf.io's row-level security policies on ticket (V200+),
-- which would only add to its cost.
--
-- alf.io keeps one row per ticket, created FREE when the event is set up: here one event, one
-- category, :tickets tickets (pgbench-tps passes 2,000,000 unless ALFIO_TICKETS says otherwise), so
-- a run never sells out.

CREATE TABLE event (
  id          serial PRIMARY KEY,
  short_name  varchar(2048) NOT NULL UNIQUE,
  currency    varchar(3),
  vat_status  varchar(50)
);

CREATE TABLE ticket_category (
  id            serial PRIMARY KEY,
  inception     timestamptz NOT NULL,
  expiration    timestamptz NOT NULL,
  max_tickets   integer NOT NULL,
  name          varchar(255) NOT NULL,
  src_price_cts integer NOT NULL,
  bounded       boolean NOT NULL DEFAULT true,
  event_id      integer NOT NULL REFERENCES event (id)
);
CREATE INDEX ticket_category_event_id_idx ON ticket_category (event_id);

CREATE TABLE tickets_reservation (
  id            character(36) PRIMARY KEY,
  validity      timestamptz NOT NULL,
  status        varchar(255) NOT NULL,
  full_name     varchar(255),
  email_address varchar(255),
  user_language varchar(20),
  creation_ts   timestamptz,
  event_id_fk   integer REFERENCES event (id),
  currency_code varchar(3)
);

CREATE TABLE ticket (
  id                     serial NOT NULL,
  uuid                   character(36) NOT NULL,
  creation               timestamptz NOT NULL,
  category_id            integer REFERENCES ticket_category (id),
  event_id               integer NOT NULL REFERENCES event (id),
  status                 varchar(255) NOT NULL,
  original_price_cts     integer NOT NULL,
  paid_price_cts         integer NOT NULL,
  tickets_reservation_id character(36) REFERENCES tickets_reservation (id),
  full_name              varchar(255),
  first_name             varchar(255),
  last_name              varchar(255),
  email_address          varchar(255),
  special_price_id_fk    integer,
  user_language          varchar(20),
  src_price_cts          integer NOT NULL DEFAULT 0,
  currency_code          varchar(3),
  vat_status             varchar(50),
  metadata               jsonb NOT NULL DEFAULT '{}'
);

INSERT INTO event (short_name, currency, vat_status) VALUES ('flash-sale', 'EUR', 'INCLUDED');
INSERT INTO ticket_category (inception, expiration, max_tickets, name, src_price_cts, event_id)
VALUES (now() - interval '1 day', now() + interval '30 days', :tickets, 'General', 8500, 1);

-- alf.io's bulkTicketInitialization: every ticket FREE in its category. Loaded before the keys and
-- indexes are built, as a bulk load should be (the end state is alf.io's).
INSERT INTO ticket (uuid, creation, category_id, event_id, status, original_price_cts,
                    paid_price_cts, src_price_cts)
SELECT gen_random_uuid()::text, now(), 1, 1, 'FREE', 0, 0, 8500
FROM generate_series(1, :tickets);

ALTER TABLE ticket ADD CONSTRAINT ticket_pkey PRIMARY KEY (id);
ALTER TABLE ticket ADD CONSTRAINT unique_ticket_uuid UNIQUE (uuid);
ALTER TABLE ticket ADD CONSTRAINT unique_special_price UNIQUE (special_price_id_fk);
CREATE INDEX ticket_category_id_idx ON ticket (category_id);
CREATE INDEX ticket_event_id_idx ON ticket (event_id);
CREATE INDEX ticket_tickets_reservation_id_idx ON ticket (tickets_reservation_id);

-- Not alf.io's: with ALFIO_INDEX=free, pgbench-tps asks for a partial index of the category's FREE
-- tickets by id — what a DBA might add before a big sale — which lets the SELECT start at the
-- first free ticket. With alf.io's own indexes the planner walks the primary key from the lowest
-- id and filters out every ticket reserved so far, so each reservation costs more than the last
-- (EXPLAIN ANALYZE: "Rows Removed by Filter" = tickets reserved) and the figure falls with the
-- length of the run. (A general partial index, (event_id, category_id, id) or (id) WHERE status =
-- 'FREE' AND tickets_reservation_id IS NULL, is not chosen on a fresh table: the planner costs it
-- dearer than the primary key. This one, on a fresh table, costs exactly what the primary key
-- costs, and of two equal paths the planner keeps the index created last; pgbench-tps checks the
-- plan before the run.)
\if :free_index
CREATE INDEX ticket_free_by_id ON ticket (id)
  WHERE event_id = 1 AND category_id = 1 AND status = 'FREE' AND tickets_reservation_id IS NULL;
\endif

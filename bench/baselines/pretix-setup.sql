-- Setup of the `pretix` pgbench script (bench/baselines/pgbench-tps pretix): pretix's tables that
-- its quota check and cart reads and writes (pretix/pretix, src/pretix/base/models: Event, Item,
-- Quota with its items/variations, Order, OrderPosition, Voucher, WaitingListEntry, CartPosition),
-- reduced to the columns those statements touch, with the indexes Django creates for them (one
-- per foreign key, plus CartPosition's db_index on cart_id and expires).
--
-- One event, one item (a ticket), one quota of :quota_size (pgbench-tps passes 10,000,000 unless
-- PRETIX_QUOTA says otherwise) covering it, so a run never sells out. No orders, vouchers or
-- waiting-list entries at the start: the recount then costs what the live carts cost, and the
-- carts are what a flash sale's holds create.

CREATE TABLE pretixbase_event (
  id   serial PRIMARY KEY,
  slug varchar(50) NOT NULL
);

CREATE TABLE pretixbase_item (
  id            serial PRIMARY KEY,
  event_id      integer NOT NULL REFERENCES pretixbase_event (id) DEFERRABLE INITIALLY DEFERRED,
  name          text NOT NULL,
  default_price numeric(13, 2) NOT NULL
);
CREATE INDEX pretixbase_item_event_id ON pretixbase_item (event_id);

CREATE TABLE pretixbase_itemvariation (
  id      serial PRIMARY KEY,
  item_id integer NOT NULL REFERENCES pretixbase_item (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX pretixbase_itemvariation_item_id ON pretixbase_itemvariation (item_id);

CREATE TABLE pretixbase_subevent (
  id       serial PRIMARY KEY,
  event_id integer NOT NULL REFERENCES pretixbase_event (id) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE pretixbase_quota (
  id                              serial PRIMARY KEY,
  event_id                        integer NOT NULL REFERENCES pretixbase_event (id) DEFERRABLE INITIALLY DEFERRED,
  subevent_id                     integer REFERENCES pretixbase_subevent (id) DEFERRABLE INITIALLY DEFERRED,
  name                            varchar(200) NOT NULL,
  size                            integer,
  closed                          boolean NOT NULL DEFAULT false,
  close_when_sold_out             boolean NOT NULL DEFAULT false,
  cached_availability_state       integer,
  cached_availability_number      integer,
  cached_availability_paid_orders integer,
  cached_availability_time        timestamptz
);
CREATE INDEX pretixbase_quota_event_id ON pretixbase_quota (event_id);
CREATE INDEX pretixbase_quota_subevent_id ON pretixbase_quota (subevent_id);

CREATE TABLE pretixbase_quota_items (
  id       serial PRIMARY KEY,
  quota_id integer NOT NULL REFERENCES pretixbase_quota (id) DEFERRABLE INITIALLY DEFERRED,
  item_id  integer NOT NULL REFERENCES pretixbase_item (id) DEFERRABLE INITIALLY DEFERRED,
  UNIQUE (quota_id, item_id)
);
CREATE INDEX pretixbase_quota_items_quota_id ON pretixbase_quota_items (quota_id);
CREATE INDEX pretixbase_quota_items_item_id ON pretixbase_quota_items (item_id);

CREATE TABLE pretixbase_quota_variations (
  id               serial PRIMARY KEY,
  quota_id         integer NOT NULL REFERENCES pretixbase_quota (id) DEFERRABLE INITIALLY DEFERRED,
  itemvariation_id integer NOT NULL REFERENCES pretixbase_itemvariation (id) DEFERRABLE INITIALLY DEFERRED,
  UNIQUE (quota_id, itemvariation_id)
);
CREATE INDEX pretixbase_quota_variations_quota_id ON pretixbase_quota_variations (quota_id);

CREATE TABLE pretixbase_order (
  id       serial PRIMARY KEY,
  code     varchar(16) NOT NULL,
  status   varchar(3) NOT NULL,
  event_id integer NOT NULL REFERENCES pretixbase_event (id) DEFERRABLE INITIALLY DEFERRED,
  datetime timestamptz NOT NULL,
  expires  timestamptz NOT NULL,
  total    numeric(13, 2) NOT NULL
);
CREATE INDEX pretixbase_order_event_id ON pretixbase_order (event_id);
CREATE INDEX pretixbase_order_status ON pretixbase_order (status);

CREATE TABLE pretixbase_orderposition (
  id           serial PRIMARY KEY,
  order_id     integer NOT NULL REFERENCES pretixbase_order (id) DEFERRABLE INITIALLY DEFERRED,
  positionid   integer NOT NULL,
  item_id      integer NOT NULL REFERENCES pretixbase_item (id) DEFERRABLE INITIALLY DEFERRED,
  variation_id integer REFERENCES pretixbase_itemvariation (id) DEFERRABLE INITIALLY DEFERRED,
  subevent_id  integer REFERENCES pretixbase_subevent (id) DEFERRABLE INITIALLY DEFERRED,
  price        numeric(13, 2) NOT NULL,
  canceled     boolean NOT NULL DEFAULT false
);
CREATE INDEX pretixbase_orderposition_order_id ON pretixbase_orderposition (order_id);
CREATE INDEX pretixbase_orderposition_item_id ON pretixbase_orderposition (item_id);
CREATE INDEX pretixbase_orderposition_variation_id ON pretixbase_orderposition (variation_id);
CREATE INDEX pretixbase_orderposition_subevent_id ON pretixbase_orderposition (subevent_id);

CREATE TABLE pretixbase_voucher (
  id           serial PRIMARY KEY,
  event_id     integer NOT NULL REFERENCES pretixbase_event (id) DEFERRABLE INITIALLY DEFERRED,
  code         varchar(255) NOT NULL,
  max_usages   integer NOT NULL,
  redeemed     integer NOT NULL DEFAULT 0,
  valid_until  timestamptz,
  block_quota  boolean NOT NULL DEFAULT false,
  item_id      integer REFERENCES pretixbase_item (id) DEFERRABLE INITIALLY DEFERRED,
  variation_id integer REFERENCES pretixbase_itemvariation (id) DEFERRABLE INITIALLY DEFERRED,
  quota_id     integer REFERENCES pretixbase_quota (id) DEFERRABLE INITIALLY DEFERRED,
  subevent_id  integer REFERENCES pretixbase_subevent (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX pretixbase_voucher_event_id ON pretixbase_voucher (event_id);
CREATE INDEX pretixbase_voucher_item_id ON pretixbase_voucher (item_id);
CREATE INDEX pretixbase_voucher_quota_id ON pretixbase_voucher (quota_id);

CREATE TABLE pretixbase_waitinglistentry (
  id           serial PRIMARY KEY,
  event_id     integer NOT NULL REFERENCES pretixbase_event (id) DEFERRABLE INITIALLY DEFERRED,
  item_id      integer NOT NULL REFERENCES pretixbase_item (id) DEFERRABLE INITIALLY DEFERRED,
  variation_id integer REFERENCES pretixbase_itemvariation (id) DEFERRABLE INITIALLY DEFERRED,
  subevent_id  integer REFERENCES pretixbase_subevent (id) DEFERRABLE INITIALLY DEFERRED,
  voucher_id   integer REFERENCES pretixbase_voucher (id) DEFERRABLE INITIALLY DEFERRED,
  email        varchar(254) NOT NULL,
  created      timestamptz NOT NULL
);
CREATE INDEX pretixbase_waitinglistentry_event_id ON pretixbase_waitinglistentry (event_id);
CREATE INDEX pretixbase_waitinglistentry_item_id ON pretixbase_waitinglistentry (item_id);
CREATE INDEX pretixbase_waitinglistentry_voucher_id ON pretixbase_waitinglistentry (voucher_id);

CREATE TABLE pretixbase_cartposition (
  id                        serial PRIMARY KEY,
  event_id                  integer NOT NULL REFERENCES pretixbase_event (id) DEFERRABLE INITIALLY DEFERRED,
  cart_id                   varchar(255),
  item_id                   integer NOT NULL REFERENCES pretixbase_item (id) DEFERRABLE INITIALLY DEFERRED,
  variation_id              integer REFERENCES pretixbase_itemvariation (id) DEFERRABLE INITIALLY DEFERRED,
  subevent_id               integer REFERENCES pretixbase_subevent (id) DEFERRABLE INITIALLY DEFERRED,
  voucher_id                integer REFERENCES pretixbase_voucher (id) DEFERRABLE INITIALLY DEFERRED,
  addon_to_id               integer REFERENCES pretixbase_cartposition (id) DEFERRABLE INITIALLY DEFERRED,
  seat_id                   integer,
  datetime                  timestamptz NOT NULL,
  expires                   timestamptz NOT NULL,
  price                     numeric(13, 2) NOT NULL,
  listed_price              numeric(13, 2),
  price_after_voucher       numeric(13, 2),
  line_price_gross          numeric(13, 2),
  tax_rate                  numeric(7, 2) NOT NULL DEFAULT 0,
  includes_tax              boolean NOT NULL DEFAULT true,
  is_bundled                boolean NOT NULL DEFAULT false,
  custom_price_input        numeric(13, 2),
  custom_price_input_is_net boolean NOT NULL DEFAULT false,
  attendee_name_cached      varchar(255),
  attendee_name_parts       jsonb NOT NULL DEFAULT '{}',
  attendee_email            varchar(254)
);
CREATE INDEX pretixbase_cartposition_event_id ON pretixbase_cartposition (event_id);
CREATE INDEX pretixbase_cartposition_cart_id ON pretixbase_cartposition (cart_id);
CREATE INDEX pretixbase_cartposition_expires ON pretixbase_cartposition (expires);
CREATE INDEX pretixbase_cartposition_item_id ON pretixbase_cartposition (item_id);
CREATE INDEX pretixbase_cartposition_variation_id ON pretixbase_cartposition (variation_id);
CREATE INDEX pretixbase_cartposition_subevent_id ON pretixbase_cartposition (subevent_id);
CREATE INDEX pretixbase_cartposition_voucher_id ON pretixbase_cartposition (voucher_id);
CREATE INDEX pretixbase_cartposition_addon_to_id ON pretixbase_cartposition (addon_to_id);

INSERT INTO pretixbase_event (slug) VALUES ('flash-sale');
INSERT INTO pretixbase_item (event_id, name, default_price) VALUES (1, 'Ticket', 85.00);
INSERT INTO pretixbase_quota (event_id, name, size, cached_availability_state,
                              cached_availability_number, cached_availability_paid_orders,
                              cached_availability_time)
VALUES (1, 'Tickets', :quota_size, 100, :quota_size, 0, now());
INSERT INTO pretixbase_quota_items (quota_id, item_id) VALUES (1, 1);

#include "adapters/sqlite/sqlite_booking_store.h"

#include "adapters/common/stored_booking.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <set>
#include <string_view>

#include <boost/json.hpp>

#include "adapters/sqlite/sqlite_schema.h"

namespace boxoffice {

using stored::check_hold_shape;
using stored::decode_event;
using stored::decode_seats;
using stored::decode_status;
using stored::encode_event;
using stored::encode_seats;
using stored::to_sql_limit;

namespace {

namespace json = boost::json;

// --- queries -----------------------------------------------------------------------------------

constexpr SqlQuery kInsertEvent{
    "events.insert",
    "INSERT INTO events (id, starts_at_ms, body, created_at_ms) VALUES (?1, ?2, ?3, ?4)"};
constexpr SqlQuery kSelectEvent{"events.select", "SELECT body FROM events WHERE id = ?1"};
constexpr SqlQuery kListEvents{"events.list", "SELECT body FROM events ORDER BY starts_at_ms, id"};

constexpr SqlQuery kInsertSection{
    "section_sales.insert",
    "INSERT INTO section_sales (event_id, section_id, kind, capacity, sold) "
    "VALUES (?1, ?2, ?3, ?4, 0)"};
constexpr SqlQuery kSelectSectionKind{
    "section_sales.select_kind",
    "SELECT kind FROM section_sales WHERE event_id = ?1 AND section_id = ?2"};
constexpr SqlQuery kTakeCapacity{
    "section_sales.take",
    "UPDATE section_sales SET sold = sold + ?3 "
    "WHERE event_id = ?1 AND section_id = ?2 AND sold + ?3 <= capacity"};
constexpr SqlQuery kGiveBackCapacity{
    "section_sales.give_back",
    "UPDATE section_sales SET sold = sold - ?3 "
    "WHERE event_id = ?1 AND section_id = ?2 AND kind = 'general'"};

// Records the hold's fence on a seat unless a newer holder has already booked it: no change
// means the hold is fenced out.
constexpr SqlQuery kClaimFence{
    "seat_fences.claim",
    "INSERT INTO seat_fences (event_id, resource, fence) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (event_id, resource) DO UPDATE SET fence = excluded.fence "
    "WHERE excluded.fence >= seat_fences.fence"};

#define BOOKING_COLUMNS                                                                         \
  "id, event_id, hold_id, buyer, section, quantity, amount, currency, payment_method, status, " \
  "fence, seats, created_at_ms, updated_at_ms, payment_attempts, last_error"

constexpr SqlQuery kInsertBooking{
    "bookings.insert",
    "INSERT INTO bookings (" BOOKING_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"};
constexpr SqlQuery kSelectBooking{"bookings.select",
                                  "SELECT " BOOKING_COLUMNS " FROM bookings WHERE id = ?1"};
constexpr SqlQuery kSelectBookingByHold{
    "bookings.select_by_hold", "SELECT " BOOKING_COLUMNS " FROM bookings WHERE hold_id = ?1"};
constexpr SqlQuery kListBookingsOfBuyer{
    "bookings.list_of_buyer",
    "SELECT " BOOKING_COLUMNS
    " FROM bookings WHERE buyer = ?1 ORDER BY created_at_ms DESC, id DESC LIMIT ?2"};
constexpr SqlQuery kUpdateStatus{
    "bookings.update_status",
    "UPDATE bookings SET status = ?3, updated_at_ms = ?4, last_error = ?5 "
    "WHERE id = ?1 AND status = ?2"};
// Kept in step with holds_seats() in domain/booking.h.
constexpr SqlQuery kSetHoldTimes{
    "bookings.set_hold_times",
    "UPDATE bookings SET hold_created_at_ms = ?2, hold_expires_at_ms = ?3 WHERE id = ?1"};
constexpr SqlQuery kLiveClaims{
    "bookings.live_claims",
    "SELECT hold_id, buyer, section, seats, quantity, status, "
    "COALESCE(hold_created_at_ms, created_at_ms), COALESCE(hold_expires_at_ms, created_at_ms) "
    "FROM bookings "
    "WHERE event_id = ?1 AND status IN ('pending_payment', 'confirmed', 'cancelled') "
    "ORDER BY created_at_ms, id"};
constexpr SqlQuery kMaxFence{"bookings.max_fence", "SELECT COALESCE(MAX(fence), 0) FROM bookings"};
constexpr SqlQuery kCounts{"bookings.counts",
                           "SELECT status, COUNT(*), COALESCE(SUM(amount), 0), "
                           "COALESCE(SUM(payment_attempts), 0), COALESCE(SUM(dead_lettered), 0) "
                           "FROM bookings WHERE event_id = ?1 GROUP BY status"};
constexpr SqlQuery kRecordPaymentAttempt{
    "bookings.record_payment_attempt",
    "UPDATE bookings SET payment_attempts = payment_attempts + 1, last_error = ?2, "
    "updated_at_ms = ?3 WHERE id = ?1"};
constexpr SqlQuery kMarkDeadLettered{"bookings.mark_dead_lettered",
                                     "UPDATE bookings SET dead_lettered = 1 WHERE id = ?1"};
// Served by bookings_by_status_age (status, updated_at_ms, id): no sort, no scan of fresh rows.
constexpr SqlQuery kStaleBookings{
    "bookings.stale",
    "SELECT " BOOKING_COLUMNS
    " FROM bookings WHERE status = ?1 AND updated_at_ms < ?2 ORDER BY updated_at_ms, id LIMIT ?3"};

#undef BOOKING_COLUMNS

constexpr SqlQuery kInsertSeat{
    "booking_seats.insert",
    "INSERT INTO booking_seats (booking_id, event_id, seat_id, live) VALUES (?1, ?2, ?3, 1)"};
constexpr SqlQuery kReleaseSeats{"booking_seats.release",
                                 "UPDATE booking_seats SET live = 0 WHERE booking_id = ?1"};

constexpr SqlQuery kInsertOutbox{
    "outbox.insert", "INSERT INTO outbox (kind, booking_id, created_at_ms) VALUES (?1, ?2, ?3)"};
constexpr SqlQuery kPendingOutbox{"outbox.pending",
                                  "SELECT sequence, kind, booking_id, created_at_ms FROM outbox "
                                  "WHERE taken = 0 ORDER BY sequence LIMIT ?1"};
// Published jobs are deleted rather than flagged: the queue and the bookings keep their history,
// so the outbox stays as small as the relay's backlog. AUTOINCREMENT never reuses a sequence.
constexpr SqlQuery kDeleteOutbox{"outbox.delete", "DELETE FROM outbox WHERE sequence = ?1"};

constexpr SqlQuery kSelectIdempotency{
    "idempotency.select",
    "SELECT fingerprint, state, status, content_type, body, updated_at_ms FROM idempotency "
    "WHERE buyer = ?1 AND key = ?2"};
constexpr SqlQuery kInsertIdempotency{
    "idempotency.insert",
    "INSERT INTO idempotency (buyer, key, fingerprint, state, created_at_ms, updated_at_ms) "
    "VALUES (?1, ?2, ?3, 'in_flight', ?4, ?4)"};
constexpr SqlQuery kTakeOverIdempotency{
    "idempotency.take_over",
    "UPDATE idempotency SET created_at_ms = ?3, updated_at_ms = ?3 "
    "WHERE buyer = ?1 AND key = ?2 AND state = 'in_flight'"};
// Only an in-flight record is completed: when a lease was taken over, the first response stored
// is the one every retry gets.
constexpr SqlQuery kCompleteIdempotency{
    "idempotency.complete",
    "UPDATE idempotency SET state = 'done', status = ?3, content_type = ?4, body = ?5, "
    "updated_at_ms = ?6 WHERE buyer = ?1 AND key = ?2 AND state = 'in_flight'"};
// A stored response is never forgotten early: a late abandon() must not undo a complete().
constexpr SqlQuery kAbandonIdempotency{
    "idempotency.abandon",
    "DELETE FROM idempotency WHERE buyer = ?1 AND key = ?2 AND state = 'in_flight'"};
constexpr SqlQuery kPurgeIdempotency{
    "idempotency.purge",
    "DELETE FROM idempotency WHERE rowid IN "
    "(SELECT rowid FROM idempotency WHERE created_at_ms < ?1 LIMIT ?2)"};

// Purging runs in batches so it never holds the write lock long enough to stall checkouts.
constexpr int64_t kPurgeBatchRows = 10'000;

// Reads a row selected with BOOKING_COLUMNS.
Booking read_booking(const SqliteStatement& row) {
  Booking booking;
  booking.id = row.column_text(0);
  booking.event_id = row.column_text(1);
  booking.hold_id = row.column_text(2);
  booking.buyer = row.column_text(3);
  booking.section = row.column_text(4);
  booking.quantity = static_cast<uint32_t>(row.column_int64(5));
  booking.amount = row.column_int64(6);
  booking.currency = row.column_text(7);
  booking.payment_method = row.column_text(8);
  booking.status = decode_status(row.column_text(9));
  booking.fence = static_cast<uint64_t>(row.column_int64(10));
  booking.seats = decode_seats(row.column_text(11));
  booking.created_at = from_unix_ms(row.column_int64(12));
  booking.updated_at = from_unix_ms(row.column_int64(13));
  booking.payment_attempts = static_cast<uint32_t>(row.column_int64(14));
  booking.last_error = row.column_text(15);
  return booking;
}

std::optional<Booking> select_one_booking(SqliteConnection& connection, const SqlQuery& query,
                                          const std::string& key) {
  auto statement = connection.query(query, key);
  if (!statement.step()) return std::nullopt;
  return read_booking(statement);
}

}  // namespace

// --- SqliteBookingStore ------------------------------------------------------------------------

SqliteBookingStore::SqliteBookingStore(const std::string& path, size_t connections,
                                       Millis busy_timeout)
    : pool_(path, connections, busy_timeout) {
  auto connection = pool_.acquire();
  migrate_bookings_file(*connection);
}

SqliteBookingStore::~SqliteBookingStore() = default;

Status SqliteBookingStore::create_event(const Event& event) {
  const std::string body = encode_event(event);
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  try {
    connection
        ->query(kInsertEvent, event.id, to_unix_ms(event.starts_at), body,
                to_unix_ms(event.created_at))
        .execute();
  } catch (const UniqueViolation&) {
    return make_error(Errc::conflict, "an event with id \"" + event.id + "\" already exists");
  }
  for (const auto& section : event.sections) {
    connection
        ->query(kInsertSection, event.id, section.id, to_string(section.kind),
                int64_t{section.capacity})
        .execute();
  }
  tx.commit();
  return Ok{};
}

std::optional<Event> SqliteBookingStore::get_event(const std::string& event_id) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kSelectEvent, event_id);
  if (!statement.step()) return std::nullopt;
  return decode_event(statement.column_text(0));
}

std::vector<Event> SqliteBookingStore::list_events() {
  auto connection = pool_.acquire();
  auto statement = connection->prepare(kListEvents);
  std::vector<Event> events;
  while (statement.step()) events.push_back(decode_event(statement.column_text(0)));
  return events;
}

Result<Booking> SqliteBookingStore::create_booking(const CheckoutRequest& request) {
  const Hold& hold = request.hold;
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);

  // Before the expiry check: a retried checkout whose first answer was lost gets its booking,
  // which stands whatever the time is now.
  if (auto existing = select_one_booking(*connection, kSelectBookingByHold, hold.id)) {
    return *std::move(existing);
  }
  if (!(request.now < hold.expires_at)) {
    return make_error(Errc::hold_expired, "the hold expired at " + format_rfc3339(hold.expires_at));
  }

  SectionKind kind = SectionKind::general;
  {
    auto statement = connection->query(kSelectSectionKind, hold.event_id, hold.section);
    if (!statement.step()) {
      return make_error(Errc::not_found,
                        "no section \"" + hold.section + "\" in event \"" + hold.event_id + "\"");
    }
    kind = statement.column_text(0) == to_string(SectionKind::reserved) ? SectionKind::reserved
                                                                        : SectionKind::general;
  }
  if (auto error = check_hold_shape(hold, kind)) return *std::move(error);

  if (kind == SectionKind::general) {
    // Many holders share a general section, so a per-section fence would refuse valid holds;
    // capacity and the expiry check are what protect it.
    const int64_t taken =
        connection->query(kTakeCapacity, hold.event_id, hold.section, int64_t{hold.quantity})
            .execute();
    if (taken == 0) {
      return make_error(Errc::sold_out, "section \"" + hold.section + "\" is sold out");
    }
  } else {
    for (const auto& seat : hold.seats) {
      const int64_t claimed =
          connection->query(kClaimFence, hold.event_id, seat, static_cast<int64_t>(hold.fence))
              .execute();
      if (claimed == 0) {
        return make_error(Errc::hold_expired,
                          "the hold was fenced out: seat " + seat + " was booked by a newer hold");
      }
    }
  }

  Booking booking = pending_booking(request);
  try {
    connection
        ->query(kInsertBooking, booking.id, booking.event_id, booking.hold_id, booking.buyer,
                booking.section, int64_t{booking.quantity}, booking.amount, booking.currency,
                booking.payment_method, to_string(booking.status),
                static_cast<int64_t>(booking.fence), encode_seats(booking.seats),
                to_unix_ms(booking.created_at), to_unix_ms(booking.updated_at),
                int64_t{booking.payment_attempts}, booking.last_error)
        .execute();
  } catch (const UniqueViolation&) {
    // hold_id cannot collide (it was looked up under the write lock), so the id was reused.
    return make_error(Errc::conflict, "a booking with id \"" + booking.id + "\" already exists");
  }
  connection
      ->query(kSetHoldTimes, booking.id, to_unix_ms(hold.created_at), to_unix_ms(hold.expires_at))
      .execute();

  // The partial unique index decides; a refused row aborts only its statement, so every
  // conflicting seat is found before the whole transaction is rolled back.
  std::vector<std::string> unavailable;
  for (const auto& seat : booking.seats) {
    try {
      connection->query(kInsertSeat, booking.id, booking.event_id, seat).execute();
    } catch (const UniqueViolation&) {
      unavailable.push_back(seat);
    }
  }
  if (!unavailable.empty()) {
    tx.rollback();
    Error error = make_error(Errc::seats_unavailable, "some seats are already booked");
    error.unavailable = std::move(unavailable);
    return error;
  }

  connection->query(kInsertOutbox, "charge", booking.id, to_unix_ms(request.now)).execute();
  tx.commit();
  return booking;
}

std::optional<Booking> SqliteBookingStore::get_booking(const std::string& booking_id) {
  auto connection = pool_.acquire();
  return select_one_booking(*connection, kSelectBooking, booking_id);
}

std::optional<Booking> SqliteBookingStore::find_booking_by_hold(const std::string& hold_id) {
  auto connection = pool_.acquire();
  return select_one_booking(*connection, kSelectBookingByHold, hold_id);
}

std::vector<Booking> SqliteBookingStore::list_bookings(const std::string& buyer, size_t limit) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kListBookingsOfBuyer, buyer, to_sql_limit(limit));
  std::vector<Booking> bookings;
  while (statement.step()) bookings.push_back(read_booking(statement));
  return bookings;
}

Result<Booking> SqliteBookingStore::transition(const std::string& booking_id, BookingStatus from,
                                               BookingStatus to, Timestamp now,
                                               const std::string& last_error) {
  if (!can_transition(from, to)) {
    return make_error(Errc::invalid_state, "a booking cannot go from " +
                                               std::string(to_string(from)) + " to " +
                                               std::string(to_string(to)));
  }
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  auto booking = select_one_booking(*connection, kSelectBooking, booking_id);
  if (!booking) return make_error(Errc::not_found, "no booking \"" + booking_id + "\"");
  if (booking->status != from) {
    return make_error(Errc::invalid_state, "the booking is " +
                                               std::string(to_string(booking->status)) + ", not " +
                                               std::string(to_string(from)));
  }
  connection
      ->query(kUpdateStatus, booking_id, to_string(from), to_string(to), to_unix_ms(now),
              last_error)
      .execute();
  if (holds_seats(from) && !holds_seats(to)) {
    connection->query(kReleaseSeats, booking_id).execute();
    connection
        ->query(kGiveBackCapacity, booking->event_id, booking->section, int64_t{booking->quantity})
        .execute();
  }
  if (to == BookingStatus::cancelled) {
    connection->query(kInsertOutbox, "refund", booking_id, to_unix_ms(now)).execute();
  }
  tx.commit();
  booking->status = to;
  booking->updated_at = now;
  booking->last_error = last_error;
  return *std::move(booking);
}

std::vector<RestoredClaim> SqliteBookingStore::live_claims(const std::string& event_id) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kLiveClaims, event_id);
  std::vector<RestoredClaim> claims;
  while (statement.step()) {
    const BookingStatus status = decode_status(statement.column_text(5));
    RestoredClaim claim;
    claim.hold_id = statement.column_text(0);
    claim.buyer = statement.column_text(1);
    claim.section = statement.column_text(2);
    claim.seats = decode_seats(statement.column_text(3));
    claim.quantity = static_cast<uint32_t>(statement.column_int64(4));
    claim.sold = status != BookingStatus::pending_payment;
    claim.hold_created_at = from_unix_ms(statement.column_int64(6));
    claim.hold_expires_at = from_unix_ms(statement.column_int64(7));
    if (!holds_seats(status)) {
      throw StorageError("sqlite: bookings.live_claims returned a " +
                         std::string(to_string(status)) + " booking");
    }
    claims.push_back(std::move(claim));
  }
  return claims;
}

uint64_t SqliteBookingStore::max_fence() {
  auto connection = pool_.acquire();
  auto statement = connection->prepare(kMaxFence);
  return statement.step() ? static_cast<uint64_t>(statement.column_int64(0)) : 0;
}

BookingCounts SqliteBookingStore::counts(const std::string& event_id) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kCounts, event_id);
  BookingCounts counts;
  while (statement.step()) {
    const auto count = static_cast<uint32_t>(statement.column_int64(1));
    const int64_t amount = statement.column_int64(2);
    counts.payment_attempts += static_cast<uint64_t>(statement.column_int64(3));
    counts.dead_lettered += static_cast<uint32_t>(statement.column_int64(4));
    switch (decode_status(statement.column_text(0))) {
      case BookingStatus::pending_payment:
        counts.pending_payment = count;
        break;
      case BookingStatus::confirmed:
        counts.confirmed = count;
        counts.revenue += amount;
        break;
      case BookingStatus::payment_failed:
        counts.payment_failed = count;
        break;
      case BookingStatus::cancelled:
        counts.cancelled = count;
        counts.revenue += amount;
        break;
      case BookingStatus::refunded:
        counts.refunded = count;
        break;
    }
  }
  return counts;
}

std::vector<OutboxJob> SqliteBookingStore::pending_outbox(size_t limit) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kPendingOutbox, to_sql_limit(limit));
  std::vector<OutboxJob> jobs;
  while (statement.step()) {
    jobs.push_back(OutboxJob{statement.column_int64(0), statement.column_text(1),
                             statement.column_text(2), from_unix_ms(statement.column_int64(3))});
  }
  return jobs;
}

void SqliteBookingStore::mark_outbox_published(const std::vector<int64_t>& sequences) {
  if (sequences.empty()) return;
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  for (const int64_t sequence : sequences) connection->query(kDeleteOutbox, sequence).execute();
  tx.commit();
}

Status SqliteBookingStore::record_payment_attempt(const std::string& booking_id,
                                                  const std::string& error, Timestamp now) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  if (connection->query(kRecordPaymentAttempt, booking_id, error, to_unix_ms(now)).execute() == 0) {
    return make_error(Errc::not_found, "no booking \"" + booking_id + "\"");
  }
  tx.commit();
  return Ok{};
}

void SqliteBookingStore::mark_dead_lettered(const std::string& booking_id) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  connection->query(kMarkDeadLettered, booking_id).execute();
  tx.commit();
}

std::vector<Booking> SqliteBookingStore::stale_bookings(BookingStatus status, Timestamp before,
                                                        size_t limit) {
  auto connection = pool_.acquire();
  auto statement =
      connection->query(kStaleBookings, to_string(status), to_unix_ms(before), to_sql_limit(limit));
  std::vector<Booking> bookings;
  while (statement.step()) bookings.push_back(read_booking(statement));
  return bookings;
}

// --- IdempotencyStore --------------------------------------------------------------------------

IdempotencyOutcome SqliteBookingStore::begin(const std::string& buyer, const std::string& key,
                                             const std::string& fingerprint, Timestamp now,
                                             Millis lease) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  bool exists = false;
  {
    auto statement = connection->query(kSelectIdempotency, buyer, key);
    if (statement.step()) {
      if (statement.column_text(0) != fingerprint) return IdempotencyMismatch{};
      if (statement.column_text(1) == "done") {
        return StoredResponse{static_cast<int>(statement.column_int64(2)), statement.column_text(3),
                              statement.column_blob(4)};
      }
      if (now - from_unix_ms(statement.column_int64(5)) < lease) return IdempotencyInFlight{};
      exists = true;
    }
  }
  if (exists) {
    // The first request's lease ran out: its process is taken to have died.
    connection->query(kTakeOverIdempotency, buyer, key, to_unix_ms(now)).execute();
  } else {
    connection->query(kInsertIdempotency, buyer, key, fingerprint, to_unix_ms(now)).execute();
  }
  tx.commit();
  return IdempotencyStarted{};
}

void SqliteBookingStore::complete(const std::string& buyer, const std::string& key,
                                  const StoredResponse& response, Timestamp now) {
  auto connection = pool_.acquire();
  // Through the writer gate and BEGIN IMMEDIATE like every write: an autocommit write would meet
  // SQLITE_BUSY at once instead of waiting its turn, and the record would be lost.
  SqliteTransaction tx(*connection, TxMode::write);
  auto statement = connection->prepare(kCompleteIdempotency);
  statement.bind(1, buyer).bind(2, key).bind(3, int64_t{response.status});
  statement.bind(4, response.content_type).bind_blob(5, response.body).bind(6, to_unix_ms(now));
  statement.execute();
  tx.commit();
}

void SqliteBookingStore::abandon(const std::string& buyer, const std::string& key) {
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  connection->query(kAbandonIdempotency, buyer, key).execute();
  tx.commit();
}

size_t SqliteBookingStore::purge(Timestamp now, Millis retention) {
  const int64_t cutoff_ms = to_unix_ms(now - retention);
  auto connection = pool_.acquire();
  size_t purged = 0;
  for (;;) {
    SqliteTransaction tx(*connection, TxMode::write);
    const int64_t deleted =
        connection->query(kPurgeIdempotency, cutoff_ms, kPurgeBatchRows).execute();
    tx.commit();
    purged += static_cast<size_t>(deleted);
    if (deleted < kPurgeBatchRows) return purged;
  }
}

}  // namespace boxoffice

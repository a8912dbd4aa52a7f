#include "adapters/sqlite/sqlite_waitlist_store.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string_view>

#include "adapters/sqlite/sqlite_schema.h"

namespace boxoffice {

namespace {

// --- queries -----------------------------------------------------------------------------------

// The position is counted in the statement that reads the entry, so it is as of the same
// snapshot; `status = 'waiting'` and the sequence bound make it a range scan of waitlist_line.
#define ENTRY_COLUMNS                                                                             \
  "e.sequence, e.id, e.event_id, e.section, e.buyer, e.quantity, e.status, e.offer_hold_id, "     \
  "e.offer_expires_at_ms, e.created_at_ms, e.updated_at_ms, "                                     \
  "CASE WHEN e.status = 'waiting' THEN 1 + (SELECT COUNT(*) FROM waitlist_entries AS ahead "      \
  "WHERE ahead.event_id = e.event_id AND ahead.section = e.section AND ahead.status = 'waiting' " \
  "AND ahead.sequence < e.sequence) END"

constexpr SqlQuery kInsert{
    "waitlist.insert",
    "INSERT INTO waitlist_entries (id, event_id, section, buyer, quantity, status, created_at_ms, "
    "updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'waiting', ?6, ?6)"};
constexpr SqlQuery kIdTaken{"waitlist.id_taken", "SELECT 1 FROM waitlist_entries WHERE id = ?1"};
constexpr SqlQuery kSelect{"waitlist.select",
                           "SELECT " ENTRY_COLUMNS " FROM waitlist_entries AS e WHERE e.id = ?1"};
constexpr SqlQuery kSelectStatus{"waitlist.select_status",
                                 "SELECT status FROM waitlist_entries WHERE id = ?1"};
// A hold id is fresh for every offer, so at most one entry matches; the newest is the answer
// should a caller ever reuse one.
constexpr SqlQuery kSelectByOffer{"waitlist.select_by_offer",
                                  "SELECT " ENTRY_COLUMNS
                                  " FROM waitlist_entries AS e WHERE e.offer_hold_id = ?1 "
                                  "ORDER BY e.sequence DESC LIMIT 1"};
// In join order, stopping at the first entry the seats can serve: an earlier entry is passed over
// only when it wants more seats than there are.
constexpr SqlQuery kFirstFitting{
    "waitlist.first_fitting",
    "SELECT " ENTRY_COLUMNS
    " FROM waitlist_entries AS e WHERE e.event_id = ?1 AND e.section = ?2 AND "
    "e.status = 'waiting' AND e.quantity <= ?3 ORDER BY e.sequence LIMIT 1"};
constexpr SqlQuery kMove{"waitlist.move",
                         "UPDATE waitlist_entries SET status = ?3, updated_at_ms = ?4 "
                         "WHERE id = ?1 AND status = ?2"};
constexpr SqlQuery kOffer{"waitlist.offer",
                          "UPDATE waitlist_entries SET status = 'offered', updated_at_ms = ?3, "
                          "offer_hold_id = ?4, offer_expires_at_ms = ?5 "
                          "WHERE id = ?1 AND status = ?2"};
// `status = 'offered'` is spelled as in the partial index waitlist_offers_by_expiry, so the index
// serves it.
constexpr SqlQuery kLapsedOffers{"waitlist.lapsed_offers",
                                 "SELECT " ENTRY_COLUMNS
                                 " FROM waitlist_entries AS e WHERE e.status = 'offered' AND "
                                 "e.offer_expires_at_ms <= ?1 "
                                 "ORDER BY e.offer_expires_at_ms, e.sequence LIMIT ?2"};
// The partial index waitlist_live_buyer holds exactly the live entries, so reading it costs what
// the live lines hold, not the whole history. Without ANALYZE statistics SQLite cannot tell that
// it is the smaller index and would scan waitlist_line instead, hence INDEXED BY (which also
// makes preparing the query fail, rather than silently scan, should the index ever not fit it).
constexpr SqlQuery kActiveSections{
    "waitlist.active_sections",
    "SELECT DISTINCT event_id, section FROM waitlist_entries INDEXED BY waitlist_live_buyer "
    "WHERE status IN ('waiting', 'offered') ORDER BY event_id, section"};
constexpr SqlQuery kWaitingCount{"waitlist.waiting_count",
                                 "SELECT COUNT(*) FROM waitlist_entries "
                                 "WHERE event_id = ?1 AND section = ?2 AND status = 'waiting'"};
constexpr SqlQuery kCounts{
    "waitlist.counts",
    "SELECT status, COUNT(*) FROM waitlist_entries WHERE event_id = ?1 GROUP BY status"};

#undef ENTRY_COLUMNS

int64_t to_sql_limit(size_t limit) {
  return static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

WaitlistStatus decode_status(const std::string& text) {
  for (const auto status :
       {WaitlistStatus::waiting, WaitlistStatus::offered, WaitlistStatus::converted,
        WaitlistStatus::expired, WaitlistStatus::left}) {
    if (text == to_string(status)) return status;
  }
  throw StorageError("sqlite: corrupt waitlist entry: status \"" + text + "\"");
}

// The edges of the state machine in domain/waitlist.h.

// Reads a row selected with ENTRY_COLUMNS.
WaitlistEntry read_entry(const SqliteStatement& row) {
  WaitlistEntry entry;
  entry.sequence = row.column_int64(0);
  entry.id = row.column_text(1);
  entry.event_id = row.column_text(2);
  entry.section = row.column_text(3);
  entry.buyer = row.column_text(4);
  entry.quantity = static_cast<uint32_t>(row.column_int64(5));
  entry.status = decode_status(row.column_text(6));
  if (!row.column_is_null(7)) {
    entry.offer = WaitlistOffer{row.column_text(7), from_unix_ms(row.column_int64(8))};
  }
  entry.created_at = from_unix_ms(row.column_int64(9));
  entry.updated_at = from_unix_ms(row.column_int64(10));
  if (!row.column_is_null(11)) entry.position = static_cast<uint64_t>(row.column_int64(11));
  return entry;
}

std::optional<WaitlistEntry> select_one(SqliteConnection& connection, const SqlQuery& query,
                                        const std::string& key) {
  auto statement = connection.query(query, key);
  if (!statement.step()) return std::nullopt;
  return read_entry(statement);
}

// Reads the entry a write in this transaction has just made or changed: it must be there.
WaitlistEntry select_written(SqliteConnection& connection, const std::string& entry_id) {
  auto entry = select_one(connection, kSelect, entry_id);
  if (!entry) throw StorageError("sqlite: waitlist entry \"" + entry_id + "\" vanished");
  return *std::move(entry);
}

}  // namespace

// --- SqliteWaitlistStore -----------------------------------------------------------------------

SqliteWaitlistStore::SqliteWaitlistStore(const std::string& path, size_t connections,
                                         Millis busy_timeout)
    : pool_(path, connections, busy_timeout) {
  auto connection = pool_.acquire();
  migrate_bookings_file(*connection);
}

SqliteWaitlistStore::~SqliteWaitlistStore() = default;

Result<WaitlistEntry> SqliteWaitlistStore::join(const WaitlistEntry& entry) {
  if (entry.id.empty()) throw std::invalid_argument("waitlist: an entry needs an id");
  if (entry.quantity == 0) throw std::invalid_argument("waitlist: an entry wants at least 1 seat");
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  try {
    connection
        ->query(kInsert, entry.id, entry.event_id, entry.section, entry.buyer,
                int64_t{entry.quantity}, to_unix_ms(entry.created_at))
        .execute();
  } catch (const UniqueViolation&) {
    // Which constraint refused it is asked of the same transaction, which still sees why.
    if (connection->query(kIdTaken, entry.id).step()) {
      return make_error(Errc::conflict, "a waitlist entry with id \"" + entry.id + "\" exists");
    }
    return make_error(Errc::conflict,
                      "the buyer is already on the waitlist of section \"" + entry.section + "\"");
  }
  WaitlistEntry joined = select_written(*connection, entry.id);
  tx.commit();
  return joined;
}

std::optional<WaitlistEntry> SqliteWaitlistStore::get(const std::string& entry_id) {
  auto connection = pool_.acquire();
  return select_one(*connection, kSelect, entry_id);
}

std::optional<WaitlistEntry> SqliteWaitlistStore::find_by_offer(const std::string& hold_id) {
  auto connection = pool_.acquire();
  return select_one(*connection, kSelectByOffer, hold_id);
}

std::optional<WaitlistEntry> SqliteWaitlistStore::first_fitting(const std::string& event_id,
                                                                const std::string& section,
                                                                uint32_t seats_max) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kFirstFitting, event_id, section, int64_t{seats_max});
  if (!statement.step()) return std::nullopt;
  return read_entry(statement);
}

Result<WaitlistEntry> SqliteWaitlistStore::transition(const std::string& entry_id,
                                                      WaitlistStatus from, WaitlistStatus to,
                                                      Timestamp now,
                                                      const std::optional<WaitlistOffer>& offer) {
  if (!can_transition(from, to)) {
    throw std::invalid_argument("waitlist: no transition from " + std::string(to_string(from)) +
                                " to " + std::string(to_string(to)));
  }
  if (to == WaitlistStatus::offered && (!offer || offer->hold_id.empty())) {
    throw std::invalid_argument("waitlist: an offer needs a hold");
  }
  auto connection = pool_.acquire();
  SqliteTransaction tx(*connection, TxMode::write);
  const int64_t now_ms = to_unix_ms(now);
  const int64_t changed =
      to == WaitlistStatus::offered
          ? connection
                ->query(kOffer, entry_id, to_string(from), now_ms, offer->hold_id,
                        to_unix_ms(offer->expires_at))
                .execute()
          : connection->query(kMove, entry_id, to_string(from), to_string(to), now_ms).execute();
  if (changed == 0) {
    auto statement = connection->query(kSelectStatus, entry_id);
    if (!statement.step()) {
      return make_error(Errc::not_found, "no waitlist entry \"" + entry_id + "\"");
    }
    return make_error(Errc::invalid_state, "the waitlist entry is " + statement.column_text(0) +
                                               ", not " + std::string(to_string(from)));
  }
  WaitlistEntry moved = select_written(*connection, entry_id);
  tx.commit();
  return moved;
}

std::vector<WaitlistEntry> SqliteWaitlistStore::lapsed_offers(Timestamp now, size_t limit) {
  std::vector<WaitlistEntry> lapsed;
  if (limit == 0) return lapsed;
  auto connection = pool_.acquire();
  auto statement = connection->query(kLapsedOffers, to_unix_ms(now), to_sql_limit(limit));
  while (statement.step()) lapsed.push_back(read_entry(statement));
  return lapsed;
}

std::vector<WaitlistSection> SqliteWaitlistStore::active_sections() {
  auto connection = pool_.acquire();
  auto statement = connection->prepare(kActiveSections);
  std::vector<WaitlistSection> sections;
  while (statement.step()) {
    sections.push_back(WaitlistSection{statement.column_text(0), statement.column_text(1)});
  }
  return sections;
}

uint32_t SqliteWaitlistStore::waiting_count(const std::string& event_id,
                                            const std::string& section) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kWaitingCount, event_id, section);
  return statement.step() ? static_cast<uint32_t>(statement.column_int64(0)) : 0;
}

WaitlistCounts SqliteWaitlistStore::counts(const std::string& event_id) {
  auto connection = pool_.acquire();
  auto statement = connection->query(kCounts, event_id);
  WaitlistCounts counts;
  while (statement.step()) {
    const auto count = static_cast<uint32_t>(statement.column_int64(1));
    switch (decode_status(statement.column_text(0))) {
      case WaitlistStatus::waiting:
        counts.waiting = count;
        break;
      case WaitlistStatus::offered:
        counts.offered = count;
        break;
      case WaitlistStatus::converted:
        counts.converted = count;
        break;
      case WaitlistStatus::expired:
        counts.expired = count;
        break;
      case WaitlistStatus::left:
        counts.left = count;
        break;
    }
  }
  return counts;
}

}  // namespace boxoffice

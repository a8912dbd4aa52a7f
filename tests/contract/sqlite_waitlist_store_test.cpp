// The WaitlistStore contract against the SQLite store, each test in a fresh temporary directory,
// and what only SQLite can be asked: the file it shares with the bookings, its schema, its locks.

#include "adapters/sqlite/sqlite_waitlist_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "adapters/sqlite/sqlite_booking_store.h"
#include "adapters/sqlite/sqlite_payment_queue.h"
#include "adapters/sqlite/sqlite_schema.h"
#include "contract/sqlite_raw_database.h"
#include "contract/waitlist_store_contract.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

constexpr size_t kConnections = 4;

class SqliteWaitlistStorage final : public StorageUnderTest<WaitlistStore> {
 public:
  std::unique_ptr<WaitlistStore> open() override {
    return std::make_unique<SqliteWaitlistStore>(path(), kConnections);
  }
  bool durable() const override { return true; }
  std::string path() const { return (dir_.path() / "bookings.sqlite3").string(); }

 private:
  TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, WaitlistStoreContract,
                         ::testing::Values(WaitlistStoreAdapter{
                             "sqlite", [] { return std::make_unique<SqliteWaitlistStorage>(); }}),
                         adapter_test_name<WaitlistStore>);

const Timestamp kT0 = from_unix_ms(1'800'000'000'000);

class SqliteWaitlistStoreTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "bookings.sqlite3").string(); }

  TempDir dir_;
};

WaitlistEntry floor_entry(const std::string& id, const std::string& buyer, uint32_t quantity = 1) {
  WaitlistEntry entry;
  entry.id = id;
  entry.event_id = "ev_1";
  entry.section = "floor";
  entry.buyer = buyer;
  entry.quantity = quantity;
  entry.created_at = kT0;
  return entry;
}

// The position join() reports, or the error's code.
std::string position_after_join(WaitlistStore& store, const WaitlistEntry& entry) {
  auto joined = store.join(entry);
  if (!joined.ok()) return std::string(to_string(joined.error().code));
  return joined->position ? std::to_string(*joined->position) : "none";
}

TEST_F(SqliteWaitlistStoreTest, TheWaitlistLivesInTheBookingsFileWhicheverOpensItFirst) {
  {
    SqliteWaitlistStore store(path(), 2);
    ASSERT_TRUE(store.join(floor_entry("wl_1", "alice")).ok());
  }
  RawDatabase db(path());
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(bookings_file_migrations().size()));
  EXPECT_EQ(db.text("SELECT MAX(version) FROM schema_migrations"),
            std::to_string(bookings_file_migrations().back().version));
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM waitlist_entries"), "1");
  // Times are the caller's, to the millisecond, never SQLite's own clock.
  EXPECT_EQ(db.text("SELECT created_at_ms FROM waitlist_entries"), std::to_string(to_unix_ms(kT0)));

  // The other stores find the schema already there, and all work side by side on the one file.
  ManualClock clock(kT0);
  SqliteBookingStore bookings(path(), 2);
  SqlitePaymentQueue queue(path(), clock, QueuePolicy{std::chrono::seconds{30}, 3}, 2);
  SqliteWaitlistStore store(path(), 2);
  queue.publish(PaymentJob{"pay_1", PaymentJobKind::charge, "bkg_1"});
  EXPECT_EQ(position_after_join(store, floor_entry("wl_2", "bob")), "2");
  EXPECT_EQ(queue.counts().ready, 1u);
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(bookings_file_migrations().size()));
}

TEST_F(SqliteWaitlistStoreTest, AFileFromBeforeTheWaitlistIsUpgradedInPlace) {
  // A bookings file as the previous release left it: migrations 1 and 2, with a job in the queue.
  {
    RawDatabase db(path());
    ASSERT_EQ(db.exec("PRAGMA journal_mode=WAL"), SQLITE_OK);
    ASSERT_EQ(db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                      "name TEXT NOT NULL) STRICT"),
              SQLITE_OK);
    for (const auto& migration : bookings_file_migrations()) {
      if (migration.version > 2) break;
      ASSERT_EQ(db.exec(std::string(migration.sql)), SQLITE_OK) << db.error();
      ASSERT_EQ(
          db.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(migration.version) +
                  ", '" + std::string(migration.name) + "')"),
          SQLITE_OK);
    }
    ASSERT_EQ(db.exec("INSERT INTO payment_jobs (id, kind, booking_id, enqueued_at_ms, state, "
                      "visible_at_ms) VALUES ('pay_old', 'charge', 'bkg_old', 1000, 'waiting', "
                      "1000)"),
              SQLITE_OK)
        << db.error();
    ASSERT_EQ(db.text("SELECT COUNT(*) FROM sqlite_master WHERE name = 'waitlist_entries'"), "0");
  }

  SqliteWaitlistStore store(path(), 2);
  EXPECT_EQ(position_after_join(store, floor_entry("wl_1", "alice")), "1");
  RawDatabase db(path());
  EXPECT_EQ(db.text("SELECT MAX(version) FROM schema_migrations"),
            std::to_string(bookings_file_migrations().back().version));
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM payment_jobs WHERE id = 'pay_old'"), "1");
  ManualClock clock(kT0);
  SqlitePaymentQueue queue(path(), clock, QueuePolicy{std::chrono::seconds{30}, 3}, 1);
  EXPECT_EQ(queue.receive(10).size(), 1u);
}

// Another process writing the file directly (or a bug in a later query) meets the same rules: they
// are the schema's, not the store's.
TEST_F(SqliteWaitlistStoreTest, TheSchemaItselfKeepsOneLiveEntryPerBuyerAndSection) {
  {
    SqliteWaitlistStore store(path(), 1);
    ASSERT_TRUE(store.join(floor_entry("wl_1", "alice")).ok());
  }
  RawDatabase db(path());
  const std::string insert =
      "INSERT INTO waitlist_entries (id, event_id, section, buyer, quantity, status, "
      "offer_hold_id, offer_expires_at_ms, created_at_ms, updated_at_ms) VALUES ";
  EXPECT_EQ(db.exec(insert + "('wl_2', 'ev_1', 'floor', 'alice', 1, 'waiting', NULL, NULL, 0, 0)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(db.exec(insert + "('wl_2', 'ev_1', 'floor', 'alice', 1, 'offered', 'hld', 5, 0, 0)"),
            SQLITE_CONSTRAINT);
  // A finished entry is not live: any number of them may sit beside the live one.
  EXPECT_EQ(db.exec(insert + "('wl_3', 'ev_1', 'floor', 'alice', 1, 'left', NULL, NULL, 0, 0)"),
            SQLITE_OK)
      << db.error();
  EXPECT_EQ(db.exec(insert + "('wl_4', 'ev_1', 'floor', 'alice', 1, 'expired', 'h', 5, 0, 0)"),
            SQLITE_OK)
      << db.error();
  // An offer always has a hold and an expiry; an entry still in line has neither.
  EXPECT_EQ(db.exec(insert + "('wl_5', 'ev_1', 'floor', 'bob', 1, 'offered', NULL, NULL, 0, 0)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(db.exec(insert + "('wl_5', 'ev_1', 'floor', 'bob', 1, 'waiting', 'hld', 5, 0, 0)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(db.exec(insert + "('wl_5', 'ev_1', 'floor', 'bob', 0, 'waiting', NULL, NULL, 0, 0)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM waitlist_entries WHERE status IN ('waiting', 'offered')"),
            "1");
}

TEST_F(SqliteWaitlistStoreTest, TheLineIsServedFromItsIndexes) {
  { SqliteWaitlistStore store(path(), 1); }
  // The shapes of the store's queries (their WHERE and ORDER BY): no scan of the table and no
  // sort, however long the line.
  auto plan = [&](const std::string& sql) {
    std::string text;
    sqlite3_stmt* stmt = nullptr;
    sqlite3* raw = nullptr;
    EXPECT_EQ(sqlite3_open(path().c_str(), &raw), SQLITE_OK);
    if (sqlite3_prepare_v2(raw, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt, nullptr) ==
        SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        text += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
        text += "; ";
      }
    } else {
      text = sqlite3_errmsg(raw);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return text;
  };
  using ::testing::HasSubstr;
  using ::testing::Not;
  const std::string first_fitting = plan(
      "SELECT sequence FROM waitlist_entries WHERE event_id = 'e' AND section = 's' AND "
      "status = 'waiting' AND quantity <= 2 ORDER BY sequence LIMIT 1");
  EXPECT_THAT(first_fitting, HasSubstr("USING COVERING INDEX waitlist_line"));
  EXPECT_THAT(first_fitting, Not(HasSubstr("TEMP B-TREE")));
  EXPECT_THAT(plan("SELECT COUNT(*) FROM waitlist_entries WHERE event_id = 'e' AND section = 's' "
                   "AND status = 'waiting' AND sequence < 10"),
              HasSubstr("USING COVERING INDEX waitlist_line"));
  const std::string lapsed = plan(
      "SELECT id FROM waitlist_entries WHERE status = 'offered' AND offer_expires_at_ms <= 5 "
      "ORDER BY offer_expires_at_ms, sequence LIMIT 10");
  EXPECT_THAT(lapsed, HasSubstr("USING INDEX waitlist_offers_by_expiry"));
  EXPECT_THAT(lapsed, Not(HasSubstr("TEMP B-TREE")));
  EXPECT_THAT(plan("SELECT id FROM waitlist_entries WHERE offer_hold_id = 'h'"),
              HasSubstr("USING INDEX waitlist_by_offer"));
  const std::string active = plan(
      "SELECT DISTINCT event_id, section FROM waitlist_entries INDEXED BY waitlist_live_buyer "
      "WHERE status IN ('waiting', 'offered') ORDER BY event_id, section");
  EXPECT_THAT(active, HasSubstr("USING INDEX waitlist_live_buyer"));
  EXPECT_THAT(active, Not(HasSubstr("TEMP B-TREE")));
}

TEST_F(SqliteWaitlistStoreTest, BugsOfTheCallerAreRefusedLoudlyAndChangeNothing) {
  SqliteWaitlistStore store(path(), 1);
  EXPECT_THROW((void)store.join(floor_entry("", "alice")), std::invalid_argument);
  EXPECT_THROW((void)store.join(floor_entry("wl_0", "alice", 0)), std::invalid_argument);
  ASSERT_TRUE(store.join(floor_entry("wl_1", "alice")).ok());

  using S = WaitlistStatus;
  const WaitlistOffer offer{"hld_1", kT0 + std::chrono::minutes{10}};
  // Edges the state machine does not have.
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::converted, kT0),
               std::invalid_argument);
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::waiting, kT0), std::invalid_argument);
  EXPECT_THROW((void)store.transition("wl_1", S::offered, S::waiting, kT0), std::invalid_argument);
  EXPECT_THROW((void)store.transition("wl_1", S::left, S::waiting, kT0), std::invalid_argument);
  // An offer without a hold.
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::offered, kT0), std::invalid_argument);
  EXPECT_THROW((void)store.transition("wl_1", S::waiting, S::offered, kT0, WaitlistOffer{"", kT0}),
               std::invalid_argument);

  const auto entry = store.get("wl_1");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->status, S::waiting);
  EXPECT_EQ(entry->position, 1u);
  EXPECT_TRUE(store.transition("wl_1", S::waiting, S::offered, kT0, offer).ok());
}

// Roles in separate processes each open their own store on the file; the line is the file's.
TEST_F(SqliteWaitlistStoreTest, TwoStoresOnOneFileKeepOneLine) {
  SqliteWaitlistStore first(path(), 2);
  SqliteWaitlistStore second(path(), 2);
  int64_t last_sequence = 0;
  for (int i = 0; i < 10; ++i) {
    SqliteWaitlistStore& store = i % 2 == 0 ? first : second;
    auto joined = store.join(floor_entry("wl_" + std::to_string(i), "buyer" + std::to_string(i)));
    ASSERT_TRUE(joined.ok());
    EXPECT_GT(joined->sequence, last_sequence);
    EXPECT_EQ(joined->position, static_cast<uint64_t>(i + 1));
    last_sequence = joined->sequence;
  }
  EXPECT_EQ(second.get("wl_0").value().position, 1u);
  EXPECT_EQ(first.get("wl_9").value().position, 10u);
  EXPECT_EQ(position_after_join(second, floor_entry("wl_dup", "buyer0")), "conflict");
}

TEST_F(SqliteWaitlistStoreTest, ALockedFileFailsWithinTheBusyTimeoutAndReadsGoOn) {
  SqliteWaitlistStore store(path(), 2, std::chrono::milliseconds{200});
  ASSERT_TRUE(store.join(floor_entry("wl_1", "alice")).ok());
  RawDatabase other_process(path());
  ASSERT_EQ(other_process.exec("BEGIN IMMEDIATE"), SQLITE_OK);

  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)store.join(floor_entry("wl_2", "bob")), StorageError);
  EXPECT_THROW((void)store.transition("wl_1", WaitlistStatus::waiting, WaitlistStatus::left, kT0),
               StorageError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{3});
  // Readers are not blocked by a writer (WAL).
  EXPECT_EQ(store.waiting_count("ev_1", "floor"), 1u);
  EXPECT_EQ(store.get("wl_1").value().status, WaitlistStatus::waiting);

  ASSERT_EQ(other_process.exec("COMMIT"), SQLITE_OK);
  EXPECT_EQ(position_after_join(store, floor_entry("wl_2", "bob")), "2");
}

}  // namespace
}  // namespace boxoffice::testing

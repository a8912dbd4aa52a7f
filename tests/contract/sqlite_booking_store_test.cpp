// The contract suites against the SQLite adapter, each test in a fresh temporary directory, and
// what only SQLite can be asked: its schema, its locks, its files.

#include "adapters/sqlite/sqlite_booking_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "adapters/sqlite/sqlite_schema.h"
#include "contract/booking_store_contract.h"
#include "contract/idempotency_store_contract.h"
#include "contract/sqlite_raw_database.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

constexpr size_t kConnections = 4;

template <class Port>
class SqliteStorage final : public StorageUnderTest<Port> {
 public:
  std::unique_ptr<Port> open() override {
    return std::make_unique<SqliteBookingStore>(path(), kConnections);
  }
  bool durable() const override { return true; }
  std::string path() const { return (dir_.path() / "bookings.sqlite3").string(); }

 private:
  TempDir dir_;
};

template <class Port>
AdapterUnderTest<Port> sqlite_adapter() {
  return {"sqlite", [] { return std::make_unique<SqliteStorage<Port>>(); }};
}

INSTANTIATE_TEST_SUITE_P(Sqlite, BookingStoreContract,
                         ::testing::Values(sqlite_adapter<BookingStore>()),
                         adapter_test_name<BookingStore>);
INSTANTIATE_TEST_SUITE_P(Sqlite, IdempotencyStoreContract,
                         ::testing::Values(sqlite_adapter<IdempotencyStore>()),
                         adapter_test_name<IdempotencyStore>);

class SqliteBookingStoreTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "bookings.sqlite3").string(); }

  TempDir dir_;
};

Event small_event(const std::string& id) {
  Event event;
  event.id = id;
  event.name = id;
  event.currency = "EUR";
  event.sections.push_back(
      Section{"orch", "Orchestra", SectionKind::reserved, 2, 100, {Row{"A", 2}}});
  return event;
}

TEST_F(SqliteBookingStoreTest, OpensInWalModeAndMigratesOnce) {
  { SqliteBookingStore store(path(), 2); }
  { SqliteBookingStore store(path(), 2); }
  RawDatabase db(path());
  EXPECT_EQ(db.text("PRAGMA journal_mode"), "wal");
  const auto migrations = bookings_file_migrations();
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM schema_migrations"), std::to_string(migrations.size()));
  EXPECT_EQ(db.text("SELECT MAX(version) FROM schema_migrations"),
            std::to_string(migrations.back().version));
}

TEST_F(SqliteBookingStoreTest, RefusesADatabaseFromANewerBuild) {
  { SqliteBookingStore store(path(), 1); }
  {
    RawDatabase db(path());
    ASSERT_EQ(db.exec("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')"),
              SQLITE_OK);
  }
  EXPECT_THROW(SqliteBookingStore(path(), 1), StorageError);
}

TEST_F(SqliteBookingStoreTest, AFileThatIsNotADatabaseIsAStorageError) {
  std::ofstream(path()) << std::string(8192, 'x');
  EXPECT_THROW(SqliteBookingStore(path(), 1), StorageError);
}

TEST_F(SqliteBookingStoreTest, AMissingDirectoryIsAStorageError) {
  EXPECT_THROW(SqliteBookingStore((dir_.path() / "missing" / "b.sqlite3").string(), 1),
               StorageError);
}

TEST_F(SqliteBookingStoreTest, ALockedDatabaseFailsWithinTheBusyTimeout) {
  SqliteBookingStore store(path(), 2, std::chrono::milliseconds{200});
  RawDatabase other_process(path());
  ASSERT_EQ(other_process.exec("BEGIN IMMEDIATE"), SQLITE_OK);

  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)store.create_event(small_event("ev_1")), StorageError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{3});
  // Readers are not blocked by a writer (WAL).
  EXPECT_FALSE(store.get_event("ev_1").has_value());

  ASSERT_EQ(other_process.exec("COMMIT"), SQLITE_OK);
  EXPECT_TRUE(store.create_event(small_event("ev_1")).ok());
}

TEST_F(SqliteBookingStoreTest, TheSchemaItselfRefusesASecondLiveRowForASeat) {
  SqliteBookingStore store(path(), 1);
  ASSERT_TRUE(store.create_event(small_event("ev_1")).ok());
  Hold hold;
  hold.id = "hld_1";
  hold.event_id = "ev_1";
  hold.buyer = "alice";
  hold.section = "orch";
  hold.seats = {"orch:A:1"};
  hold.quantity = 1;
  hold.expires_at = from_unix_ms(10'000);
  hold.fence = 1;
  ASSERT_TRUE(store.create_booking({"bkg_1", hold, "pm_card_ok", from_unix_ms(1'000)}).ok());

  RawDatabase db(path());
  EXPECT_EQ(db.exec("INSERT INTO booking_seats (booking_id, event_id, seat_id, live) "
                    "VALUES ('bkg_x', 'ev_1', 'orch:A:1', 1)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(db.exec("INSERT INTO booking_seats (booking_id, event_id, seat_id, live) "
                    "VALUES ('bkg_x', 'ev_1', 'orch:A:1', 0)"),
            SQLITE_OK);
}

TEST_F(SqliteBookingStoreTest, CheckoutInAnUnknownSectionIsNotFound) {
  SqliteBookingStore store(path(), 1);
  ASSERT_TRUE(store.create_event(small_event("ev_1")).ok());
  Hold hold;
  hold.id = "hld_1";
  hold.event_id = "ev_1";
  hold.section = "balcony";
  hold.quantity = 1;
  hold.expires_at = from_unix_ms(10'000);
  auto booking = store.create_booking({"bkg_1", hold, "pm_card_ok", from_unix_ms(1'000)});
  ASSERT_FALSE(booking.ok());
  EXPECT_EQ(booking.error().code, Errc::not_found);
  EXPECT_EQ(store.pending_outbox(10).size(), 0u);
}

}  // namespace
}  // namespace boxoffice::testing

// The PaymentQueue contract against the SQLite queue, each test in a fresh temporary directory,
// and what only SQLite can be asked: the file it shares with the bookings, its schema, its locks.

#include "adapters/sqlite/sqlite_payment_queue.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "adapters/sqlite/sqlite_booking_store.h"
#include "adapters/sqlite/sqlite_schema.h"
#include "contract/payment_queue_contract.h"
#include "contract/sqlite_raw_database.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

constexpr size_t kConnections = 4;

class SqliteQueueStorage final : public PaymentQueueStorage {
 public:
  std::unique_ptr<PaymentQueue> open(const Clock& clock, const QueuePolicy& policy) override {
    return std::make_unique<SqlitePaymentQueue>(path(), clock, policy, kConnections);
  }
  bool durable() const override { return true; }
  std::string path() const { return (dir_.path() / "bookings.sqlite3").string(); }

 private:
  TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, PaymentQueueContract,
                         ::testing::Values(PaymentQueueAdapter{
                             "sqlite", [] { return std::make_unique<SqliteQueueStorage>(); }}),
                         payment_queue_test_name);

const Timestamp kT0 = from_unix_ms(1'800'000'000'000);
constexpr QueuePolicy kPolicy{std::chrono::seconds{30}, 3};

class SqlitePaymentQueueTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "bookings.sqlite3").string(); }

  TempDir dir_;
  ManualClock clock_{kT0};
};

Event small_event(const std::string& id) {
  Event event;
  event.id = id;
  event.name = id;
  event.currency = "EUR";
  event.sections.push_back(Section{"floor", "Floor", SectionKind::general, 10, 100, {}});
  return event;
}

Hold floor_hold(const std::string& id, uint64_t fence) {
  Hold hold;
  hold.id = id;
  hold.event_id = "ev_1";
  hold.buyer = "alice";
  hold.section = "floor";
  hold.quantity = 1;
  hold.amount = 100;
  hold.currency = "EUR";
  hold.created_at = kT0;
  hold.expires_at = kT0 + std::chrono::minutes{5};
  hold.fence = fence;
  return hold;
}

TEST_F(SqlitePaymentQueueTest, TheQueueLivesInTheBookingsFileWhicheverOpensItFirst) {
  {
    SqlitePaymentQueue queue(path(), clock_, kPolicy, 2);
    queue.publish(PaymentJob{"pay_1", PaymentJobKind::charge, "bkg_1"});
  }
  RawDatabase db(path());
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(bookings_file_migrations().size()));
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM payment_jobs"), "1");

  // The store finds its schema already there, and both work side by side on the one file.
  SqliteBookingStore store(path(), 2);
  SqlitePaymentQueue queue(path(), clock_, kPolicy, 2);
  ASSERT_TRUE(store.create_event(small_event("ev_1")).ok());
  auto booking = store.create_booking({"bkg_1", floor_hold("hld_1", 1), "pm_card_ok", kT0});
  ASSERT_TRUE(booking.ok());
  const auto delivery = queue.receive(10);
  ASSERT_EQ(delivery.size(), 1u);
  EXPECT_EQ(delivery[0].job.booking_id, "bkg_1");
  EXPECT_EQ(db.text("SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(bookings_file_migrations().size()));
}

TEST_F(SqlitePaymentQueueTest, AStoreAndAQueueOpeningAFreshFileAtOnceBothSucceed) {
  for (int round = 0; round < 5; ++round) {
    const std::string file = (dir_.path() / ("race" + std::to_string(round) + ".sqlite3")).string();
    std::latch start(2);
    std::string store_error, queue_error;
    std::thread store_thread([&] {
      start.arrive_and_wait();
      try {
        SqliteBookingStore store(file, 2);
      } catch (const std::exception& e) {
        store_error = e.what();
      }
    });
    std::thread queue_thread([&] {
      start.arrive_and_wait();
      try {
        SqlitePaymentQueue queue(file, clock_, kPolicy, 2);
      } catch (const std::exception& e) {
        queue_error = e.what();
      }
    });
    store_thread.join();
    queue_thread.join();
    EXPECT_EQ(store_error, "") << "round " << round;
    EXPECT_EQ(queue_error, "") << "round " << round;
    RawDatabase db(file);
    EXPECT_EQ(db.text("SELECT COUNT(*) FROM schema_migrations"),
              std::to_string(bookings_file_migrations().size()));
  }
}

TEST_F(SqlitePaymentQueueTest, AFileFromBeforeTheQueueIsUpgradedInPlace) {
  // A bookings file as the first release left it: migration 1 only, with a booking and its job.
  {
    RawDatabase db(path());
    ASSERT_EQ(db.exec("PRAGMA journal_mode=WAL"), SQLITE_OK);
    const auto first = bookings_file_migrations().front();
    ASSERT_EQ(first.version, 1);
    ASSERT_EQ(db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                      "name TEXT NOT NULL) STRICT"),
              SQLITE_OK);
    ASSERT_EQ(db.exec(std::string(first.sql)), SQLITE_OK) << db.error();
    ASSERT_EQ(
        db.exec("INSERT INTO schema_migrations VALUES (1, '" + std::string(first.name) + "')"),
        SQLITE_OK);
    ASSERT_EQ(db.exec("INSERT INTO events VALUES ('ev_1', 0, '{}', 0)"), SQLITE_OK);
    ASSERT_EQ(db.exec("INSERT INTO bookings (id, event_id, hold_id, buyer, section, quantity, "
                      "amount, currency, payment_method, status, fence, seats, created_at_ms, "
                      "updated_at_ms, payment_attempts, last_error) VALUES ('bkg_old', 'ev_1', "
                      "'hld_old', 'alice', 'floor', 1, 100, 'EUR', 'pm_card_ok', "
                      "'pending_payment', 1, '[]', 1000, 1000, 2, 'provider_timeout')"),
              SQLITE_OK)
        << db.error();
    ASSERT_EQ(db.exec("INSERT INTO outbox (kind, booking_id, created_at_ms) "
                      "VALUES ('charge', 'bkg_old', 1000)"),
              SQLITE_OK);
  }

  SqliteBookingStore store(path(), 2);
  const auto booking = store.get_booking("bkg_old");
  ASSERT_TRUE(booking.has_value());
  EXPECT_EQ(booking->payment_attempts, 2u);
  EXPECT_EQ(booking->last_error, "provider_timeout");
  EXPECT_EQ(store.counts("ev_1").payment_attempts, 2u);
  EXPECT_EQ(store.counts("ev_1").dead_lettered, 0u);
  store.mark_dead_lettered("bkg_old");
  EXPECT_EQ(store.counts("ev_1").dead_lettered, 1u);
  const auto stale = store.stale_bookings(BookingStatus::pending_payment, from_unix_ms(2000), 10);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].id, "bkg_old");
  const auto jobs = store.pending_outbox(10);
  ASSERT_EQ(jobs.size(), 1u);
  store.mark_outbox_published({jobs[0].sequence});
  EXPECT_TRUE(store.pending_outbox(10).empty());

  SqlitePaymentQueue queue(path(), clock_, kPolicy, 2);
  queue.publish(PaymentJob{"pay_old", PaymentJobKind::charge, "bkg_old"});
  EXPECT_EQ(queue.receive(10).size(), 1u);
  RawDatabase db(path());
  EXPECT_EQ(db.text("SELECT MAX(version) FROM schema_migrations"),
            std::to_string(bookings_file_migrations().back().version));
}

TEST_F(SqlitePaymentQueueTest, TimeComesFromTheClockNotFromSqlite) {
  clock_.set(from_unix_ms(1'000));  // 1970: far from any real "now" SQLite could supply
  SqlitePaymentQueue queue(path(), clock_, kPolicy, 1);
  queue.publish(PaymentJob{"pay_1", PaymentJobKind::charge, "bkg_1"});
  const auto delivery = queue.receive(10);
  ASSERT_EQ(delivery.size(), 1u);
  EXPECT_EQ(delivery[0].first_enqueued_at, from_unix_ms(1'000));
  RawDatabase db(path());
  EXPECT_EQ(db.text("SELECT visible_at_ms FROM payment_jobs"), std::to_string(1'000 + 30'000));
}

TEST_F(SqlitePaymentQueueTest, APolicyWithoutDeliveriesOrTimeoutIsRefused) {
  EXPECT_THROW(SqlitePaymentQueue(path(), clock_, QueuePolicy{std::chrono::seconds{30}, 0}, 1),
               std::invalid_argument);
  EXPECT_THROW(SqlitePaymentQueue(path(), clock_, QueuePolicy{Millis::zero(), 3}, 1),
               std::invalid_argument);
}

TEST_F(SqlitePaymentQueueTest, ALockedFileFailsWithinTheBusyTimeout) {
  SqlitePaymentQueue queue(path(), clock_, kPolicy, 2, std::chrono::milliseconds{200});
  queue.publish(PaymentJob{"pay_1", PaymentJobKind::charge, "bkg_1"});
  RawDatabase other_process(path());
  ASSERT_EQ(other_process.exec("BEGIN IMMEDIATE"), SQLITE_OK);

  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(queue.publish(PaymentJob{"pay_2", PaymentJobKind::charge, "bkg_2"}), StorageError);
  EXPECT_THROW(queue.receive(10), StorageError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{3});
  EXPECT_EQ(queue.counts().ready, 1u);  // readers are not blocked by a writer (WAL)

  ASSERT_EQ(other_process.exec("COMMIT"), SQLITE_OK);
  EXPECT_EQ(queue.receive(10).size(), 1u);  // the failed receive leased nothing
}

// The store's and the queue's writers queue at one gate instead of polling SQLite's file lock.
TEST_F(SqlitePaymentQueueTest, TheQueueAndTheStoreShareTheProcesssWriterGate) {
  SqliteBookingStore store(path(), 1, std::chrono::milliseconds{100});
  SqlitePaymentQueue queue(path(), clock_, kPolicy, 1, std::chrono::milliseconds{100});
  const auto gate = SqliteWriterGate::for_file((dir_.path() / "." / "bookings.sqlite3").string());
  EXPECT_NE(SqliteWriterGate::for_file((dir_.path() / "other.sqlite3").string()), gate);

  ASSERT_TRUE(gate->enter(Millis::zero()));
  EXPECT_THROW(queue.publish(PaymentJob{"pay_1", PaymentJobKind::charge, "bkg_1"}), StorageError);
  EXPECT_THROW((void)store.create_event(small_event("ev_1")), StorageError);
  gate->leave();
  queue.publish(PaymentJob{"pay_1", PaymentJobKind::charge, "bkg_1"});
  EXPECT_TRUE(store.create_event(small_event("ev_1")).ok());
}

}  // namespace
}  // namespace boxoffice::testing

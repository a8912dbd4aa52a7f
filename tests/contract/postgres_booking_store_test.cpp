// The contract suites against the PostgreSQL adapter, on one real server per test executable
// (support/postgres_server.h) and a fresh database per test; and what only PostgreSQL can be
// asked: its schema, its migrations, its connections.

#include "adapters/postgres/postgres_booking_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "adapters/postgres/pg_schema.h"
#include "contract/booking_store_contract.h"
#include "contract/idempotency_store_contract.h"
#include "support/free_port.h"
#include "support/postgres_server.h"

namespace boxoffice::testing {
namespace {

constexpr size_t kConnections = 4;

// A database of its own on the shared server, dropped with it.
class PostgresDatabase {
 public:
  PostgresDatabase() : name_(PostgresServer::shared().create_database()) {}
  ~PostgresDatabase() { PostgresServer::shared().drop_database(name_); }
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  const std::string& name() const { return name_; }
  std::string url() const { return PostgresServer::shared().url(name_); }
  PostgresServer::SqlOutcome execute(const std::string& sql) const {
    return PostgresServer::shared().execute(name_, sql);
  }

 private:
  std::string name_;
};

template <class Port>
class PostgresStorage final : public StorageUnderTest<Port> {
 public:
  std::unique_ptr<Port> open() override {
    return std::make_unique<PostgresBookingStore>(database_.url(), kConnections);
  }
  bool durable() const override { return true; }

 private:
  PostgresDatabase database_;
};

template <class Port>
AdapterUnderTest<Port> postgres_adapter() {
  return {"postgres", [] { return std::make_unique<PostgresStorage<Port>>(); }};
}

INSTANTIATE_TEST_SUITE_P(Postgres, BookingStoreContract,
                         ::testing::Values(postgres_adapter<BookingStore>()),
                         adapter_test_name<BookingStore>);
INSTANTIATE_TEST_SUITE_P(Postgres, IdempotencyStoreContract,
                         ::testing::Values(postgres_adapter<IdempotencyStore>()),
                         adapter_test_name<IdempotencyStore>);

class PostgresBookingStoreTest : public ::testing::Test {
 protected:
  PostgresDatabase database_;
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

Hold seat_hold(const std::string& id, const std::string& seat, uint64_t fence) {
  Hold hold;
  hold.id = id;
  hold.event_id = "ev_1";
  hold.buyer = "alice";
  hold.section = "orch";
  hold.seats = {seat};
  hold.quantity = 1;
  hold.expires_at = from_unix_ms(10'000);
  hold.fence = fence;
  return hold;
}

TEST_F(PostgresBookingStoreTest, MigratesOnceHoweverManyStoresOpenAtOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      try {
        PostgresBookingStore store(database_.url(), 1);
      } catch (const std::exception&) {
        ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  { PostgresBookingStore store(database_.url(), 1); }

  EXPECT_EQ(failures.load(), 0);
  const auto migrations = postgres_migrations();
  EXPECT_EQ(database_.execute("SELECT COUNT(*) FROM schema_migrations").value,
            std::to_string(migrations.size()));
  EXPECT_EQ(database_.execute("SELECT MAX(version) FROM schema_migrations").value,
            std::to_string(migrations.back().version));
}

TEST_F(PostgresBookingStoreTest, RefusesADatabaseFromANewerBuild) {
  { PostgresBookingStore store(database_.url(), 1); }
  ASSERT_EQ(
      database_.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
          .sqlstate,
      "");
  EXPECT_THROW(PostgresBookingStore(database_.url(), 1), StorageError);
}

TEST_F(PostgresBookingStoreTest, AServerThatDoesNotAnswerIsAStorageErrorAtOnce) {
  const std::string url = "postgresql://postgres@127.0.0.1:" + std::to_string(free_port()) + "/x";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(PostgresBookingStore(url, 1), StorageError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{3});
}

TEST_F(PostgresBookingStoreTest, ABrokenConnectionIsAStorageErrorAndTheNextCallReconnects) {
  PostgresBookingStore store(database_.url(), 1);
  ASSERT_TRUE(store.create_event(small_event("ev_1")).ok());
  ASSERT_EQ(database_
                .execute("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                .value,
            "1");

  EXPECT_THROW((void)store.get_event("ev_1"), StorageError);
  const auto event = store.get_event("ev_1");
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->id, "ev_1");
}

TEST_F(PostgresBookingStoreTest, TheSchemaItselfRefusesASecondLiveRowForASeat) {
  PostgresBookingStore store(database_.url(), 1);
  ASSERT_TRUE(store.create_event(small_event("ev_1")).ok());
  ASSERT_TRUE(
      store.create_booking({"bkg_1", seat_hold("hld_1", "orch:A:1", 1), "pm", from_unix_ms(1'000)})
          .ok());

  ASSERT_TRUE(
      store.create_booking({"bkg_2", seat_hold("hld_2", "orch:A:2", 2), "pm", from_unix_ms(1'000)})
          .ok());

  // 23505: unique_violation, whichever booking the row claims the seat for.
  const std::string second_claim =
      "INSERT INTO booking_seats (booking_id, event_id, seat_id, live) "
      "VALUES ('bkg_2', 'ev_1', 'orch:A:1', true)";
  EXPECT_EQ(database_.execute(second_claim).sqlstate, "23505");
  // Only live rows are unique: once bkg_1 lets go of the seat, it can be claimed again.
  ASSERT_EQ(database_.execute("UPDATE booking_seats SET live = false WHERE booking_id = 'bkg_1'")
                .sqlstate,
            "");
  EXPECT_EQ(database_.execute(second_claim).sqlstate, "");
  // 23514: check_violation; the capacity guard holds even against a hand-written UPDATE.
  EXPECT_EQ(database_.execute("UPDATE section_sales SET sold = capacity + 1").sqlstate, "23514");
}

TEST_F(PostgresBookingStoreTest, CheckoutInAnUnknownSectionIsNotFound) {
  PostgresBookingStore store(database_.url(), 1);
  ASSERT_TRUE(store.create_event(small_event("ev_1")).ok());
  Hold hold = seat_hold("hld_1", "orch:A:1", 1);
  hold.section = "balcony";
  auto booking = store.create_booking({"bkg_1", hold, "pm_card_ok", from_unix_ms(1'000)});
  ASSERT_FALSE(booking.ok());
  EXPECT_EQ(booking.error().code, Errc::not_found);
  EXPECT_EQ(store.pending_outbox(10).size(), 0u);
}

TEST_F(PostgresBookingStoreTest, ConcurrentCheckoutsOfOneHoldMakeOneBooking) {
  PostgresBookingStore store(database_.url(), 8);
  ASSERT_TRUE(store.create_event(small_event("ev_1")).ok());
  const Hold hold = seat_hold("hld_1", "orch:A:1", 1);
  std::vector<std::thread> threads;
  std::vector<std::string> booking_ids(8);
  for (size_t i = 0; i < booking_ids.size(); ++i) {
    threads.emplace_back([&, i] {
      auto booking = store.create_booking(
          {"bkg_" + std::to_string(i), hold, "pm_card_ok", from_unix_ms(1'000)});
      if (booking.ok()) booking_ids[i] = booking->id;
    });
  }
  for (auto& thread : threads) thread.join();

  for (const auto& id : booking_ids) EXPECT_EQ(id, booking_ids[0]);
  EXPECT_EQ(store.counts("ev_1").pending_payment, 1u);
  EXPECT_EQ(store.pending_outbox(10).size(), 1u);
}

}  // namespace
}  // namespace boxoffice::testing

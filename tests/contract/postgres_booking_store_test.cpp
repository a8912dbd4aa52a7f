// The contract suites against the PostgreSQL adapter, on one real server per test executable
// (support/postgres_server.h) and a fresh database per test; and what only PostgreSQL can be
// asked: its schema, its migrations, its connections.

#include "adapters/postgres/postgres_booking_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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

// --- migrations: applied on open, or only checked -------------------------------------------

TEST_F(PostgresBookingStoreTest, AStoreThatMustNotMigrateRefusesABehindSchemaAndChangesNothing) {
  PostgresStoreOptions options;
  options.connections = 1;
  options.migrate = false;
  try {
    PostgresBookingStore store(database_.url(), options);
    FAIL() << "opened a database without a schema";
  } catch (const StorageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "the bookings database is at schema version 0, this build needs " +
                  std::to_string(postgres_schema_version_needed()) + ": run `boxoffice migrate`");
  }
  EXPECT_EQ(database_.execute("SELECT to_regclass('schema_migrations') IS NULL").value, "t");

  const auto applied = migrate_postgres(database_.url());
  ASSERT_EQ(applied.size(), postgres_migrations().size());
  EXPECT_EQ(applied.back().version, postgres_schema_version_needed());
  EXPECT_TRUE(migrate_postgres(database_.url()).empty()) << "a second run applies nothing";
  const PgSchemaStatus status = postgres_schema_status(database_.url());
  EXPECT_EQ(status.version, postgres_schema_version_needed());
  EXPECT_TRUE(status.pending.empty());

  PostgresBookingStore store(database_.url(), options);
  EXPECT_TRUE(store.create_event(small_event("ev_1")).ok());
}

TEST_F(PostgresBookingStoreTest, SchemaStatusListsWhatIsPendingWithoutChangingAnything) {
  const PgSchemaStatus status = postgres_schema_status(database_.url());
  EXPECT_EQ(status.version, 0);
  EXPECT_EQ(status.pending.size(), postgres_migrations().size());
  EXPECT_EQ(database_.execute("SELECT to_regclass('schema_migrations') IS NULL").value, "t");
}

// --- group commit ------------------------------------------------------------------------------

// Reserved rows "A", "B"... of `seats_per_row` seats in "orch", and a general "floor".
Event sale_event(const std::string& id, uint32_t rows, uint32_t seats_per_row,
                 uint32_t floor_capacity) {
  Event event = small_event(id);
  event.sections.clear();
  Section orch{"orch", "Orchestra", SectionKind::reserved, rows * seats_per_row, 100, {}};
  for (uint32_t row = 0; row < rows; ++row) {
    orch.rows.push_back(Row{std::string(1, static_cast<char>('A' + row)), seats_per_row});
  }
  event.sections.push_back(orch);
  event.sections.push_back(Section{"floor", "Floor", SectionKind::general, floor_capacity, 50, {}});
  return event;
}

Hold floor_hold(const std::string& id, uint64_t fence) {
  Hold hold = seat_hold(id, "", fence);
  hold.section = "floor";
  hold.seats.clear();
  return hold;
}

std::string outcome_of(const Result<Booking>& booking) {
  return booking.ok() ? "ok" : std::string(to_string(booking.error().code));
}

// Waits until `backends` sessions of the database wait for a row lock.
void wait_for_lock_waiters(const PostgresDatabase& database, int backends) {
  const std::string waiting =
      "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
      "AND wait_event_type = 'Lock'";
  for (int i = 0; i < 500 && database.execute(waiting).value != std::to_string(backends); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ASSERT_EQ(database.execute(waiting).value, std::to_string(backends));
}

// Another client holds the floor's row lock, so the first two checkouts (one per batch slot of
// two) wait on it and every later one queues; when it lets go, the queued checkouts are committed
// in shared transactions. Each must get its own answer, and a refusal must undo only itself.
TEST_F(PostgresBookingStoreTest, GroupCommitAnswersEachCheckoutOfABatchOnItsOwn) {
  PostgresStoreOptions options;
  options.connections = kConnections;
  options.group_commit_batches_max = 2;
  PostgresBookingStore store(database_.url(), options);
  ASSERT_TRUE(store.create_event(sale_event("ev_1", 1, 10, 4)).ok());
  PgConnection blocker(database_.url(), Millis{5'000}, Millis{30'000});
  blocker.execute_script("block the floor",
                         "BEGIN; UPDATE section_sales SET sold = sold WHERE section_id = 'floor'");

  std::vector<std::thread> threads;
  std::map<std::string, std::string> outcomes;  // thread name → "ok" or the refusal's code
  std::map<std::string, std::string> booking_ids;
  std::mutex mutex;
  const auto run = [&](const std::string& name, Hold hold, Timestamp now = from_unix_ms(1'000)) {
    threads.emplace_back([&, name, hold, now] {
      std::string outcome;
      std::string booking_id;
      try {
        auto booking = store.create_booking({"bkg_" + name, hold, "pm_card_ok", now});
        outcome = outcome_of(booking);
        if (booking.ok()) booking_id = booking->id;
      } catch (const std::exception& e) {
        outcome = std::string("exception: ") + e.what();
      }
      std::lock_guard lock(mutex);
      outcomes[name] = outcome;
      booking_ids[name] = booking_id;
    });
  };
  uint64_t fence = 0;
  run("plug1", floor_hold("hld_plug1", ++fence));
  run("plug2", floor_hold("hld_plug2", ++fence));
  wait_for_lock_waiters(database_, 2);

  // Two holds for each of seats 1..8 (one wins, the other is refused, whatever the order);
  // four more floor holds, for 4 places in all; one hold checked out twice; one expired.
  for (int seat = 1; seat <= 8; ++seat) {
    const std::string id = "orch:A:" + std::to_string(seat);
    run("first" + std::to_string(seat), seat_hold("hld_first" + std::to_string(seat), id, ++fence));
    run("second" + std::to_string(seat),
        seat_hold("hld_second" + std::to_string(seat), id, ++fence));
  }
  for (int i = 1; i <= 4; ++i)
    run("floor" + std::to_string(i), floor_hold("hld_floor" + std::to_string(i), ++fence));
  const Hold twice = seat_hold("hld_twice", "orch:A:9", ++fence);
  run("twice1", twice);
  run("twice2", twice);
  run("expired", seat_hold("hld_expired", "orch:A:10", ++fence), from_unix_ms(10'000));
  // Not a timed assertion: a checkout still on its way merely lands in a smaller batch.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  blocker.execute_script("unblock the floor", "COMMIT");
  for (auto& thread : threads) thread.join();

  ASSERT_EQ(outcomes.size(), 2u + 16u + 4u + 3u) << "every caller is answered";
  for (int seat = 1; seat <= 8; ++seat) {
    std::multiset<std::string> pair{outcomes["first" + std::to_string(seat)],
                                    outcomes["second" + std::to_string(seat)]};
    EXPECT_EQ(pair.count("ok"), 1u) << "seat " << seat;
    EXPECT_EQ(pair.count("seats_unavailable") + pair.count("hold_expired"), 1u) << "seat " << seat;
  }
  // Six for four places. Not necessarily the plugs first: a waiter for a row that another
  // transaction updated re-queues on the new version, where newcomers can overtake it.
  std::multiset<std::string> floor{outcomes["plug1"], outcomes["plug2"]};
  for (int i = 1; i <= 4; ++i) floor.insert(outcomes["floor" + std::to_string(i)]);
  EXPECT_EQ(floor, (std::multiset<std::string>{"ok", "ok", "ok", "ok", "sold_out", "sold_out"}));
  EXPECT_EQ(outcomes["twice1"], "ok");
  EXPECT_EQ(outcomes["twice2"], "ok");
  EXPECT_EQ(booking_ids["twice1"], booking_ids["twice2"]) << "one booking per hold";
  EXPECT_EQ(outcomes["expired"], "hold_expired");

  // What was refused left nothing behind; what was accepted is all there.
  const auto counts = store.counts("ev_1");
  EXPECT_EQ(counts.pending_payment, 2u + 8u + 2u + 1u);
  EXPECT_EQ(store.pending_outbox(100).size(), 2u + 8u + 2u + 1u);
  EXPECT_EQ(database_.execute("SELECT sold FROM section_sales WHERE section_id = 'floor'").value,
            "4");
  EXPECT_EQ(database_.execute("SELECT COUNT(*) FROM booking_seats WHERE live").value, "9");
  EXPECT_EQ(
      database_.execute("SELECT COUNT(*) FROM seat_fences WHERE resource = 'orch:A:10'").value,
      "0");

  const auto counters = store.group_commit_counters();
  EXPECT_EQ(counters.checkouts, outcomes.size());
  EXPECT_LT(counters.transactions, counters.checkouts) << "checkouts shared transactions";
}

TEST_F(PostgresBookingStoreTest, WithoutGroupCommitEachCheckoutIsItsOwnTransaction) {
  PostgresStoreOptions options;
  options.connections = kConnections;
  options.group_commit_max = 1;
  PostgresBookingStore store(database_.url(), options);
  ASSERT_TRUE(store.create_event(sale_event("ev_1", 1, 10, 4)).ok());
  std::vector<std::thread> threads;
  std::atomic<int> booked{0};
  for (int seat = 1; seat <= 10; ++seat) {
    threads.emplace_back([&, seat] {
      const auto id = std::to_string(seat);
      if (store
              .create_booking({"bkg_" + id, seat_hold("hld_" + id, "orch:A:" + id, 1), "pm",
                               from_unix_ms(1'000)})
              .ok()) {
        ++booked;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(booked.load(), 10);
  const auto counters = store.group_commit_counters();
  EXPECT_EQ(counters.transactions, 10u);
  EXPECT_EQ(counters.checkouts, 10u);
}

// Prints checkouts per second of 32 concurrent callers, with group commit and without
// (group_commit_max 1), on a server that flushes its WAL at every commit as production does.
// The figures are information, not assertions: only the outcomes are checked.
TEST(PostgresGroupCommitThroughput, PrintsCheckoutsPerSecondWithAndWithoutBatching) {
  constexpr int kCallers = 32;
  constexpr int kCheckoutsPerCaller = 25;
  constexpr uint32_t kRows = 20;
  constexpr uint32_t kSeatsPerRow = 40;  // 800 seats = kCallers * kCheckoutsPerCaller
  PostgresServer server(PostgresServer::Options{.fsync = true});

  struct Workload {
    const char* name;
    bool general;  // every checkout takes the floor's one row, or a seat of its own
  };
  for (const Workload workload :
       {Workload{"reserved seats", false}, Workload{"general floor", true}}) {
    for (const size_t group_commit_max :
         {PostgresStoreOptions::group_commit_max_limit, size_t{1}}) {
      const std::string database = server.create_database();
      PostgresStoreOptions options;
      options.connections = 16;
      options.group_commit_max = group_commit_max;
      PostgresBookingStore store(server.url(database), options);
      ASSERT_TRUE(
          store
              .create_event(sale_event("ev_1", kRows, kSeatsPerRow, kCallers * kCheckoutsPerCaller))
              .ok());
      std::atomic<int> booked{0};
      std::latch start(kCallers + 1);
      std::vector<std::thread> callers;
      for (int caller = 0; caller < kCallers; ++caller) {
        callers.emplace_back([&, caller] {
          start.arrive_and_wait();
          for (int i = 0; i < kCheckoutsPerCaller; ++i) {
            const int n = caller * kCheckoutsPerCaller + i;
            const std::string id = std::to_string(n);
            const std::string seat =
                "orch:" + std::string(1, static_cast<char>('A' + n / kSeatsPerRow)) + ":" +
                std::to_string(n % kSeatsPerRow + 1);
            const Hold hold = workload.general
                                  ? floor_hold("hld_" + id, static_cast<uint64_t>(n + 1))
                                  : seat_hold("hld_" + id, seat, static_cast<uint64_t>(n + 1));
            try {
              if (store.create_booking({"bkg_" + id, hold, "pm", from_unix_ms(1'000)}).ok())
                ++booked;
            } catch (const std::exception&) {
            }
          }
        });
      }
      start.arrive_and_wait();
      const auto began = std::chrono::steady_clock::now();
      for (auto& caller : callers) caller.join();
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

      EXPECT_EQ(booked.load(), kCallers * kCheckoutsPerCaller);
      const auto counters = store.group_commit_counters();
      std::printf(
          "[ figures  ] %-14s group_commit_max %2zu: %4d checkouts by %d callers in %.2f s = "
          "%6.0f checkouts/s, %llu transactions (%.1f checkouts each)\n",
          workload.name, group_commit_max, booked.load(), kCallers, seconds,
          booked.load() / seconds, static_cast<unsigned long long>(counters.transactions),
          counters.transactions ? double(counters.checkouts) / double(counters.transactions) : 0.0);
      std::fflush(stdout);
    }
  }
}

}  // namespace
}  // namespace boxoffice::testing

// The Payment Processor's pump against real parts (SQLite bookings and queue, in-memory seat locks,
// the payment simulator over HTTP): a slot freed by a finished job is refilled at once, not on
// the next idle poll.
#include "services/payment_processor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "adapters/http_provider/http_payment_provider.h"
#include "adapters/memory/memory_seat_lock_store.h"
#include "adapters/sqlite/sqlite_booking_store.h"
#include "adapters/sqlite/sqlite_payment_queue.h"
#include "payment_sim/sim_server.h"
#include "ports/clock.h"
#include "services/booking_service.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;

TEST(PaymentProcessorPump, AFreedSlotIsFilledAtOnceNotOnTheNextPoll) {
  TempDir dir;
  const auto path = (dir.path() / "bookings.sqlite3").string();
  SystemClock clock;
  MemorySeatLockStore locks;
  SqliteBookingStore bookings(path, 4);
  SqlitePaymentQueue queue(path, clock, QueuePolicy{}, 4);
  payment_sim::InProcessPaymentSim sim;
  HttpPaymentProvider provider(sim.base_url());
  BookingService service(clock, locks, bookings);

  Event event;
  event.name = "Pump night";
  event.starts_at = clock.now() + std::chrono::hours{24 * 30};
  event.sale_opens_at = clock.now() - std::chrono::hours{1};
  event.currency = "USD";
  event.sections.push_back(Section{"floor", "Floor", SectionKind::general, 10, 5000, {}});
  auto created = service.create_event(Caller{"ops", true}, event);
  ASSERT_TRUE(created) << created.error().detail;

  // Three bookings waiting for payment before the processor starts.
  std::vector<std::string> ids;
  for (const char* buyer : {"ann", "ben", "cat"}) {
    auto hold = service.create_hold(Caller{buyer}, created->id, SectionQuantity{"floor", 1});
    ASSERT_TRUE(hold) << hold.error().detail;
    auto booking = service.checkout(Caller{buyer}, hold->id, "pm_card_ok");
    ASSERT_TRUE(booking) << booking.error().detail;
    ids.push_back(booking->id);
  }

  // One job at a time, and an idle poll far longer than the test: only a refill on a freed slot
  // gets the second and third job charged.
  PaymentProcessorOptions options;
  options.concurrency = 1;
  options.idle_poll = std::chrono::hours{1};
  options.maintenance_interval = std::chrono::hours{1};
  PaymentProcessor processor(clock, bookings, queue, provider, locks, options);
  processor.start();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  size_t confirmed = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    confirmed = 0;
    for (const auto& id : ids) {
      const auto booking = bookings.get_booking(id);
      confirmed += booking && booking->status == BookingStatus::confirmed;
    }
    if (confirmed == ids.size()) break;
    std::this_thread::sleep_for(20ms);
  }
  processor.stop();
  EXPECT_EQ(confirmed, ids.size());
}

}  // namespace
}  // namespace boxoffice::testing

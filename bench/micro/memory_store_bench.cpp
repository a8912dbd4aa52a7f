// A hold in the in-memory seat lock store, on a 1,000-seat and a 1,000,000-seat event: the cost
// of a hold must not grow with the event (issue 7, row 7). Each iteration holds and releases, so
// the event stays as free as it started and every iteration does the same work.
#include <benchmark/benchmark.h>

#include <string>

#include "adapters/memory/memory_seat_lock_store.h"
#include "http/json_codec.h"

namespace boxoffice {
namespace {

constexpr uint32_t kSeatsPerRow = 1000;
constexpr uint32_t kSeatsPerHold = 4;
constexpr uint32_t kBuyers = 1000;  // holds rotate over buyers, far from any per-buyer cap

const Timestamp kNow = from_unix_ms(1'800'000'000'000);

/// A reserved section of `seats` (rows of kSeatsPerRow) and a general-admission one as large.
Event make_event(uint32_t seats) {
  const uint32_t rows = seats / kSeatsPerRow;
  std::string body = R"({"name":"bench","starts_at":"2027-06-01T19:00:00Z","currency":"USD",)"
                     R"("sale_opens_at":"2020-01-01T00:00:00Z","max_seats_per_order":8,)"
                     R"("max_seats_per_buyer":8,"sections":[)"
                     R"({"id":"floor","name":"Floor","kind":"general","price":100,"capacity":)" +
                     std::to_string(seats) +
                     R"(},{"id":"orch","name":"Orchestra","kind":"reserved","price":100,"rows":[)";
  for (uint32_t r = 0; r < rows; ++r) {
    body += (r ? "," : "") + std::string{R"({"row":"R)"} + std::to_string(r) + R"(","seats":)" +
            std::to_string(kSeatsPerRow) + "}";
  }
  body += "]}]}";
  auto event = http::event_from_json(body, kNow);
  if (!event || validate_and_normalize(*event)) throw std::runtime_error("bench event refused");
  event->id = "evt_bench";
  return std::move(*event);
}

struct Fixture {
  explicit Fixture(uint32_t seats) : store(Millis{0}) { store.add_event(make_event(seats)); }
  HoldRequest request(HoldSelection selection) {
    HoldRequest r;
    r.hold_id = "hld_" + std::to_string(next++);
    r.event_id = "evt_bench";
    r.buyer = "buyer-" + std::to_string(next % kBuyers);
    r.selection = std::move(selection);
    r.now = kNow;
    r.expires_at = kNow + std::chrono::minutes{10};
    r.buyer_seats_max = 8;
    return r;
  }
  void hold_and_release(HoldSelection selection, benchmark::State& state) {
    auto r = request(std::move(selection));
    auto held = store.hold(r);
    if (!held) {
      state.SkipWithError("hold refused");
      return;
    }
    benchmark::DoNotOptimize(held);
    auto released = store.release(r.hold_id, kNow);
    if (!released) state.SkipWithError("release refused");
  }
  MemorySeatLockStore store;
  uint64_t next = 0;
};

/// Four adjacent exact seats, anywhere in the section (a different row each time).
void BM_MemoryHoldExactSeats(benchmark::State& state) {
  const auto seats = static_cast<uint32_t>(state.range(0));
  Fixture f(seats);
  const uint32_t rows = seats / kSeatsPerRow;
  uint64_t i = 0;
  for (auto _ : state) {
    const auto row = (i * 7919) % rows;
    const auto first = 1 + (i * 4) % (kSeatsPerRow - kSeatsPerHold);
    ExactSeats exact;
    for (uint32_t s = 0; s < kSeatsPerHold; ++s) {
      exact.seat_ids.push_back("orch:R" + std::to_string(row) + ":" + std::to_string(first + s));
    }
    f.hold_and_release(std::move(exact), state);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}

/// Best available: four adjacent seats nearest the front.
void BM_MemoryHoldBestAvailable(benchmark::State& state) {
  Fixture f(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) f.hold_and_release(SectionQuantity{"orch", kSeatsPerHold}, state);
  state.SetItemsProcessed(state.iterations());
}

/// General admission: a quantity of a capacity.
void BM_MemoryHoldGeneral(benchmark::State& state) {
  Fixture f(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) f.hold_and_release(SectionQuantity{"floor", kSeatsPerHold}, state);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_MemoryHoldExactSeats)->Arg(1'000)->Arg(1'000'000);
BENCHMARK(BM_MemoryHoldBestAvailable)->Arg(1'000)->Arg(1'000'000);
BENCHMARK(BM_MemoryHoldGeneral)->Arg(1'000)->Arg(1'000'000);

}  // namespace
}  // namespace boxoffice

#pragma once
// The SeatLockStore contract, written once against the port and instantiated for every adapter
// (seat_lock_store_adapters_test.cpp).

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "ports/seat_lock_store.h"

namespace boxoffice::testing {

/// One test's store and whatever engine it runs on (a Redis server, a cluster...), which lives as
/// long as the store.
class SeatLockStoreUnderTest {
 public:
  virtual ~SeatLockStoreUnderTest() = default;
  virtual SeatLockStore& store() = 0;
  /// Whether the store has an engine apart from itself that can forget (not in memory): the
  /// tests that need wipe_engine() are skipped otherwise.
  virtual bool can_wipe_engine() const { return false; }
  /// Makes the engine forget everything, as a restart without persistence or a failover to an
  /// empty replica does.
  virtual void wipe_engine() {}
};

struct SeatLockStoreFactory {
  std::string name;  // becomes part of the test names: [A-Za-z0-9_] only
  std::function<std::unique_ptr<SeatLockStoreUnderTest>()> make;
};

inline void PrintTo(const SeatLockStoreFactory& factory, std::ostream* out) {
  *out << factory.name;
}

class SeatLockStoreContract : public ::testing::TestWithParam<SeatLockStoreFactory> {
 protected:
  void SetUp() override {
    under_test = GetParam().make();
    store = &under_test->store();
  }
  std::unique_ptr<SeatLockStoreUnderTest> under_test;
  SeatLockStore* store = nullptr;
};

/// A new event as the Booking Service opens it: its layout, then a restore with no claims (an
/// event takes holds once restored).
void open_event(SeatLockStore& store, const Event& event);

}  // namespace boxoffice::testing

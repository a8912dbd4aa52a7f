#pragma once
// The SeatLockStore contract, written once against the port and instantiated for every adapter
// (seat_lock_store_adapters_test.cpp).

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "ports/seat_lock_store.h"

namespace boxoffice::testing {

struct SeatLockStoreFactory {
  std::string name;
  std::function<std::unique_ptr<SeatLockStore>()> make;
};

class SeatLockStoreContract : public ::testing::TestWithParam<SeatLockStoreFactory> {
 protected:
  void SetUp() override { store = GetParam().make(); }
  std::unique_ptr<SeatLockStore> store;
};

}  // namespace boxoffice::testing

#pragma once
// The IdempotencyStore contract, written once against the port; see booking_store_contract.h
// for how an adapter instantiates it.

#include <gtest/gtest.h>

#include <memory>

#include "contract/adapter_under_test.h"
#include "ports/idempotency_store.h"

namespace boxoffice::testing {

using IdempotencyStoreAdapter = AdapterUnderTest<IdempotencyStore>;

class IdempotencyStoreContract : public ::testing::TestWithParam<IdempotencyStoreAdapter> {
 protected:
  void SetUp() override;
  void TearDown() override;

  IdempotencyStore& store() { return *store_; }
  bool durable() const { return storage_->durable(); }
  void reopen();

 private:
  std::unique_ptr<StorageUnderTest<IdempotencyStore>> storage_;
  std::unique_ptr<IdempotencyStore> store_;
};

}  // namespace boxoffice::testing

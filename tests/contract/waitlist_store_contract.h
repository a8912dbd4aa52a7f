#pragma once
// The WaitlistStore contract, written once against the port. An adapter's test file runs it with
//   INSTANTIATE_TEST_SUITE_P(Sqlite, WaitlistStoreContract,
//                            ::testing::Values(WaitlistStoreAdapter{"sqlite", make_storage}),
//                            adapter_test_name<WaitlistStore>);
// Times are plain values the suite passes in: the port takes them from its caller.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "contract/adapter_under_test.h"
#include "ports/waitlist_store.h"

namespace boxoffice::testing {

using WaitlistStoreAdapter = AdapterUnderTest<WaitlistStore>;

class WaitlistStoreContract : public ::testing::TestWithParam<WaitlistStoreAdapter> {
 protected:
  void SetUp() override;
  void TearDown() override;

  WaitlistStore& store() { return *store_; }
  bool durable() const { return storage_->durable(); }
  // Closes the store and opens another over the same storage.
  void reopen();

 private:
  std::unique_ptr<StorageUnderTest<WaitlistStore>> storage_;
  std::unique_ptr<WaitlistStore> store_;
};

}  // namespace boxoffice::testing

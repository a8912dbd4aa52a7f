#pragma once
// The BookingStore contract, written once against the port. An adapter's test file runs it with
//   INSTANTIATE_TEST_SUITE_P(Sqlite, BookingStoreContract,
//                            ::testing::Values(BookingStoreAdapter{"sqlite", make_storage}),
//                            adapter_test_name<BookingStore>);

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "contract/adapter_under_test.h"
#include "ports/booking_store.h"

namespace boxoffice::testing {

using BookingStoreAdapter = AdapterUnderTest<BookingStore>;

class BookingStoreContract : public ::testing::TestWithParam<BookingStoreAdapter> {
 protected:
  void SetUp() override;
  void TearDown() override;

  BookingStore& store() { return *store_; }
  bool durable() const { return storage_->durable(); }
  // Closes the store and opens another over the same storage.
  void reopen();

 private:
  std::unique_ptr<StorageUnderTest<BookingStore>> storage_;
  std::unique_ptr<BookingStore> store_;
};

}  // namespace boxoffice::testing

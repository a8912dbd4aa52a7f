#pragma once
// How a contract suite meets an adapter: the suite is written once against a port, and each
// adapter's test file instantiates it with a factory for that adapter's storage.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

namespace boxoffice::testing {

// The storage behind one test (a temporary directory, a database, a fresh key prefix...). It
// opens stores over itself, one at a time, as often as a test asks, and outlives them.
template <class Port>
class StorageUnderTest {
 public:
  virtual ~StorageUnderTest() = default;
  virtual std::unique_ptr<Port> open() = 0;
  // Whether a store opened again sees what an earlier one wrote (false for in-memory stores).
  virtual bool durable() const = 0;
};

template <class Port>
struct AdapterUnderTest {
  std::string name;  // becomes part of the test names: [A-Za-z0-9_] only
  std::function<std::unique_ptr<StorageUnderTest<Port>>()> make_storage;
};

template <class Port>
void PrintTo(const AdapterUnderTest<Port>& adapter, std::ostream* out) {
  *out << adapter.name;
}

// Names each instantiation's tests after its adapter ("Sqlite/BookingStoreContract.X/sqlite").
template <class Port>
std::string adapter_test_name(const ::testing::TestParamInfo<AdapterUnderTest<Port>>& info) {
  return info.param.name;
}

}  // namespace boxoffice::testing

// Every SeatLockStore adapter runs the same contract suite.
#include "adapters/memory/memory_seat_lock_store.h"
#include "contract/seat_lock_store_contract.h"

namespace boxoffice::testing {

INSTANTIATE_TEST_SUITE_P(Adapters, SeatLockStoreContract,
                         ::testing::Values(SeatLockStoreFactory{
                             "memory", [] { return std::make_unique<MemorySeatLockStore>(); }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace boxoffice::testing

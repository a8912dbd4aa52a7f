#pragma once
// `boxoffice demo`: a flash sale end to end on the embedded engines, over real HTTP. It starts a
// System in this process, creates an event, lets thousands of simulated buyers compete for its
// seats, waits until every booking is final, and checks the invariants against what the API and
// the payment simulator's ledger say.

#include <cstdint>
#include <optional>
#include <string>

namespace boxoffice::app {

struct DemoOptions {
  uint32_t buyers = 0;           // 0: 6000, or 800 with `small`
  uint32_t concurrency = 64;     // buyers active at once, each on its own keep-alive connection
  std::string data_dir;          // empty: a fresh temporary directory
  bool keep_data = false;        // keep that temporary directory (a given data_dir is always kept)
  std::optional<uint64_t> seed;  // the buyers' choices; nullopt: a random seed (printed)
  bool small = false;            // ~300 seats: a quick run for tests
};

/// Prints a live progress line on stderr and the report on stdout. Returns 0 when every invariant
/// check passed, 1 when one failed or the sale could not run, 2 for options it cannot use, 130
/// when interrupted (SIGINT, SIGTERM).
int run_demo(const DemoOptions& options);

}  // namespace boxoffice::app

#pragma once

#include <cstdint>

namespace boxoffice::testing {

/// A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it, we release it. Another
/// process may take it before the caller binds it; the kernel hands out ports round-robin, so that
/// is rare enough for tests.
uint16_t free_port();

}  // namespace boxoffice::testing

#pragma once

#include <atomic>
#include <chrono>

#include "domain/time.h"

namespace boxoffice {

/// Where every component gets the time from, so expiry can be tested without sleeping.
/// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

/// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  Timestamp now() const override {
    return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  }
};

/// A clock that moves only when told to. Real code (not a test double): the demo and tests use it
/// to make time explicit.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : ms_(to_unix_ms(start)) {}
  Timestamp now() const override { return from_unix_ms(ms_.load()); }
  void advance(Millis by) { ms_ += by.count(); }
  void set(Timestamp t) { ms_ = to_unix_ms(t); }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace boxoffice

#pragma once
// Rate limiting at the gateway: GCRA (the generic cell rate algorithm) per key, keys being a
// route class and a buyer or a client address. The limiter is a port with two implementations:
// MemoryRateLimiter here (one process, embedded mode) and RedisRateLimiter
// (adapters/redis/redis_rate_limiter.h), which several gateways share so that together they allow
// the rate one would.
//
// GCRA keeps one number per key, the theoretical arrival time (TAT): when the next request would
// be due if requests came exactly once per emission interval T = period / count. A request at
// `now` is allowed when TAT - now <= tolerance, tolerance = (burst - 1) * T; it then moves TAT to
// max(TAT, now) + T. A refused request changes nothing and learns exactly when it would pass:
// retry_after = TAT - tolerance - now. A key whose TAT is in the past carries no information
// (it is the same as a key never seen), which is what bounds the state kept.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/error.h"
#include "domain/time.h"
#include "http/message.h"
#include "ports/clock.h"

namespace boxoffice::http {

struct Route;

using Micros = std::chrono::microseconds;

/// One GCRA limit: on average one request per `emission_interval`, up to `burst` at once.
struct RateLimit {
  Micros emission_interval{1'000'000};
  int64_t burst = 1;

  /// `count` requests per `period`, `burst` at once (count and burst >= 1).
  static RateLimit per(int64_t count, std::chrono::seconds period, int64_t burst) {
    return {std::chrono::duration_cast<Micros>(period) / count, burst};
  }
  /// How far ahead of `now` the TAT may be for a request to pass.
  Micros tolerance() const { return emission_interval * (burst - 1); }
  bool operator==(const RateLimit&) const = default;
};

struct RateDecision {
  bool allowed = false;
  /// Refused: how long until the same request would be allowed (> 0). Allowed: zero.
  Micros retry_after{0};
  /// Allowed: how many more requests would be allowed at once right now. Refused: zero.
  int64_t remaining = 0;
};

/// The limiter port. Implementations are thread-safe; `now` comes from the caller (its Clock),
/// never from the implementation, so tests move time explicitly.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;

  /// Counts one request against `key` under `limit` at `now` when it is allowed; a refused request
  /// is not counted. A key is always checked with the same limit (its state assumes it).
  /// Throws StorageError when a shared store does not answer (the caller decides whether to fail
  /// open or closed).
  virtual RateDecision check(const std::string& key, const RateLimit& limit, Timestamp now) = 0;
  using CheckDone = std::function<void(std::exception_ptr error, RateDecision decision)>;
  /// check() without blocking the calling thread: `done` runs once, maybe on the store client's
  /// I/O thread (it must not block), maybe before this returns. The default runs check().
  virtual void async_check(const std::string& key, const RateLimit& limit, Timestamp now,
                           CheckDone done);
};

/// The GCRA step on one key's TAT (microseconds since the epoch; 0 for a key never seen).
/// Updates `tat` when allowed. Shared by the memory limiter and the unit tests; the Redis script
/// does the same arithmetic.
RateDecision gcra_step(int64_t& tat_us, const RateLimit& limit, int64_t now_us);

struct MemoryRateLimiterOptions {
  /// Keys kept at most (about 100 bytes each). A full shard first forgets its idle keys (TAT in
  /// the past, which loses nothing); if none is idle it forgets the one closest to idle.
  size_t keys_max = 1 << 20;
  /// Independent mutexes, so concurrent requests on different keys rarely wait for each other.
  size_t shards = 16;
};

/// The embedded limiter: one process's memory.
class MemoryRateLimiter final : public RateLimiter {
 public:
  explicit MemoryRateLimiter(MemoryRateLimiterOptions options = {});
  RateDecision check(const std::string& key, const RateLimit& limit, Timestamp now) override;
  /// Keys currently kept (for tests and metrics).
  size_t size() const;

 private:
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, int64_t> tat_us;
  };
  void make_room(Shard& shard, int64_t now_us);

  size_t keys_per_shard_max_;
  std::vector<Shard> shards_;
};

// --- What is limited, and how it is configured ----------------------------------------------

/// The route classes limits are configured for.
enum class RateClass : uint8_t { reads, holds, checkouts, waitlist };
inline constexpr size_t kRateClasses = 4;
/// Who a limit counts: the authenticated buyer, or the client's IP address.
enum class RateScope : uint8_t { buyer, address };
inline constexpr size_t kRateScopes = 2;

std::string_view to_string(RateClass c);
std::string_view to_string(RateScope s);

/// The class of a route by its method and pattern; nullopt for routes never limited (operations
/// endpoints, admin writes). GET routes are reads, and so are DELETEs of a hold or a waitlist
/// entry (giving something back must not be refused by a holds limit).
std::optional<RateClass> rate_class_of(std::string_view method, std::string_view pattern);

/// The purchase routes: when the shared limiter's store does not answer they fail closed (503);
/// reads go on unlimited.
inline bool fails_closed(RateClass c) { return c != RateClass::reads; }

struct RateLimitSettings {
  bool enabled = true;
  /// Per class and scope; nullopt: unlimited.
  std::array<std::array<std::optional<RateLimit>, kRateScopes>, kRateClasses> limits{};
  /// Whether the per-address limits apply to loopback clients (127.0.0.0/8, ::1). Off by default:
  /// a loopback peer is a reverse proxy on the same host (every client behind one address) or a
  /// developer's tool, and neither is one client.
  bool limit_loopback = false;

  const std::optional<RateLimit>& limit(RateClass c, RateScope s) const {
    return limits[static_cast<size_t>(c)][static_cast<size_t>(s)];
  }
  std::optional<RateLimit>& limit(RateClass c, RateScope s) {
    return limits[static_cast<size_t>(c)][static_cast<size_t>(s)];
  }
  /// The documented defaults (README, "Rate limits").
  static RateLimitSettings defaults();
  /// Everything disabled.
  static RateLimitSettings off();
};

/// Parses BOXOFFICE_RATE_LIMITS: "off", or comma-separated items that override the defaults:
///   <class>[.<scope>]=<count>/<s|m|h>[:burst=<n>]   e.g. holds.buyer=5/s:burst=10, reads=200/s
///   <class>[.<scope>]=off                            no limit
///   loopback=limited|exempt
/// Without a scope the item sets both scopes; without a burst, burst = count. An empty text is
/// the defaults. Throws std::invalid_argument with a one-line message naming the bad item.
RateLimitSettings parse_rate_limits(std::string_view text);

/// One line for the startup log: "holds buyer 10/s burst 20, ..." or "off".
std::string describe(const RateLimitSettings& settings);

/// True for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z in their usual text forms.
bool is_loopback_address(std::string_view address);

// --- The gateway's use of it ----------------------------------------------------------------

/// Applies the settings to requests: builds the keys, asks the limiter, turns a refusal into
/// 429 rate_limited with Retry-After, and an unreachable store into 503 (purchase routes) or an
/// unlimited pass (reads). Thread-safe.
class RateLimitGate {
 public:
  /// `limiter` null or settings.enabled false: every request passes. `routes` are the router's,
  /// classified once by index.
  RateLimitGate(RateLimitSettings settings, std::shared_ptr<RateLimiter> limiter,
                const Clock& clock, const std::vector<Route>& routes);

  /// nullopt: go on. Otherwise the response to send instead (429 or 503). `who` is the buyer or
  /// the address; an empty one (anonymous caller) is not limited in that scope.
  std::optional<HttpResponse> admit(size_t route_index, RateScope scope, std::string_view who);
  using Admitted = std::function<void(std::optional<HttpResponse> refusal)>;
  /// admit() without blocking on a remote store: `next` runs once with what admit() returns,
  /// maybe on the store client's I/O thread, maybe before this returns. `next` must not throw.
  void async_admit(size_t route_index, RateScope scope, std::string_view who, Admitted next);

 private:
  /// One question for the limiter.
  struct Check {
    std::string key;
    const RateLimit* limit = nullptr;
    Timestamp now{};
    RateClass rate_class = RateClass::reads;
    RateScope scope = RateScope::buyer;
  };
  /// What to ask the limiter; nullopt when this request is not limited in this scope.
  std::optional<Check> check_for(size_t route_index, RateScope scope, std::string_view who) const;
  /// The limiter's answer (or its store's failure) as admit() returns it.
  std::optional<HttpResponse> judge(const Check& check, std::exception_ptr error,
                                    const RateDecision& decision);

  /// While the store fails, reads skip it for this long instead of each waiting for its error.
  static constexpr Millis kReadsBypassAfterFailure{1000};
  /// A store failure is logged at most once per this interval.
  static constexpr Millis kFailureLogInterval{10'000};

  RateLimitSettings settings_;
  std::shared_ptr<RateLimiter> limiter_;
  const Clock& clock_;
  std::vector<std::optional<RateClass>> classes_;  // by route index
  std::atomic<int64_t> store_failed_at_ms_{0};
  std::atomic<int64_t> failure_logged_at_ms_{0};
};

}  // namespace boxoffice::http

#pragma once
// The shared rate limiter: GCRA with each key's TAT in Redis, so every gateway that points at the
// same Redis (one server or a Cluster) counts against the same limits, and two gateways together
// allow what one would.
//
// Key layout: "<prefix>{<key>}" holding the TAT in microseconds since the epoch, as a decimal
// string. The whole key is its own hash tag, so the keys of a Cluster spread over every node and
// one check is one script on one slot. Each key expires (PX) when its TAT passes: from then on it
// is the same as a key never seen, so Redis holds only the keys of clients active within their
// last burst.
//
// One check is one EVALSHA (the GCRA step of rate_limit.h in Lua, atomic on the key). The time
// comes from the caller, not from Redis: gateways are assumed to keep their clocks in step (NTP);
// a gateway whose clock is ahead by d lets a client past its limit by at most d / T requests,
// one behind is stricter by as much.
//
// Thread-safe. A Redis that does not answer, or answers with an error, throws StorageError.

#include <memory>
#include <string>

#include "adapters/redis/redis_client.h"
#include "http/rate_limit.h"

namespace boxoffice {

struct RedisRateLimiterOptions {
  /// Prepended to every key; no braces (they would change the hash tags).
  std::string key_prefix = "bo:rl:";
};

class RedisRateLimiter final : public http::RateLimiter {
 public:
  explicit RedisRateLimiter(std::shared_ptr<redis::Client> client,
                            RedisRateLimiterOptions options = {});
  ~RedisRateLimiter() override;

  http::RateDecision check(const std::string& key, const http::RateLimit& limit,
                           Timestamp now) override;
  void async_check(const std::string& key, const http::RateLimit& limit, Timestamp now,
                   CheckDone done) override;

  /// The Redis key holding `key`'s TAT (for tests that look under the limiter).
  std::string redis_key(const std::string& key) const;

 private:
  std::shared_ptr<redis::Client> client_;
  RedisRateLimiterOptions options_;
  std::unique_ptr<const redis::Script> script_;
};

}  // namespace boxoffice

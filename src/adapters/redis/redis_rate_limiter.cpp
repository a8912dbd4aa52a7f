#include "adapters/redis/redis_rate_limiter.h"

namespace boxoffice {

namespace {

// KEYS[1]: the TAT (microseconds). ARGV: now, emission interval, tolerance (microseconds).
// Returns {allowed 0|1, retry_after, remaining}. Lua numbers are doubles: exact for integers up
// to 2^53 microseconds (year 2255), and the TAT is written with %.0f, never in exponent form.
constexpr const char* kGcraScript = R"lua(
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = math.max(tonumber(stored), now)
end
if tat - now > tolerance then
  return {0, tat - tolerance - now, 0}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX',
           math.ceil((next_tat - now) / 1000))
return {1, 0, math.floor((now + tolerance - tat) / interval)}
)lua";

}  // namespace

RedisRateLimiter::RedisRateLimiter(std::shared_ptr<redis::Client> client,
                                   RedisRateLimiterOptions options)
    : client_(std::move(client)),
      options_(std::move(options)),
      script_(std::make_unique<const redis::Script>(kGcraScript)) {}

RedisRateLimiter::~RedisRateLimiter() = default;

std::string RedisRateLimiter::redis_key(const std::string& key) const {
  return options_.key_prefix + "{" + key + "}";
}

namespace {

std::vector<std::string> gcra_args(const http::RateLimit& limit, Timestamp now) {
  return {std::to_string(to_unix_ms(now) * 1000), std::to_string(limit.emission_interval.count()),
          std::to_string(limit.tolerance().count())};
}

http::RateDecision decision_of(const redis::Reply& reply) {
  if (reply.is_error()) throw StorageError("redis rate limiter: " + reply.str);
  if (reply.type != redis::Reply::Type::array || reply.elements.size() != 3) {
    throw StorageError("redis rate limiter: malformed script reply");
  }
  http::RateDecision decision;
  decision.allowed = reply.elements[0].as_integer() == 1;
  decision.retry_after = http::Micros{reply.elements[1].as_integer()};
  decision.remaining = reply.elements[2].as_integer();
  return decision;
}

}  // namespace

http::RateDecision RedisRateLimiter::check(const std::string& key, const http::RateLimit& limit,
                                           Timestamp now) {
  return decision_of(client_->eval(*script_, {redis_key(key)}, gcra_args(limit, now)));
}

void RedisRateLimiter::async_check(const std::string& key, const http::RateLimit& limit,
                                   Timestamp now, CheckDone done) {
  client_->async_eval(*script_, {redis_key(key)}, gcra_args(limit, now),
                      [done = std::move(done)](std::exception_ptr error, redis::Reply reply) {
                        http::RateDecision decision;
                        if (!error) {
                          try {
                            decision = decision_of(reply);
                          } catch (...) {
                            error = std::current_exception();
                          }
                        }
                        done(error, decision);
                      });
}

}  // namespace boxoffice

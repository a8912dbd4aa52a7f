#include "adapters/redis/redis_seat_lock_store.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>

#include "adapters/redis/redis_seat_lock_scripts.h"
#include "domain/seat_layout.h"

namespace boxoffice {

namespace {

using redis::Reply;
namespace scripts = redis_seat_locks;

// Hold-index entries outlive what they point to by this much, on top of the hold's own time and
// the retention of finished holds: forgetting an entry never decides expiry.
constexpr int64_t kIndexMarginMs = 60 * 60 * 1000;
// A hold whose checkout is undone may wait up to this long again before it expires.
constexpr int64_t kAbortedCheckoutWindowMs = 60 * 60 * 1000;
// Most holds one sweep script expires (a Redis integer, whatever `limit` the caller gives).
constexpr size_t kSweepScriptHoldsMax = 1'000'000;
// Hold-index entries written per pipeline by restore().
constexpr size_t kRestoreIndexBatch = 512;
// Hold-index buckets cleaned per sweep_expired() call, and entries forgotten per bucket.
constexpr uint32_t kIndexBucketsPerSweep = 8;
constexpr size_t kIndexForgetPerBucket = 512;
constexpr int kIndexForgetRoundsMax = 8;

// The clock the hold index is forgotten by (what key TTLs used): the store's, not a caller's `now`.
int64_t index_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
// Section kinds as the scripts name them.
constexpr std::string_view kReserved = "reserved";
constexpr std::string_view kGeneral = "general";

std::string ms(Timestamp t) { return std::to_string(to_unix_ms(t)); }

/// A hold-index entry: where the hold lives.
std::string index_entry(const std::string& event_id, const std::string& section, uint32_t quantity,
                        const std::string& buyer) {
  return event_id + "\n" + section + "\n" + std::to_string(quantity) + "\n" + buyer;
}

uint64_t to_u64(std::string_view text) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw StorageError("redis seat locks: not a number: \"" + std::string(text) + "\"");
  }
  return value;
}

int64_t to_i64(std::string_view text) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw StorageError("redis seat locks: not a number: \"" + std::string(text) + "\"");
  }
  return value;
}

/// The outcome a script names in the first element of its reply.
std::string outcome(const Reply& reply) {
  if (reply.is_error()) throw StorageError("redis seat locks: " + reply.str);
  if (reply.type != Reply::Type::array || reply.elements.empty()) {
    throw StorageError("redis seat locks: a script answered with no outcome");
  }
  return reply.elements[0].as_string();
}

void expect_ok(const Reply& reply) {
  if (reply.is_error()) throw StorageError("redis seat locks: " + reply.str);
}

/// Flat seat indices of a "index.row,index.row" list, in its order.
std::vector<uint32_t> seat_indices(std::string_view seats) {
  std::vector<uint32_t> indices;
  while (!seats.empty()) {
    const auto comma = seats.find(',');
    const auto item = seats.substr(0, comma);
    indices.push_back(static_cast<uint32_t>(to_u64(item.substr(0, item.find('.')))));
    if (comma == std::string_view::npos) break;
    seats.remove_prefix(comma + 1);
  }
  return indices;
}

std::vector<std::string_view> split(std::string_view text, char separator, size_t fields_max) {
  std::vector<std::string_view> fields;
  while (fields.size() + 1 < fields_max) {
    const auto at = text.find(separator);
    if (at == std::string_view::npos) break;
    fields.push_back(text.substr(0, at));
    text.remove_prefix(at + 1);
  }
  fields.push_back(text);
  return fields;
}

uint64_t fnv1a(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

void put_u16(std::string& out, size_t at, uint32_t value) {
  out[at] = static_cast<char>((value >> 8) & 0xff);
  out[at + 1] = static_cast<char>(value & 0xff);
}

void append_u32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

}  // namespace

/// One call of a pipeline: a plain command, or a script with its keys and arguments.
struct redis_seat_locks::Call {
  const redis::Script* script = nullptr;
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

namespace {

using redis_seat_locks::Call;

/// The command of a call: EVALSHA, or EVAL with the body (for a node that answered NOSCRIPT).
std::vector<std::string> command_of(const Call& call, bool with_body) {
  if (!call.script) return call.args;
  std::vector<std::string> command{with_body ? "EVAL" : "EVALSHA",
                                   with_body ? call.script->body() : call.script->sha1(),
                                   std::to_string(call.keys.size())};
  command.insert(command.end(), call.keys.begin(), call.keys.end());
  command.insert(command.end(), call.args.begin(), call.args.end());
  return command;
}

bool needs_body(const Call& call, const Reply& reply) {
  return call.script && reply.is_error() && reply.str.starts_with("NOSCRIPT");
}

std::vector<Reply> run_calls(redis::Client& client, const std::vector<Call>& calls) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(calls.size());
  for (const auto& call : calls) commands.push_back(command_of(call, false));
  auto replies = client.pipeline(std::move(commands));
  for (size_t i = 0; i < calls.size(); ++i) {
    // A node that restarted or never saw the script: Client::eval sends the body once.
    if (needs_body(calls[i], replies[i])) {
      replies[i] = client.eval(*calls[i].script, calls[i].keys, calls[i].args);
    }
  }
  return replies;
}

using CallsDone = std::function<void(std::exception_ptr error, std::vector<Reply> replies)>;

/// run_calls without blocking: `done` runs on the client's I/O thread.
void async_calls(redis::Client& client, std::vector<Call> calls, CallsDone done) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(calls.size());
  for (const auto& call : calls) commands.push_back(command_of(call, false));
  client.async_pipeline(
      std::move(commands), [&client, calls = std::move(calls), done = std::move(done)](
                               std::exception_ptr error, std::vector<Reply> replies) mutable {
        if (error) return done(error, {});
        std::vector<size_t> missing;
        std::vector<std::vector<std::string>> again;
        for (size_t i = 0; i < calls.size(); ++i) {
          if (!needs_body(calls[i], replies[i])) continue;
          missing.push_back(i);
          again.push_back(command_of(calls[i], true));
        }
        if (missing.empty()) return done(nullptr, std::move(replies));
        client.async_pipeline(
            std::move(again),
            [missing = std::move(missing), replies = std::move(replies), done = std::move(done)](
                std::exception_ptr error, std::vector<Reply> bodies) mutable {
              if (error) return done(error, {});
              for (size_t j = 0; j < missing.size(); ++j)
                replies[missing[j]] = std::move(bodies[j]);
              done(nullptr, std::move(replies));
            });
      });
}

Result<Hold> no_hold() { return make_error(Errc::unavailable); }

/// The section hold script's answers after which the buyer's claim and the hold index go: a
/// refusal, or a section that lost its state (hold_with_claim_script does the same in Lua).
bool gives_back(const Reply& reply) {
  if (reply.type != Reply::Type::array || reply.elements.empty()) return false;
  const auto& first = reply.elements[0];
  if (first.type != Reply::Type::string && first.type != Reply::Type::status) return false;
  return first.str == "unavailable" || first.str == "sold_out" || first.str == "lost";
}

/// A section script's call: ARGV starts with now and the retention of finished holds.
Call section_call(const redis::Script& script, const std::vector<std::string>& keys, Timestamp now,
                  Millis retention, const std::vector<std::string>& args) {
  Call call{&script, keys, {ms(now), std::to_string(retention.count())}};
  call.args.insert(call.args.end(), args.begin(), args.end());
  return call;
}

}  // namespace

struct RedisSeatLockStore::Scripts {
  redis::Script hold{scripts::section_script(scripts::kHoldScript)};
  redis::Script get{scripts::section_script(scripts::kGetScript)};
  redis::Script release{scripts::section_script(scripts::kReleaseScript)};
  redis::Script checkout{scripts::section_script(scripts::kCheckoutScript)};
  redis::Script abort{scripts::section_script(scripts::kAbortScript)};
  redis::Script mark_sold{scripts::section_script(scripts::kMarkSoldScript)};
  redis::Script release_booked{scripts::section_script(scripts::kReleaseBookedScript)};
  redis::Script counts{scripts::section_script(scripts::kCountsScript)};
  redis::Script seat_map{scripts::section_script(scripts::kSeatMapScript)};
  redis::Script sweep{scripts::section_script(scripts::kSweepScript)};
  redis::Script restore_section{scripts::section_script(scripts::kRestoreSectionScript)};
  redis::Script reserve_claim{scripts::claims_script(scripts::kReserveClaimScript)};
  redis::Script restore_claims{scripts::claims_script(scripts::kRestoreClaimsScript)};
  redis::Script set_claim{scripts::claims_script(scripts::kSetClaimScript)};
  redis::Script forget_index{scripts::kForgetIndexScript};
  redis::Script hold_with_claim{scripts::hold_with_claim_script()};
};

struct RedisSeatLockStore::EventInfo {
  EventInfo(const Event& event, const std::string& prefix) : layout(event) {
    for (const auto& section : event.sections) {
      const std::string base = prefix + "{e:" + event.id + ":" + section.id + "}:";
      std::vector<std::string> section_keys;
      for (const char* suffix : {"m", "s", "t", "r", "x", "h", "f"}) {
        section_keys.push_back(base + suffix);
      }
      keys.push_back(std::move(section_keys));
    }
  }
  const Event& event() const { return layout.event(); }

  SeatLayout layout;
  std::vector<std::vector<std::string>> keys;  // per section: meta, seats, tree, rows, x, h, f
};

RedisSeatLockStore::RedisSeatLockStore(redis::Client& client, RedisSeatLockStoreOptions options)
    : client_(client),
      options_(std::move(options)),
      scripts_(std::make_unique<const Scripts>()),
      next_index_bucket_(std::random_device{}()) {
  if (options_.buyer_buckets == 0 || options_.restore_claims_per_script == 0 ||
      options_.index_buckets == 0) {
    throw StorageError(
        "redis seat locks: buyer_buckets, index_buckets and restore_claims_per_script must be > 0");
  }
  if (options_.key_prefix.find_first_of("{}") != std::string::npos) {
    throw StorageError("redis seat locks: the key prefix may not contain braces");
  }
}

RedisSeatLockStore::~RedisSeatLockStore() = default;

void RedisSeatLockStore::add_event(const Event& event) {
  std::unique_lock lock(events_mutex_);
  if (events_.count(event.id)) return;
  events_.emplace(event.id, std::make_shared<const EventInfo>(event, options_.key_prefix));
}

std::shared_ptr<const RedisSeatLockStore::EventInfo> RedisSeatLockStore::find_event(
    const std::string& event_id) const {
  std::shared_lock lock(events_mutex_);
  auto it = events_.find(event_id);
  return it == events_.end() ? nullptr : it->second;
}

std::vector<std::string> RedisSeatLockStore::section_keys(const std::string& event_id,
                                                          const std::string& section) const {
  const auto event = find_event(event_id);
  if (!event) return {};
  const auto index = event->layout.section_index(section);
  return index ? event->keys[*index] : std::vector<std::string>{};
}

std::string RedisSeatLockStore::bucket_tag(const std::string& event_id, uint32_t bucket) const {
  return options_.key_prefix + "{b:" + event_id + ":" + std::to_string(bucket) + "}:";
}

uint32_t RedisSeatLockStore::bucket_of(const std::string& buyer) const {
  return static_cast<uint32_t>(fnv1a(buyer) % options_.buyer_buckets);
}

std::string RedisSeatLockStore::claims_key(const std::string& event_id,
                                           const std::string& buyer) const {
  return bucket_tag(event_id, bucket_of(buyer)) + "c";
}

std::string RedisSeatLockStore::claims_marker(const std::string& event_id, uint32_t bucket) const {
  // Not the ":ready" of the key-per-buyer layout: after an upgrade every bucket reads as lost and
  // restore() rebuilds its booked claims in this layout, instead of counting none of them.
  return bucket_tag(event_id, bucket) + "c:ready";
}

Call RedisSeatLockStore::claim_call(const std::string& event_id, const std::string& buyer,
                                    const std::string& hold_id, std::string claim) const {
  return Call{
      &scripts_->set_claim, {claims_key(event_id, buyer)}, {buyer, hold_id, std::move(claim)}};
}

std::string RedisSeatLockStore::index_bucket_key(uint32_t bucket) const {
  return options_.key_prefix + "idx:{" + std::to_string(bucket) + "}";
}

std::string RedisSeatLockStore::index_key(const std::string& hold_id) const {
  return index_bucket_key(static_cast<uint32_t>(fnv1a(hold_id) % options_.index_buckets));
}

Call RedisSeatLockStore::forget_index_after(const std::string& hold_id, int64_t after_ms) const {
  return Call{
      nullptr,
      {},
      {"ZADD", index_key(hold_id) + ":f", std::to_string(index_clock_ms() + after_ms), hold_id}};
}

Call RedisSeatLockStore::keep_index(const std::string& hold_id) const {
  return Call{nullptr, {}, {"ZREM", index_key(hold_id) + ":f", hold_id}};
}

std::vector<Call> RedisSeatLockStore::drop_index(const std::string& hold_id) const {
  return {Call{nullptr, {}, {"HDEL", index_key(hold_id), hold_id}}, keep_index(hold_id)};
}

void RedisSeatLockStore::raise_fence_floor(uint64_t fence) {
  uint64_t current = fence_floor_.load();
  while (current < fence && !fence_floor_.compare_exchange_weak(current, fence)) {
  }
}

Reply RedisSeatLockStore::run_section(const redis::Script& script, const EventInfo& event,
                                      uint32_t section, Timestamp now,
                                      std::vector<std::string> args) {
  Reply reply = std::move(run_calls(client_, {section_call(script, event.keys[section], now,
                                                           options_.finished_hold_retention, args)})
                              .front());
  if (outcome(reply) == "lost") throw LockStateLost(event.event().id);
  return reply;
}

std::vector<Reply> RedisSeatLockStore::run_sections(const redis::Script& script,
                                                    const EventInfo& event,
                                                    const std::vector<uint32_t>& sections,
                                                    Timestamp now,
                                                    const std::vector<std::string>& args) {
  std::vector<Call> calls;
  calls.reserve(sections.size());
  for (const auto section : sections) {
    calls.push_back(
        section_call(script, event.keys[section], now, options_.finished_hold_retention, args));
  }
  return run_calls(client_, calls);
}

Result<Hold> RedisSeatLockStore::hold(const HoldRequest& request) {
  // One implementation, the asynchronous one; a worker thread waits for it here.
  std::promise<Result<Hold>> promise;
  auto future = promise.get_future();
  async_hold(request, [&promise](std::exception_ptr error, Result<Hold> held) {
    if (error) {
      promise.set_exception(error);
    } else {
      promise.set_value(std::move(held));
    }
  });
  return future.get();
}

// A hold in progress, from the first step's reply to the second's.
struct RedisSeatLockStore::PendingHold {
  HoldRequest request;
  std::shared_ptr<const EventInfo> info;
  uint32_t section = 0;
  uint32_t quantity = 0;
  std::vector<std::string> selection;  // the hold script's mode and seats
  std::string claims;                  // the buyer's claims hash
  std::vector<std::string> hold_args;  // the section hold script's ARGV
  HoldDone done;
};

void RedisSeatLockStore::async_hold(const HoldRequest& request, HoldDone done) {
  auto pending = std::make_shared<PendingHold>();
  pending->info = find_event(request.event_id);
  if (!pending->info)
    return done(nullptr, make_error(Errc::not_found, "no event " + request.event_id));
  const auto& info = *pending->info;
  const auto& event = info.event();
  auto resolved = info.layout.resolve(request.selection);
  if (!resolved) return done(nullptr, resolved.take_error());
  pending->request = request;
  pending->section = resolved->section;
  pending->quantity = resolved->quantity;
  pending->done = std::move(done);
  if (std::holds_alternative<ExactSeats>(request.selection)) {
    pending->selection.push_back("seats");
    for (const auto& seat : resolved->seats) {
      pending->selection.push_back(std::to_string(seat.index));
      pending->selection.push_back(std::to_string(seat.row));
    }
  } else {
    pending->selection.push_back("best");
  }
  const auto& section_def = event.sections[pending->section];
  pending->claims = claims_key(event.id, request.buyer);
  pending->hold_args = {ms(request.now),
                        std::to_string(options_.finished_hold_retention.count()),
                        request.hold_id,
                        request.buyer,
                        std::to_string(pending->quantity),
                        ms(request.expires_at),
                        std::to_string(fence_floor_.load()),
                        request.for_waitlist ? "1" : "0"};
  pending->hold_args.insert(pending->hold_args.end(), pending->selection.begin(),
                            pending->selection.end());
  // Where the hold lives, then the buyer cap (before availability, so a buyer over it is told so
  // whatever is left), then the seats.
  const std::string marker = claims_marker(event.id, bucket_of(request.buyer));
  const int64_t forget_after_ms = std::max<int64_t>(0, (request.expires_at - request.now).count()) +
                                  options_.finished_hold_retention.count() + kIndexMarginMs;
  const std::string index = index_key(request.hold_id);
  std::string entry = index_entry(event.id, section_def.id, pending->quantity, request.buyer);
  Call forget = forget_index_after(request.hold_id, forget_after_ms);
  std::vector<std::string> reserve_args{ms(request.now),
                                        request.hold_id,
                                        std::to_string(pending->quantity),
                                        std::to_string(request.buyer_seats_max),
                                        ms(request.expires_at),
                                        request.buyer};

  if (!client_.cluster()) {
    // One server: the whole hold is one script, one round trip.
    Call call{&scripts_->hold_with_claim, {index, marker, pending->claims}, {}};
    const auto& section_keys = pending->info->keys[pending->section];
    call.keys.insert(call.keys.end(), section_keys.begin(), section_keys.end());
    call.keys.push_back(index + ":f");
    call.args = {request.hold_id, std::move(entry), std::move(forget.args.at(2))};
    call.args.insert(call.args.end(), reserve_args.begin(), reserve_args.end());
    call.args.insert(call.args.end(), pending->hold_args.begin(), pending->hold_args.end());
    return async_calls(client_, {std::move(call)},
                       [this, pending](std::exception_ptr error, std::vector<Reply> replies) {
                         std::optional<Result<Hold>> answer;
                         if (!error) {
                           try {
                             answer.emplace(judge_hold(*pending, replies[0]));
                           } catch (...) {
                             error = std::current_exception();
                           }
                         }
                         pending->done(error, answer ? std::move(*answer) : no_hold());
                       });
  }

  // A Cluster: the index (its bucket's slot) and the claim (the buyer's), then the section (its
  // own slot).
  async_calls(
      client_,
      {Call{nullptr, {}, {"HSET", index, request.hold_id, std::move(entry)}}, std::move(forget),
       Call{&scripts_->reserve_claim, {marker, pending->claims}, std::move(reserve_args)}},
      [this, pending](std::exception_ptr error, std::vector<Reply> replies) {
        if (error) return pending->done(error, no_hold());
        std::optional<Result<Hold>> refused;
        try {
          expect_ok(replies[0]);
          expect_ok(replies[1]);
          const auto reserved = outcome(replies[2]);
          if (reserved == "lost") {
            error = std::make_exception_ptr(LockStateLost(pending->request.event_id));
          } else if (reserved == "limit") {
            refused.emplace(limit_error(*pending, replies[2]));
          } else if (reserved != "ok") {
            throw StorageError("redis seat locks: reserve answered " + reserved);
          }
        } catch (...) {
          return pending->done(std::current_exception(), no_hold());
        }
        if (error || refused) {
          // No reservation was made: only the index goes.
          return finish_hold(pending, drop_index(pending->request.hold_id), error,
                             refused ? std::move(*refused) : no_hold());
        }
        take_seats(pending);
      });
}

Error RedisSeatLockStore::limit_error(const PendingHold& pending, const Reply& reply) {
  return make_error(Errc::limit_exceeded, "a buyer may hold or book at most " +
                                              std::to_string(pending.request.buyer_seats_max) +
                                              " seats of this event; " +
                                              std::to_string(reply.elements.at(1).as_integer()) +
                                              " already held or booked");
}

void RedisSeatLockStore::take_seats(const std::shared_ptr<PendingHold>& pending) {
  // The seats (or the quantity) in the section, all or nothing.
  async_calls(
      client_, {Call{&scripts_->hold, pending->info->keys[pending->section], pending->hold_args}},
      [this, pending](std::exception_ptr error, std::vector<Reply> replies) {
        // An engine failure leaves the reservation, which lapses at expires_at: counted
        // high.
        if (error) return pending->done(error, no_hold());
        std::optional<Result<Hold>> answer;
        try {
          answer.emplace(judge_hold(*pending, replies[0]));
        } catch (...) {
          error = std::current_exception();
        }
        if (!gives_back(replies[0])) {
          return pending->done(error, answer ? std::move(*answer) : no_hold());
        }
        // A refused hold gives its reservation back and leaves no index behind (refusals
        // are most of the traffic of a sold-out flash sale).
        const auto& request = pending->request;
        auto cleanup = drop_index(request.hold_id);
        cleanup.push_back(claim_call(request.event_id, request.buyer, request.hold_id, ""));
        finish_hold(pending, std::move(cleanup), error, answer ? std::move(*answer) : no_hold());
      });
}

Result<Hold> RedisSeatLockStore::judge_hold(const PendingHold& pending, const Reply& reply) {
  const auto& info = *pending.info;
  const auto& event = info.event();
  const auto& section_def = event.sections[pending.section];
  const auto& request = pending.request;
  const auto taken = outcome(reply);
  if (taken == "lost") throw LockStateLost(event.id);
  if (taken == "limit") return limit_error(pending, reply);  // the one-script hold's claim
  const auto* exact = std::get_if<ExactSeats>(&request.selection);
  if (taken == "unavailable") {
    Error error = make_error(Errc::seats_unavailable, "some of these seats are not available");
    for (size_t i = 1; i < reply.elements.size(); ++i) {
      error.unavailable.push_back(
          exact->seat_ids.at(static_cast<size_t>(reply.elements[i].as_integer())));
    }
    return error;
  }
  if (taken == "sold_out") {
    const bool kept = reply.elements.at(2).as_integer() != 0;
    return make_error(
        Errc::sold_out,
        kept ? "buyers are waiting for section " + section_def.id + "; join the waitlist"
             : "section " + section_def.id + " has " +
                   std::to_string(reply.elements.at(1).as_integer()) + " seats available");
  }
  if (taken != "ok") {
    throw StorageError("redis seat locks: hold " + request.hold_id + " answered " + taken);
  }
  Hold hold;
  hold.id = request.hold_id;
  hold.event_id = event.id;
  hold.buyer = request.buyer;
  hold.section = section_def.id;
  if (exact) {
    hold.seats = exact->seat_ids;
  } else {
    for (const auto index : seat_indices(reply.elements.at(2).as_string())) {
      hold.seats.push_back(info.layout.seat_id(pending.section, index));
    }
  }
  hold.quantity = pending.quantity;
  hold.amount = section_def.price * pending.quantity;
  hold.currency = event.currency;
  hold.status = HoldStatus::active;
  hold.created_at = request.now;
  hold.expires_at = request.expires_at;
  hold.fence = to_u64(reply.elements.at(1).as_string());
  remember(hold.id, Located{pending.info, pending.section, pending.quantity, request.buyer});
  return hold;
}

void RedisSeatLockStore::finish_hold(const std::shared_ptr<PendingHold>& pending,
                                     std::vector<Call> cleanup, std::exception_ptr error,
                                     Result<Hold> answer) {
  // The answer goes once the clean-up is done, so a refused hold has left nothing behind by
  // the time its buyer hears of it; a clean-up that fails makes the call fail.
  auto shared = std::make_shared<Result<Hold>>(std::move(answer));
  async_calls(
      client_, std::move(cleanup),
      [pending, error, shared](std::exception_ptr cleanup_error, std::vector<Reply> replies) {
        if (!cleanup_error) {
          for (const auto& reply : replies) {
            if (reply.is_error()) {
              cleanup_error =
                  std::make_exception_ptr(StorageError("redis seat locks: " + reply.str));
            }
          }
        }
        if (error) return pending->done(error, no_hold());
        if (cleanup_error) return pending->done(cleanup_error, no_hold());
        pending->done(nullptr, std::move(*shared));
      });
}

void RedisSeatLockStore::remember(const std::string& hold_id, const Located& where) {
  if (options_.located_holds_max == 0) return;
  std::lock_guard lock(located_mutex_);
  if (!located_.emplace(hold_id, where).second) return;
  located_order_.push_back(hold_id);
  if (located_order_.size() > options_.located_holds_max) {
    located_.erase(located_order_.front());
    located_order_.pop_front();
  }
}

std::optional<RedisSeatLockStore::Located> RedisSeatLockStore::locate(const std::string& hold_id) {
  {
    std::lock_guard lock(located_mutex_);
    if (const auto it = located_.find(hold_id); it != located_.end()) return it->second;
  }
  // The index entry, and the key a hold made before the index had buckets (hold:{<id>}, its TTL
  // the time left until it may be forgotten): such a hold moves into its bucket when looked up.
  const std::string legacy = options_.key_prefix + "hold:{" + hold_id + "}";
  const auto replies =
      run_calls(client_, {Call{nullptr, {}, {"HGET", index_key(hold_id), hold_id}},
                          Call{nullptr, {}, {"GET", legacy}}, Call{nullptr, {}, {"PTTL", legacy}}});
  for (const auto& reply : replies) expect_ok(reply);
  const Reply* entry = &replies[0];
  if (entry->is_nil() && !replies[1].is_nil()) {
    entry = &replies[1];
    const int64_t left_ms = replies[2].as_integer();  // -1: no TTL (checked out)
    for (const auto& moved : run_calls(
             client_, {Call{nullptr, {}, {"HSET", index_key(hold_id), hold_id, entry->str}},
                       left_ms >= 0 ? forget_index_after(hold_id, left_ms) : keep_index(hold_id),
                       Call{nullptr, {}, {"DEL", legacy}}})) {
      expect_ok(moved);
    }
  }
  if (entry->is_nil()) return std::nullopt;
  const auto fields = split(entry->as_string(), '\n', 4);
  if (fields.size() != 4) throw StorageError("redis seat locks: a malformed index of " + hold_id);
  Located where;
  where.event = find_event(std::string(fields[0]));
  if (!where.event) return std::nullopt;
  const auto section = where.event->layout.section_index(fields[1]);
  if (!section) return std::nullopt;
  where.section = *section;
  where.quantity = static_cast<uint32_t>(to_u64(fields[2]));
  where.buyer = std::string(fields[3]);
  remember(hold_id, where);
  return where;
}

Hold RedisSeatLockStore::to_hold(const Located& where, const std::string& record) const {
  // status|sold|quantity|created|expires|fence|seats|buyer
  const auto fields = split(record, '|', 8);
  if (fields.size() != 8 || fields[0].size() != 1) {
    throw StorageError("redis seat locks: a malformed hold record");
  }
  const auto& event = where.event->event();
  const auto& section = event.sections[where.section];
  Hold hold;
  hold.event_id = event.id;
  hold.buyer = std::string(fields[7]);
  hold.section = section.id;
  for (const auto index : seat_indices(fields[6])) {
    hold.seats.push_back(where.event->layout.seat_id(where.section, index));
  }
  hold.quantity = static_cast<uint32_t>(to_u64(fields[2]));
  hold.amount = section.price * hold.quantity;
  hold.currency = event.currency;
  switch (fields[0][0]) {
    case 'a':
      hold.status = HoldStatus::active;
      break;
    case 'c':
      hold.status = HoldStatus::checked_out;
      break;
    case 'x':
      hold.status = HoldStatus::expired;
      break;
    case 'r':
      hold.status = HoldStatus::released;
      break;
    default:
      throw StorageError("redis seat locks: a hold record with an unknown status");
  }
  hold.created_at = from_unix_ms(to_i64(fields[3]));
  hold.expires_at = from_unix_ms(to_i64(fields[4]));
  hold.fence = to_u64(fields[5]);
  return hold;
}

void RedisSeatLockStore::drop_claim(const std::string& event_id, const std::string& buyer,
                                    const std::string& hold_id) {
  const auto replies = run_calls(
      client_,
      {claim_call(event_id, buyer, hold_id, ""),
       forget_index_after(hold_id, options_.finished_hold_retention.count() + kIndexMarginMs)});
  for (const auto& reply : replies) expect_ok(reply);
}

Result<Hold> RedisSeatLockStore::get_hold(const std::string& hold_id, Timestamp now) {
  const auto where = locate(hold_id);
  if (!where) return make_error(Errc::not_found, "no hold " + hold_id);
  const Reply reply = run_section(scripts_->get, *where->event, where->section, now, {hold_id});
  if (outcome(reply) != "ok") return make_error(Errc::not_found, "no hold " + hold_id);
  auto hold = to_hold(*where, reply.elements.at(1).as_string());
  hold.id = hold_id;
  return hold;
}

Result<Hold> RedisSeatLockStore::release(const std::string& hold_id, Timestamp now) {
  const auto where = locate(hold_id);
  if (!where) return make_error(Errc::not_found, "no hold " + hold_id);
  const Reply reply = run_section(scripts_->release, *where->event, where->section, now, {hold_id});
  const auto& result = outcome(reply);
  if (result == "expired") {
    return make_error(Errc::hold_expired, "the hold expired; its seats are already free");
  }
  if (result == "released") return make_error(Errc::invalid_state, "the hold was already released");
  if (result == "checked_out") {
    return make_error(Errc::invalid_state, "the hold was checked out; cancel the booking instead");
  }
  if (result != "ok") return make_error(Errc::not_found, "no hold " + hold_id);
  auto hold = to_hold(*where, reply.elements.at(1).as_string());
  hold.id = hold_id;
  drop_claim(hold.event_id, hold.buyer, hold_id);
  return hold;
}

Result<Hold> RedisSeatLockStore::begin_checkout(const std::string& hold_id, Timestamp now) {
  const auto where = locate(hold_id);
  if (!where) return make_error(Errc::not_found, "no hold " + hold_id);
  // Booked before the section changes (sent together, run in this order): a crash in between
  // counts the buyer high, never low.
  const auto& event_id = where->event->event().id;
  auto replies = run_calls(
      client_,
      {claim_call(event_id, where->buyer, hold_id, "b|" + std::to_string(where->quantity) + "|0"),
       section_call(scripts_->checkout, where->event->keys[where->section], now,
                    options_.finished_hold_retention, {hold_id})});
  expect_ok(replies[0]);
  const auto give_back = [&] {
    expect_ok(run_calls(client_, {claim_call(event_id, where->buyer, hold_id, "")}).front());
  };
  const Reply& reply = replies[1];
  const auto& result = outcome(reply);
  if (result == "lost") {
    give_back();  // the hold is gone with its section; booked holds come back with restore()
    throw LockStateLost(where->event->event().id);
  }
  if (result == "checked_out") {
    // A retry after a crash past the checkout: the index entry must stay, as on the first try.
    expect_ok(run_calls(client_, {keep_index(hold_id)}).front());
    return make_error(Errc::invalid_state, "the hold is already checked out");
  }
  if (result != "ok") give_back();
  if (result == "expired") return make_error(Errc::hold_expired, "the hold expired");
  if (result == "released") return make_error(Errc::hold_expired, "the hold was released");
  if (result != "ok") return make_error(Errc::not_found, "no hold " + hold_id);
  expect_ok(run_calls(client_, {keep_index(hold_id)}).front());
  auto before = to_hold(*where, reply.elements.at(1).as_string());
  before.id = hold_id;
  return before;
}

void RedisSeatLockStore::abort_checkout(const std::string& hold_id, bool keep) {
  const auto where = locate(hold_id);
  if (!where) return;
  // `now` 0: nothing is judged expired here; the next call judges the kept hold again.
  const Reply reply = run_section(scripts_->abort, *where->event, where->section, Timestamp{},
                                  {hold_id, keep ? "1" : "0"});
  const auto& result = outcome(reply);
  if (result != "kept" && result != "released") return;
  const auto hold = to_hold(*where, reply.elements.at(1).as_string());
  const int64_t forget_after_ms = options_.finished_hold_retention.count() + kIndexMarginMs +
                                  (result == "kept" ? kAbortedCheckoutWindowMs : 0);
  const std::string claim =
      result == "kept" ? "a|" + std::to_string(hold.quantity) + "|" + ms(hold.expires_at) : "";
  for (const auto& reply_of_call :
       run_calls(client_, {claim_call(hold.event_id, hold.buyer, hold_id, claim),
                           forget_index_after(hold_id, forget_after_ms)})) {
    expect_ok(reply_of_call);
  }
}

Status RedisSeatLockStore::mark_sold(const std::string& hold_id, Timestamp now) {
  const auto where = locate(hold_id);
  if (!where) return make_error(Errc::not_found, "no hold " + hold_id);
  const auto& result =
      outcome(run_section(scripts_->mark_sold, *where->event, where->section, now, {hold_id}));
  if (result == "ok") return Ok{};
  if (result == "invalid_state") {
    return make_error(Errc::invalid_state, "only a checked-out hold can be sold");
  }
  return make_error(Errc::not_found, "no hold " + hold_id);
}

Status RedisSeatLockStore::release_booked(const std::string& hold_id, Timestamp now) {
  const auto where = locate(hold_id);
  if (!where) return make_error(Errc::not_found, "no hold " + hold_id);
  const auto& result =
      outcome(run_section(scripts_->release_booked, *where->event, where->section, now, {hold_id}));
  if (result == "invalid_state") {
    return make_error(Errc::invalid_state, "only a checked-out hold's booking can be released");
  }
  if (result != "ok" && result != "already")
    return make_error(Errc::not_found, "no hold " + hold_id);
  // Also when already released: a redelivered job finishes what a crash interrupted.
  drop_claim(where->event->event().id, where->buyer, hold_id);
  return Ok{};
}

void RedisSeatLockStore::set_waitlisted(const std::string& event_id, const std::string& section,
                                        uint32_t waiting) {
  const auto event = find_event(event_id);
  if (!event) return;
  const auto index = event->layout.section_index(section);
  if (!index) return;
  // A plain field: it survives into a section rebuilt by restore(), which leaves it alone.
  expect_ok(
      client_.command({"HSET", event->keys[*index][0], "waitlisted", std::to_string(waiting)}));
}

Result<uint32_t> RedisSeatLockStore::free_seats(const std::string& event_id,
                                                const std::string& section, Timestamp now) {
  const auto event = find_event(event_id);
  if (!event) return make_error(Errc::not_found, "no event " + event_id);
  const auto index = event->layout.section_index(section);
  if (!index) return make_error(Errc::not_found, "no section " + section);
  const Reply reply = run_section(scripts_->counts, *event, *index, now, {});
  const auto& counts = reply.elements;
  return static_cast<uint32_t>(counts.at(1).as_integer() - counts.at(2).as_integer() -
                               counts.at(3).as_integer());
}

Result<std::vector<SectionAvailability>> RedisSeatLockStore::availability(
    const std::string& event_id, Timestamp now) {
  const auto event = find_event(event_id);
  if (!event) return make_error(Errc::not_found, "no event " + event_id);
  const auto& sections = event->event().sections;
  std::vector<uint32_t> all(sections.size());
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto replies = run_sections(scripts_->counts, *event, all, now, {});
  std::vector<SectionAvailability> result;
  result.reserve(sections.size());
  for (size_t i = 0; i < sections.size(); ++i) {
    if (outcome(replies[i]) == "lost") throw LockStateLost(event_id);
    const auto& counts = replies[i].elements;
    const auto capacity = static_cast<uint32_t>(counts.at(1).as_integer());
    const auto held = static_cast<uint32_t>(counts.at(2).as_integer());
    const auto sold = static_cast<uint32_t>(counts.at(3).as_integer());
    const auto waitlisted = static_cast<uint32_t>(counts.at(4).as_integer());
    const uint32_t free = capacity - held - sold;
    const uint32_t kept = waitlisted ? free : 0;
    result.push_back({sections[i].id, sections[i].kind, capacity, waitlisted ? 0 : free,
                      held + kept, sold, waitlisted});
  }
  return result;
}

Result<std::vector<SeatState>> RedisSeatLockStore::seats(const std::string& event_id,
                                                         const std::string& section_id,
                                                         const std::optional<std::string>& row,
                                                         Timestamp now) {
  const auto event = find_event(event_id);
  if (!event) return make_error(Errc::not_found, "no event " + event_id);
  const auto section = event->layout.section_index(section_id);
  if (!section) return make_error(Errc::not_found, "no section " + section_id);
  const auto& section_def = event->event().sections[*section];
  if (section_def.kind != SectionKind::reserved) {
    return make_error(Errc::invalid_request, "section " + section_id + " is general admission");
  }
  uint32_t begin = 0, end = section_def.capacity;
  if (row) {
    const auto it = std::find_if(section_def.rows.begin(), section_def.rows.end(),
                                 [&](const Row& r) { return r.name == *row; });
    if (it == section_def.rows.end()) return make_error(Errc::not_found, "no row " + *row);
    begin =
        event->layout.row_offset(*section, static_cast<uint32_t>(it - section_def.rows.begin()));
    end = begin + it->seats;
  }
  const Reply reply = run_section(scripts_->seat_map, *event, *section, now,
                                  {std::to_string(begin), std::to_string(end)});
  const std::string& bytes = reply.elements.at(1).as_string();
  const bool kept = reply.elements.at(2).as_integer() > 0;
  std::vector<SeatState> result;
  result.reserve(end - begin);
  for (uint32_t i = begin; i < end; ++i) {
    const char state = i - begin < bytes.size() ? bytes[i - begin] : 0;
    const auto status = state == 0   ? (kept ? SeatStatus::held : SeatStatus::available)
                        : state == 1 ? SeatStatus::held
                                     : SeatStatus::sold;
    result.push_back({event->layout.seat_id(*section, i), status});
  }
  return result;
}

std::vector<SectionRef> RedisSeatLockStore::sweep_expired(Timestamp now, size_t limit) {
  // A few buckets of the hold index forget the entries past their time, in turn (each instance
  // starts at a bucket of its own), a bucket again while it had more due than one call takes.
  // Before the sections, and failing the call when Redis does: a failure loses nothing (the
  // sections' "returned" flags wait in Redis for the next sweep), it only delays.
  const std::string clock = std::to_string(index_clock_ms());
  for (uint32_t i = 0; i < std::min(kIndexBucketsPerSweep, options_.index_buckets); ++i) {
    const auto key = index_bucket_key(next_index_bucket_++ % options_.index_buckets);
    const Call forget{
        &scripts_->forget_index, {key, key + ":f"}, {clock, std::to_string(kIndexForgetPerBucket)}};
    for (int round = 0; round < kIndexForgetRoundsMax; ++round) {
      const Reply reply = run_calls(client_, {forget}).front();
      expect_ok(reply);
      if (reply.as_integer() < static_cast<int64_t>(kIndexForgetPerBucket)) break;
    }
  }
  std::vector<std::shared_ptr<const EventInfo>> events;
  {
    std::shared_lock lock(events_mutex_);
    for (const auto& [id, event] : events_) events.push_back(event);
  }
  std::vector<SectionRef> returned;
  for (const auto& event : events) {
    // A cheap look at every section first (due holds, a pending "returned" flag), pipelined;
    // only sections with work run the sweep script. A section not ready has nothing to sweep:
    // the next call on it reports the loss.
    const auto& sections = event->event().sections;
    std::vector<Call> probes;
    for (const auto& keys : event->keys) {
      probes.push_back(Call{nullptr, {}, {"ZCOUNT", keys[4], "-inf", ms(now)}});
      probes.push_back(Call{nullptr, {}, {"HGET", keys[0], "returned"}});
    }
    const auto seen = run_calls(client_, probes);
    size_t remaining = limit;  // per event, as the memory store counts it
    for (uint32_t i = 0; i < sections.size(); ++i) {
      expect_ok(seen[2 * i]);
      expect_ok(seen[2 * i + 1]);
      const bool due = seen[2 * i].as_integer() > 0;
      if (!due && seen[2 * i + 1].is_nil()) continue;
      std::vector<std::string> args{ms(now),
                                    std::to_string(options_.finished_hold_retention.count()),
                                    std::to_string(std::min(remaining, kSweepScriptHoldsMax))};
      const Reply reply = client_.eval(scripts_->sweep, event->keys[i], args);
      if (outcome(reply) != "ok") continue;
      remaining -= std::min<size_t>(remaining, reply.elements.at(1).as_integer());
      if (reply.elements.at(2).as_integer() != 0) {
        returned.push_back({event->event().id, sections[i].id});
      }
    }
  }
  return returned;
}

void RedisSeatLockStore::restore(const std::string& event_id,
                                 const std::vector<RestoredClaim>& claims) {
  const auto event = find_event(event_id);
  if (!event) return;
  std::vector<std::vector<const RestoredClaim*>> by_section(event->event().sections.size());
  std::vector<RestoredClaim> known;  // claims of sections the event has
  for (const auto& claim : claims) {
    const auto section = event->layout.section_index(claim.section);
    if (!section) continue;  // the bookings store and the event disagree: nothing to take
    known.push_back(claim);
  }
  for (const auto& claim : known) {
    by_section[*event->layout.section_index(claim.section)].push_back(&claim);
  }
  // Where each hold lives (never forgotten: restored holds are checked out, they stay until sold or
  // released), then the buyer cap, then the sections, which open the event.
  for (size_t begin = 0; begin < known.size(); begin += kRestoreIndexBatch) {
    std::vector<Call> calls;
    for (size_t i = begin; i < std::min(known.size(), begin + kRestoreIndexBatch); ++i) {
      const auto& claim = known[i];
      calls.push_back(Call{nullptr,
                           {},
                           {"HSET", index_key(claim.hold_id), claim.hold_id,
                            index_entry(event_id, claim.section, claim.quantity, claim.buyer)}});
      calls.push_back(keep_index(claim.hold_id));
    }
    for (const auto& reply : run_calls(client_, calls)) expect_ok(reply);
  }
  // Every start-up restores every event: a pipelined look first, so what is ready (the common
  // case) costs one round trip; the scripts check again, so a race only costs a wasted call.
  std::vector<Call> probes;
  for (uint32_t bucket = 0; bucket < options_.buyer_buckets; ++bucket) {
    probes.push_back(Call{nullptr, {}, {"EXISTS", claims_marker(event_id, bucket)}});
  }
  for (const auto& keys : event->keys)
    probes.push_back(Call{nullptr, {}, {"HGET", keys[0], "ready"}});
  const auto ready = run_calls(client_, probes);
  for (const auto& reply : ready) expect_ok(reply);
  std::vector<bool> bucket_ready(options_.buyer_buckets);
  for (uint32_t bucket = 0; bucket < options_.buyer_buckets; ++bucket) {
    bucket_ready[bucket] = ready[bucket].as_integer() != 0;
  }
  restore_claims(*event, known, bucket_ready);
  for (uint32_t section = 0; section < by_section.size(); ++section) {
    const auto& flag = ready[options_.buyer_buckets + section];
    if (flag.is_nil() || flag.as_string() != "1") {
      restore_section(*event, section, by_section[section]);
    }
  }
}

void RedisSeatLockStore::restore_claims(const EventInfo& event,
                                        const std::vector<RestoredClaim>& claims,
                                        const std::vector<bool>& bucket_ready) {
  const auto& event_id = event.event().id;
  std::vector<std::vector<const RestoredClaim*>> by_bucket(options_.buyer_buckets);
  for (const auto& claim : claims) {
    by_bucket[bucket_of(claim.buyer)].push_back(&claim);
  }
  for (uint32_t bucket = 0; bucket < options_.buyer_buckets; ++bucket) {
    if (bucket_ready[bucket]) continue;
    const auto& list = by_bucket[bucket];
    const std::string marker = claims_marker(event_id, bucket);
    size_t begin = 0;
    do {
      const size_t end = std::min(list.size(), begin + options_.restore_claims_per_script);
      std::vector<std::string> keys{marker, bucket_tag(event_id, bucket) + "c"};
      std::vector<std::string> args{end == list.size() ? "1" : "0"};
      for (size_t i = begin; i < end; ++i) {
        const auto& claim = *list[i];
        args.insert(args.end(), {claim.buyer, claim.hold_id, std::to_string(claim.quantity)});
      }
      const auto& result = outcome(client_.eval(scripts_->restore_claims, keys, args));
      if (result == "ready") break;  // left as it is
      begin = end;
    } while (begin < list.size());
  }
}

void RedisSeatLockStore::restore_section(const EventInfo& event, uint32_t section,
                                         const std::vector<const RestoredClaim*>& claims) {
  const auto& def = event.event().sections[section];
  const bool reserved = def.kind == SectionKind::reserved;
  // The layout: row offsets, and the row tree with every seat free (claims are applied after).
  uint32_t leaves = 1;
  std::string offsets, tree;
  if (reserved) {
    while (leaves < def.rows.size()) leaves *= 2;
    tree.assign(4 * size_t{leaves}, '\0');
    std::vector<uint32_t> nodes(2 * size_t{leaves}, 0);
    uint32_t offset = 0;
    for (uint32_t r = 0; r < def.rows.size(); ++r) {
      append_u32(offsets, offset);
      offset += def.rows[r].seats;
      nodes[leaves + r] = def.rows[r].seats;
    }
    append_u32(offsets, offset);
    for (uint32_t i = leaves - 1; i >= 1; --i) nodes[i] = std::max(nodes[2 * i], nodes[2 * i + 1]);
    for (uint32_t i = 1; i < nodes.size(); ++i) put_u16(tree, 2 * size_t{i}, nodes[i]);
  }
  size_t begin = 0;
  do {
    const size_t end = std::min(claims.size(), begin + options_.restore_claims_per_script);
    const bool first = begin == 0;
    std::vector<std::string> args{"0", std::to_string(options_.finished_hold_retention.count()),
                                  first ? "1" : "0", end == claims.size() ? "1" : "0"};
    if (first) {
      args.insert(args.end(),
                  {std::string(reserved ? kReserved : kGeneral), std::to_string(def.capacity),
                   std::to_string(def.rows.size()), std::to_string(leaves), offsets, tree});
    } else {
      args.insert(args.end(), 6, "");
    }
    for (size_t i = begin; i < end; ++i) {
      const auto& claim = *claims[i];
      std::string seats;
      for (const auto& id : claim.seats) {
        const auto address = event.layout.parse(id);
        if (!address || address->section != section) continue;
        if (!seats.empty()) seats += ',';
        seats += std::to_string(address->index) + "." + std::to_string(address->row);
      }
      args.insert(args.end(), {claim.hold_id, claim.buyer, std::to_string(claim.quantity),
                               claim.sold ? "1" : "0", ms(claim.hold_created_at),
                               ms(claim.hold_expires_at), seats});
    }
    const auto& result =
        outcome(client_.eval(scripts_->restore_section, event.keys[section], args));
    if (result == "ready") return;  // an open section is left as it is
    if (result == "uninit") {
      throw StorageError("redis seat locks: section " + def.id + " of event " + event.event().id +
                         " lost its layout while being restored");
    }
    begin = end;
  } while (begin < claims.size());
}

}  // namespace boxoffice

#include "adapters/redis/redis_waitlist_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>

// Key layout. Event ids, sections, entry ids and hold ids appear in keys percent-encoded (every
// byte outside [A-Za-z0-9._~-]), so ':', '{' and '}' inside them cannot make two names collide or
// move a hash tag. E and S below are the encoded event and section.
//
// One section, hash tag {w:E:S}, changed only by the scripts below (one slot, so atomic):
//   {w:E:S}:seq      STRING  the last sequence given (INCR)
//   {w:E:S}:line     ZSET    waiting entry ids by sequence: ZRANK + 1 is the exact position
//   {w:E:S}:byqty    ZSET    waiting entry ids by quantity * 2^32 + sequence (first_fitting)
//   {w:E:S}:offers   ZSET    offered entries by offer expiry (ms); member = 10-digit sequence ':'
//                            id, so equal expiries come out in join order
//   {w:E:S}:live     HASH    buyer -> the id of their waiting or offered entry (one per buyer)
//   {w:E:S}:entries  HASH    id -> the entry as JSON, every value a string (nothing rounded)
//   {w:E:S}:counts   HASH    status -> entries in it
//
// Indexes, each key its own tag (so spread over the cluster), written before the section script
// that makes them true; a reader follows one and trusts only what the section says:
//   {w-id:<id>}      STRING  "E:S:<nonce>": where entry <id> is filed (SET NX at join)
//   {w-hold:<hold>}  STRING  "E:S:<encoded id>": the entry offered this hold
//   {w-ev:E}         SET     every S of the event that was ever joined (counts by event)
//   {w-active}       ZSET    "E:S" of sections that may have someone in line, scored by the wall
//                            time (ms) a join last started there; see live_sections()

namespace boxoffice {

namespace {

using redis::Reply;
using redis::Script;

// --- Lua --------------------------------------------------------------------------------------

// Shared by the section scripts. KEYS are always the seven keys of one section, in the order of
// section_keys(). An entry comes back to C++ as 12 strings (reply_of), "" for what it lacks.
constexpr std::string_view kPrelude = R"lua(
local QTY_SCALE = 4294967296
local function load(id)
  local raw = redis.call('HGET', KEYS[6], id)
  if not raw then return nil end
  return cjson.decode(raw)
end
local function store(e) redis.call('HSET', KEYS[6], e.id, cjson.encode(e)) end
local function offer_member(e)
  return string.format('%010d', tonumber(e.sequence)) .. ':' .. e.id
end
local function position_of(e)
  if e.status ~= 'waiting' then return '' end
  local rank = redis.call('ZRANK', KEYS[2], e.id)
  if not rank then error('waitlist: waiting entry ' .. e.id .. ' is not in its line') end
  return string.format('%d', rank + 1)
end
local function reply_of(e)
  return {e.id, e.event_id, e.section, e.buyer, e.quantity, e.status, e.sequence,
          e.created_at_ms, e.updated_at_ms, e.hold_id or '', e.offer_expires_at_ms or '',
          position_of(e)}
end
)lua";

// ARGV: id, event_id, section, buyer, quantity, created_at_ms.
// -> {'ok', entry...} | {'id_taken'} | {'buyer_in_line'}
constexpr std::string_view kJoin = R"lua(
local id, buyer, quantity = ARGV[1], ARGV[4], tonumber(ARGV[5])
if redis.call('HEXISTS', KEYS[6], id) == 1 then return {'id_taken'} end
if redis.call('HEXISTS', KEYS[5], buyer) == 1 then return {'buyer_in_line'} end
local sequence = redis.call('INCR', KEYS[1])
if sequence >= QTY_SCALE then error('waitlist: the section has used up its sequences') end
local e = {id = id, event_id = ARGV[2], section = ARGV[3], buyer = buyer, quantity = ARGV[5],
           status = 'waiting', sequence = string.format('%d', sequence),
           created_at_ms = ARGV[6], updated_at_ms = ARGV[6]}
store(e)
redis.call('HSET', KEYS[5], buyer, id)
redis.call('ZADD', KEYS[2], sequence, id)
redis.call('ZADD', KEYS[3], quantity * QTY_SCALE + sequence, id)
redis.call('HINCRBY', KEYS[7], 'waiting', 1)
local reply = reply_of(e)
table.insert(reply, 1, 'ok')
return reply
)lua";

// ARGV: id. -> entry | nil
constexpr std::string_view kRead = R"lua(
local e = load(ARGV[1])
if not e then return false end
return reply_of(e)
)lua";

// ARGV: id, from, to, now_ms, hold id, offer expires_at_ms (the last two when `to` is offered).
// The caller has checked that from -> to is an edge of the state machine.
// -> {'ok', entry...} | {'not_found'} | {'invalid_state', status}
constexpr std::string_view kTransition = R"lua(
local from, to = ARGV[2], ARGV[3]
local e = load(ARGV[1])
if not e then return {'not_found'} end
if e.status ~= from then return {'invalid_state', e.status} end
if from == 'waiting' then
  redis.call('ZREM', KEYS[2], e.id)
  redis.call('ZREM', KEYS[3], e.id)
elseif from == 'offered' then
  redis.call('ZREM', KEYS[4], offer_member(e))
end
if to == 'offered' then
  e.hold_id, e.offer_expires_at_ms = ARGV[5], ARGV[6]
  redis.call('ZADD', KEYS[4], ARGV[6], offer_member(e))
elseif redis.call('HGET', KEYS[5], e.buyer) == e.id then
  redis.call('HDEL', KEYS[5], e.buyer)
end
e.status, e.updated_at_ms = to, ARGV[4]
store(e)
redis.call('HINCRBY', KEYS[7], from, -1)
redis.call('HINCRBY', KEYS[7], to, 1)
local reply = reply_of(e)
table.insert(reply, 1, 'ok')
return reply
)lua";

// ARGV: seats_max, at most quantity_max. -> entry | nil
// The head of the line answers in O(log n) when it fits. Otherwise byqty is read one quantity at
// a time: the first member at or above q * 2^32 is the earliest waiting entry wanting the
// smallest quantity >= q, and the next lookup starts at the quantity after it. So the loop runs
// once per distinct quantity present that is at most seats_max (bounded by the per-order seat
// cap, a handful, and never above quantity_max), each O(log n), whatever the line's length; the
// earliest of those heads is the answer.
constexpr std::string_view kFirstFitting = R"lua(
local seats = tonumber(ARGV[1])
if seats < 1 then return false end
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if not head then return false end
local e = load(head)
if tonumber(e.quantity) <= seats then return reply_of(e) end
local best_id, best_sequence
local from = 0
local to = '(' .. string.format('%d', (seats + 1) * QTY_SCALE)
while true do
  local found = redis.call('ZRANGEBYSCORE', KEYS[3], from, to, 'WITHSCORES', 'LIMIT', 0, 1)
  if #found == 0 then break end
  local score = tonumber(found[2])
  local quantity = math.floor(score / QTY_SCALE)
  local sequence = score - quantity * QTY_SCALE
  if not best_sequence or sequence < best_sequence then
    best_id, best_sequence = found[1], sequence
  end
  from = string.format('%d', (quantity + 1) * QTY_SCALE)
end
if not best_id then return false end
return reply_of(load(best_id))
)lua";

// ARGV: now_ms, limit. -> {entry...}: offers expired at or before now, oldest first.
constexpr std::string_view kLapsed = R"lua(
local members = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local replies = {}
for _, member in ipairs(members) do
  local e = load(string.sub(member, 12))
  if not e then error('waitlist: offer ' .. member .. ' has no entry') end
  table.insert(replies, reply_of(e))
end
return replies
)lua";

// KEYS: {w-id:<id>}; ARGV: the value this join wrote. Deletes the marker only if it is still ours.
constexpr std::string_view kDeleteIfOurs = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// KEYS: {w-active}; ARGV: member, the score read with it, cutoff_ms. Removes the section only if
// no join stamped it since it was found empty, and that stamp is older than the grace.
// Why no live section is ever lost: a join stamps the section (ZADD, wall time) before its section
// script runs, and the pruner reads the stamp before it reads the section's counts. A join that
// stamps after that read changes the score (or re-adds the member after the ZREM), so this
// compare-and-remove cannot remove it; a join that stamped before the read and whose script had
// still not run when the counts were read would have to have stalled for longer than the grace.
constexpr std::string_view kPruneActive = R"lua(
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
score = tonumber(score)
if score ~= tonumber(ARGV[2]) or score > tonumber(ARGV[3]) then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
)lua";

struct Scripts {
  Script join{std::string(kPrelude) + std::string(kJoin)};
  Script read{std::string(kPrelude) + std::string(kRead)};
  Script transition{std::string(kPrelude) + std::string(kTransition)};
  Script first_fitting{std::string(kPrelude) + std::string(kFirstFitting)};
  Script lapsed{std::string(kPrelude) + std::string(kLapsed)};
  Script delete_if_ours{std::string(kDeleteIfOurs)};
  Script prune_active{std::string(kPruneActive)};
};

// Built (and hashed) once, on first use.
const Scripts& scripts() {
  static const Scripts kScripts;
  return kScripts;
}

// --- keys --------------------------------------------------------------------------------------

constexpr std::string_view kActiveKey = "{w-active}";

std::string encode_part(std::string_view raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(raw.size());
  for (const char c : raw) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
        (byte >= '0' && byte <= '9') || byte == '.' || byte == '_' || byte == '~' || byte == '-') {
      encoded += c;
    } else {
      encoded += '%';
      encoded += kHex[byte >> 4];
      encoded += kHex[byte & 0xF];
    }
  }
  return encoded;
}

std::string decode_part(std::string_view encoded) {
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw StorageError("redis waitlist: corrupt key part \"" + std::string(encoded) + "\"");
  };
  std::string raw;
  raw.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      raw += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size()) {
      throw StorageError("redis waitlist: corrupt key part \"" + std::string(encoded) + "\"");
    }
    raw += static_cast<char>(nibble(encoded[i + 1]) * 16 + nibble(encoded[i + 2]));
    i += 2;
  }
  return raw;
}

// A section by its encoded event and section: what index values and the active set hold.
struct SectionRef {
  std::string event;
  std::string section;

  static SectionRef of(const std::string& event_id, const std::string& section) {
    return SectionRef{encode_part(event_id), encode_part(section)};
  }
  std::string name() const { return event + ':' + section; }
  std::string key(std::string_view suffix) const {
    return "{w:" + event + ':' + section + "}:" + std::string(suffix);
  }
  // The KEYS of every section script, in the order the Lua prelude numbers them.
  std::vector<std::string> keys() const {
    return {key("seq"),  key("line"),    key("byqty"), key("offers"),
            key("live"), key("entries"), key("counts")};
  }
};

std::string id_key(const std::string& entry_id) { return "{w-id:" + encode_part(entry_id) + '}'; }
std::string hold_key(const std::string& hold_id) { return "{w-hold:" + encode_part(hold_id) + '}'; }
std::string event_key(const std::string& event_id) {
  return "{w-ev:" + encode_part(event_id) + '}';
}

// Splits "a:b:c" (encoded parts, so ':' only separates) into exactly `count` parts.
std::optional<std::vector<std::string>> split_parts(std::string_view value, size_t count) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    const size_t colon = value.find(':', begin);
    parts.emplace_back(value.substr(begin, colon - begin));
    if (colon == std::string_view::npos) break;
    begin = colon + 1;
  }
  if (parts.size() != count) return std::nullopt;
  return parts;
}

// --- replies -----------------------------------------------------------------------------------

const Reply& checked(const Reply& reply) {
  if (reply.is_error()) throw StorageError("redis waitlist: " + reply.str);
  return reply;
}

int64_t to_int64(std::string_view text) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw StorageError("redis waitlist: not an integer: \"" + std::string(text) + "\"");
  }
  return value;
}

// A count field of HMGET: nil when the status never occurred.
uint32_t count_of(const Reply& field) {
  if (field.is_nil()) return 0;
  const int64_t count = to_int64(checked(field).as_string());
  if (count < 0 || count > std::numeric_limits<uint32_t>::max()) {
    throw StorageError("redis waitlist: corrupt count " + std::to_string(count));
  }
  return static_cast<uint32_t>(count);
}

WaitlistStatus decode_status(const std::string& text) {
  for (const auto status :
       {WaitlistStatus::waiting, WaitlistStatus::offered, WaitlistStatus::converted,
        WaitlistStatus::expired, WaitlistStatus::left}) {
    if (text == to_string(status)) return status;
  }
  throw StorageError("redis waitlist: corrupt entry: status \"" + text + "\"");
}

constexpr size_t kEntryFields = 12;

// An entry as reply_of() sends it, from element `offset` of an array reply.
WaitlistEntry read_entry(const Reply& reply, size_t offset = 0) {
  if (reply.type != Reply::Type::array || reply.elements.size() != offset + kEntryFields) {
    throw StorageError("redis waitlist: malformed entry reply");
  }
  auto field = [&](size_t i) -> const std::string& {
    return reply.elements[offset + i].as_string();
  };
  WaitlistEntry entry;
  entry.id = field(0);
  entry.event_id = field(1);
  entry.section = field(2);
  entry.buyer = field(3);
  entry.quantity = static_cast<uint32_t>(to_int64(field(4)));
  entry.status = decode_status(field(5));
  entry.sequence = to_int64(field(6));
  entry.created_at = from_unix_ms(to_int64(field(7)));
  entry.updated_at = from_unix_ms(to_int64(field(8)));
  if (!field(9).empty()) {
    entry.offer = WaitlistOffer{field(9), from_unix_ms(to_int64(field(10)))};
  }
  if (!field(11).empty()) entry.position = static_cast<uint64_t>(to_int64(field(11)));
  return entry;
}

// The first element of a script's {outcome, ...} reply.
const std::string& outcome_of(const Reply& reply) {
  checked(reply);
  if (reply.type != Reply::Type::array || reply.elements.empty()) {
    throw StorageError("redis waitlist: malformed script reply");
  }
  return reply.elements[0].as_string();
}

std::string random_nonce() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t bits = generator();
  std::string nonce(16, '0');
  for (char& c : nonce) {
    c = kHex[bits & 0xF];
    bits >>= 4;
  }
  return nonce;
}

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string limit_arg(size_t limit) {
  return std::to_string(std::min<uint64_t>(limit, std::numeric_limits<int64_t>::max()));
}

// Runs one script per (keys, args) in one pipeline, EVALSHA first and EVAL for any node that
// answers NOSCRIPT (it restarted, or never saw the script).
std::vector<Reply> eval_each(
    redis::Client& client, const Script& script,
    const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>& calls) {
  if (calls.empty()) return {};
  std::vector<std::vector<std::string>> commands;
  commands.reserve(calls.size());
  for (const auto& [keys, args] : calls) {
    std::vector<std::string> command{"EVALSHA", script.sha1(), std::to_string(keys.size())};
    command.insert(command.end(), keys.begin(), keys.end());
    command.insert(command.end(), args.begin(), args.end());
    commands.push_back(std::move(command));
  }
  std::vector<Reply> replies = client.pipeline(std::move(commands));
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].is_error() && replies[i].str.starts_with("NOSCRIPT")) {
      replies[i] = client.eval(script, calls[i].first, calls[i].second);
    }
  }
  return replies;
}

std::optional<WaitlistEntry> read_in_section(redis::Client& client, const SectionRef& section,
                                             const std::string& entry_id) {
  const Reply reply = client.eval(scripts().read, section.keys(), {entry_id});
  if (checked(reply).is_nil()) return std::nullopt;
  return read_entry(reply);
}

}  // namespace

// --- RedisWaitlistStore ------------------------------------------------------------------------

struct RedisWaitlistStore::LiveSection {
  SectionRef ref;
  uint32_t waiting = 0;
  uint32_t offered = 0;
};

RedisWaitlistStore::RedisWaitlistStore(std::shared_ptr<redis::Client> client,
                                       RedisWaitlistStoreOptions options)
    : client_(std::move(client)), options_(options) {
  if (!client_) throw std::invalid_argument("redis waitlist: no client");
}

RedisWaitlistStore::~RedisWaitlistStore() = default;

Result<WaitlistEntry> RedisWaitlistStore::join(const WaitlistEntry& entry) {
  if (entry.id.empty()) throw std::invalid_argument("waitlist: an entry needs an id");
  if (entry.quantity == 0) throw std::invalid_argument("waitlist: an entry wants at least 1 seat");
  if (entry.quantity > quantity_max) {
    throw std::invalid_argument("waitlist: an entry wants at most " + std::to_string(quantity_max) +
                                " seats");
  }
  const SectionRef section = SectionRef::of(entry.event_id, entry.section);
  const std::string marker_key = id_key(entry.id);
  const std::string marker = section.name() + ':' + random_nonce();

  // The indexes first: should we die before the script, they point at an entry that is not there.
  const std::vector<Reply> indexed = client_->pipeline({
      {"SET", marker_key, marker, "NX", "GET"},
      {"SADD", event_key(entry.event_id), section.section},
      {"ZADD", std::string(kActiveKey), std::to_string(wall_clock_ms()), section.name()},
  });
  for (const auto& reply : indexed) checked(reply);
  const bool marker_was_free = indexed[0].is_nil();
  if (!marker_was_free) {
    // The id is filed already. In another section it is taken (or a join of it died half-way:
    // the id stays unusable, which costs nothing since ids are never reused). In this section the
    // script below decides.
    const auto previous = split_parts(indexed[0].as_string(), 3);
    if (!previous || (*previous)[0] != section.event || (*previous)[1] != section.section) {
      return make_error(Errc::conflict, "a waitlist entry with id \"" + entry.id + "\" exists");
    }
  }

  const Reply reply =
      client_->eval(scripts().join, section.keys(),
                    {entry.id, entry.event_id, entry.section, entry.buyer,
                     std::to_string(entry.quantity), std::to_string(to_unix_ms(entry.created_at))});
  const std::string& outcome = outcome_of(reply);
  if (outcome == "ok") {
    // Joined under a marker that was already there: make it ours, so that a concurrent join of
    // the same id refused below cannot delete it.
    if (!marker_was_free) checked(client_->command({"SET", marker_key, marker}));
    return read_entry(reply, 1);
  }
  if (outcome == "id_taken") {
    return make_error(Errc::conflict, "a waitlist entry with id \"" + entry.id + "\" exists");
  }
  if (outcome == "buyer_in_line") {
    if (marker_was_free) {
      checked(client_->eval(scripts().delete_if_ours, {marker_key}, {marker}));
    }
    return make_error(Errc::conflict,
                      "the buyer is already on the waitlist of section \"" + entry.section + "\"");
  }
  throw StorageError("redis waitlist: join answered \"" + outcome + "\"");
}

std::optional<WaitlistEntry> RedisWaitlistStore::get(const std::string& entry_id) {
  const Reply marker = client_->command({"GET", id_key(entry_id)});
  if (checked(marker).is_nil()) return std::nullopt;
  const auto where = split_parts(marker.as_string(), 3);
  if (!where) throw StorageError("redis waitlist: corrupt index of entry \"" + entry_id + "\"");
  return read_in_section(*client_, SectionRef{(*where)[0], (*where)[1]}, entry_id);
}

std::optional<WaitlistEntry> RedisWaitlistStore::find_by_offer(const std::string& hold_id) {
  const Reply marker = client_->command({"GET", hold_key(hold_id)});
  if (checked(marker).is_nil()) return std::nullopt;
  const auto where = split_parts(marker.as_string(), 3);
  if (!where) throw StorageError("redis waitlist: corrupt index of hold \"" + hold_id + "\"");
  auto found =
      read_in_section(*client_, SectionRef{(*where)[0], (*where)[1]}, decode_part((*where)[2]));
  // The index is written before the offer: it may name an entry whose offer never happened.
  if (!found || !found->offer || found->offer->hold_id != hold_id) return std::nullopt;
  return found;
}

std::optional<WaitlistEntry> RedisWaitlistStore::first_fitting(const std::string& event_id,
                                                               const std::string& section,
                                                               uint32_t seats_max) {
  const Reply reply =
      client_->eval(scripts().first_fitting, SectionRef::of(event_id, section).keys(),
                    {std::to_string(std::min(seats_max, quantity_max))});
  if (checked(reply).is_nil()) return std::nullopt;
  return read_entry(reply);
}

Result<WaitlistEntry> RedisWaitlistStore::transition(const std::string& entry_id,
                                                     WaitlistStatus from, WaitlistStatus to,
                                                     Timestamp now,
                                                     const std::optional<WaitlistOffer>& offer) {
  if (!can_transition(from, to)) {
    throw std::invalid_argument("waitlist: no transition from " + std::string(to_string(from)) +
                                " to " + std::string(to_string(to)));
  }
  const bool offering = to == WaitlistStatus::offered;
  if (offering && (!offer || offer->hold_id.empty())) {
    throw std::invalid_argument("waitlist: an offer needs a hold");
  }
  const Reply marker = client_->command({"GET", id_key(entry_id)});
  if (checked(marker).is_nil()) {
    return make_error(Errc::not_found, "no waitlist entry \"" + entry_id + "\"");
  }
  const auto where = split_parts(marker.as_string(), 3);
  if (!where) throw StorageError("redis waitlist: corrupt index of entry \"" + entry_id + "\"");
  const SectionRef section{(*where)[0], (*where)[1]};

  std::vector<std::string> args{entry_id, std::string(to_string(from)), std::string(to_string(to)),
                                std::to_string(to_unix_ms(now))};
  if (offering) {
    // The hold's index before the offer it finds.
    checked(client_->command(
        {"SET", hold_key(offer->hold_id), section.name() + ':' + encode_part(entry_id)}));
    args.push_back(offer->hold_id);
    args.push_back(std::to_string(to_unix_ms(offer->expires_at)));
  }
  const Reply reply = client_->eval(scripts().transition, section.keys(), args);
  const std::string& outcome = outcome_of(reply);
  if (outcome == "ok") return read_entry(reply, 1);
  if (outcome == "not_found") {
    return make_error(Errc::not_found, "no waitlist entry \"" + entry_id + "\"");
  }
  if (outcome == "invalid_state" && reply.elements.size() == 2) {
    return make_error(Errc::invalid_state, "the waitlist entry is " +
                                               reply.elements[1].as_string() + ", not " +
                                               std::string(to_string(from)));
  }
  throw StorageError("redis waitlist: transition answered \"" + outcome + "\"");
}

std::vector<RedisWaitlistStore::LiveSection> RedisWaitlistStore::live_sections() {
  // ZSCAN returns every member present for the whole scan at least once, even while joins add
  // and prunes remove others; duplicates are dropped.
  std::vector<std::pair<std::string, std::string>> members;  // name, stamp
  std::set<std::string> seen;
  std::string cursor = "0";
  do {
    const Reply page = client_->command(
        {"ZSCAN", std::string(kActiveKey), cursor, "COUNT", std::to_string(active_scan_batch)});
    if (checked(page).type != Reply::Type::array || page.elements.size() != 2 ||
        page.elements[1].elements.size() % 2 != 0) {
      throw StorageError("redis waitlist: malformed ZSCAN reply");
    }
    cursor = page.elements[0].as_string();
    const auto& items = page.elements[1].elements;
    for (size_t i = 0; i < items.size(); i += 2) {
      if (seen.insert(items[i].as_string()).second) {
        members.emplace_back(items[i].as_string(), items[i + 1].as_string());
      }
    }
  } while (cursor != "0");

  // Counts are read after the stamps: kPruneActive says why that order makes pruning safe.
  std::vector<LiveSection> live;
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> prunes;
  const std::string cutoff_ms =
      std::to_string(wall_clock_ms() - options_.active_section_grace.count());
  for (size_t begin = 0; begin < members.size(); begin += active_scan_batch) {
    const size_t end = std::min(members.size(), begin + active_scan_batch);
    std::vector<SectionRef> refs;
    std::vector<std::vector<std::string>> commands;
    for (size_t i = begin; i < end; ++i) {
      const auto parts = split_parts(members[i].first, 2);
      if (!parts) {
        throw StorageError("redis waitlist: corrupt active section \"" + members[i].first + "\"");
      }
      refs.push_back(SectionRef{(*parts)[0], (*parts)[1]});
      commands.push_back({"HMGET", refs.back().key("counts"), "waiting", "offered"});
    }
    const std::vector<Reply> counts = client_->pipeline(std::move(commands));
    for (size_t i = 0; i < counts.size(); ++i) {
      if (checked(counts[i]).elements.size() != 2) {
        throw StorageError("redis waitlist: malformed HMGET reply");
      }
      LiveSection section{refs[i], count_of(counts[i].elements[0]),
                          count_of(counts[i].elements[1])};
      if (section.waiting + section.offered > 0) {
        live.push_back(std::move(section));
      } else if (prunes.size() < active_prune_max) {
        const auto& [name, stamp] = members[begin + i];
        prunes.push_back({{std::string(kActiveKey)}, {name, stamp, cutoff_ms}});
      }
    }
  }
  if (!prunes.empty()) {
    for (const auto& reply : eval_each(*client_, scripts().prune_active, prunes)) {
      checked(reply);
    }
  }
  return live;
}

// One round trip for the active index, one pipeline of HMGETs, then one script per section holding
// offers, pipelined: the sweeper's cost follows the sections in line, not the entries.
std::vector<WaitlistEntry> RedisWaitlistStore::lapsed_offers(Timestamp now, size_t limit) {
  std::vector<WaitlistEntry> lapsed;
  if (limit == 0) return lapsed;
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> calls;
  for (const auto& section : live_sections()) {
    if (section.offered == 0) continue;
    calls.push_back({section.ref.keys(), {std::to_string(to_unix_ms(now)), limit_arg(limit)}});
  }
  for (const auto& reply : eval_each(*client_, scripts().lapsed, calls)) {
    for (const auto& entry : checked(reply).elements) lapsed.push_back(read_entry(entry));
  }
  // Each section gave its oldest `limit`; the oldest `limit` of all of them are among those.
  auto older = [](const WaitlistEntry& l, const WaitlistEntry& r) {
    return std::tie(l.offer->expires_at, l.sequence, l.event_id, l.section) <
           std::tie(r.offer->expires_at, r.sequence, r.event_id, r.section);
  };
  for (const auto& entry : lapsed) {
    if (!entry.offer) throw StorageError("redis waitlist: offered entry without an offer");
  }
  std::sort(lapsed.begin(), lapsed.end(), older);
  if (lapsed.size() > limit) lapsed.resize(limit);
  return lapsed;
}

std::vector<WaitlistSection> RedisWaitlistStore::active_sections() {
  std::vector<WaitlistSection> sections;
  for (const auto& live : live_sections()) {
    sections.push_back(WaitlistSection{decode_part(live.ref.event), decode_part(live.ref.section)});
  }
  std::sort(sections.begin(), sections.end(), [](const auto& l, const auto& r) {
    return std::tie(l.event_id, l.section) < std::tie(r.event_id, r.section);
  });
  return sections;
}

uint32_t RedisWaitlistStore::waiting_count(const std::string& event_id,
                                           const std::string& section) {
  const Reply reply = client_->command({"ZCARD", SectionRef::of(event_id, section).key("line")});
  const int64_t count = checked(reply).as_integer();
  if (count < 0 || count > std::numeric_limits<uint32_t>::max()) {
    throw StorageError("redis waitlist: corrupt line length " + std::to_string(count));
  }
  return static_cast<uint32_t>(count);
}

WaitlistCounts RedisWaitlistStore::counts(const std::string& event_id) {
  const Reply members = client_->command({"SMEMBERS", event_key(event_id)});
  std::vector<std::vector<std::string>> commands;
  const std::string event = encode_part(event_id);
  for (const auto& member : checked(members).elements) {
    commands.push_back({"HMGET", SectionRef{event, member.as_string()}.key("counts"), "waiting",
                        "offered", "converted", "expired", "left"});
  }
  WaitlistCounts counts;
  if (commands.empty()) return counts;
  for (const auto& reply : client_->pipeline(std::move(commands))) {
    if (checked(reply).elements.size() != 5) {
      throw StorageError("redis waitlist: malformed HMGET reply");
    }
    counts.waiting += count_of(reply.elements[0]);
    counts.offered += count_of(reply.elements[1]);
    counts.converted += count_of(reply.elements[2]);
    counts.expired += count_of(reply.elements[3]);
    counts.left += count_of(reply.elements[4]);
  }
  return counts;
}

}  // namespace boxoffice

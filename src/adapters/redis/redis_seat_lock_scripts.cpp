#include "adapters/redis/redis_seat_lock_scripts.h"

namespace boxoffice::redis_seat_locks {

namespace {

// The shared start of every section script.
//
// Keys (one hash tag, so one slot):
//   M  meta hash: ready, init, kind, capacity, rows, leaves, held, sold, waitlisted, fence,
//      returned (expiry gave seats back since the last sweep), due and forget (no score in X,
//      resp. F, is below them: until then an operation need not look; absent: look)
//   S  seat states, one byte per seat at its flat index: 0 free, 1 held, 2 sold (bytes past the
//      end of the string read as free, so a new section costs nothing)
//   T  per-row summaries: a max segment tree of each row's longest free run, uint16 big-endian
//      per node, heap layout from node 1 (node i at byte 2i), leaves at [leaves, 2 * leaves)
//   R  row offsets: uint32 big-endian flat index of each row's first seat, rows + 1 entries
//   X  active holds by expires_at (ms)
//   H  hold records by hold id: "status|sold|quantity|created|expires|fence|seats|buyer", status
//      a(ctive) c(hecked out) x (expired) r(eleased); seats "index.row,index.row..." (reserved)
//   F  finished holds by the time they are forgotten (now + retention, judged by the given now)
constexpr const char* kPrelude = R"lua(
local M, S, T, R, X, H, F = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local NOW, RETENTION = tonumber(ARGV[1]), tonumber(ARGV[2])
-- Forgetting finished holds is housekeeping, not correctness: a bounded amount per call.
local FORGET_PER_CALL = 256
-- A score no hold reaches (2^52 ms): the bound of an empty X or F.
local NEVER = 4503599627370496

local function fmt(n) return string.format('%d', n) end

local meta = {}
local function load_meta()
  local v = redis.call('HMGET', M, 'ready', 'kind', 'capacity', 'held', 'sold', 'waitlisted',
                       'leaves', 'fence', 'due', 'forget')
  meta.ready = v[1] == '1'
  meta.reserved = v[2] == 'reserved'
  meta.capacity = tonumber(v[3]) or 0
  meta.held = tonumber(v[4]) or 0
  meta.sold = tonumber(v[5]) or 0
  meta.waitlisted = tonumber(v[6]) or 0
  meta.leaves = tonumber(v[7]) or 1
  meta.fence = tonumber(v[8]) or 0
  meta.due = tonumber(v[9]) or 0
  meta.forget = tonumber(v[10]) or 0
end

-- meta.due and meta.forget: lowered by whatever adds a score below them, raised to the earliest
-- score left once an operation has looked.
local function set_bound(field, score)
  if meta[field] == score then return end
  meta[field] = score
  redis.call('HSET', M, field, fmt(score))
end
local function lower_bound(field, score)
  if score < meta[field] then set_bound(field, score) end
end
local function earliest(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(first[2]) or NEVER
end

local function add_count(field, delta)
  meta[field] = meta[field] + delta
  redis.call('HINCRBY', M, field, delta)
end

local function u16(s, i)
  local a, b = string.byte(s, i, i + 1)
  return (a or 0) * 256 + (b or 0)
end
local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return (((a or 0) * 256 + (b or 0)) * 256 + (c or 0)) * 256 + (d or 0)
end
local function tree_node(i) return u16(redis.call('GETRANGE', T, 2 * i, 2 * i + 1), 1) end
local function tree_children(i)
  local c = redis.call('GETRANGE', T, 4 * i, 4 * i + 3)
  return u16(c, 1), u16(c, 3)
end
-- Node i and its sibling (0 for the root), in one read: siblings 2k and 2k + 1 are adjacent.
local function node_and_sibling(i)
  local left, right = tree_children(math.floor(i / 2))
  if i % 2 == 0 then return left, right end
  if i == 1 then return right, 0 end
  return right, left
end
local function set_tree_node(i, v)
  redis.call('SETRANGE', T, 2 * i, string.char(math.floor(v / 256), v % 256))
end
local function row_bounds(r)
  local s = redis.call('GETRANGE', R, 4 * r, 4 * r + 7)
  return u32(s, 1), u32(s, 5)
end
-- n free seats ('\0' bytes). Lua 5.1's string.rep appends one copy at a time; doubling a string
-- takes a dozen steps for a row of thousands.
local zero_run = '\0'
local function zeros(n)
  while #zero_run < n do zero_run = zero_run .. zero_run end
  return string.sub(zero_run, 1, n)
end
local function row_bytes(b, e)
  if e <= b then return '' end
  local bytes = redis.call('GETRANGE', S, b, e - 1)
  if #bytes < e - b then bytes = bytes .. zeros(e - b - #bytes) end
  return bytes
end

-- Whether `bytes` has n free seats in a run: a plain find, in C (memchr, memcmp).
local function has_free_run(bytes, n)
  return n <= 0 or (n <= #bytes and string.find(bytes, zeros(n), 1, true) ~= nil)
end
-- The longest free run of `bytes`, known to be at least lo and at most hi; `guess` is tried
-- first. A binary search of plain finds: scanning the row's runs with a Lua pattern cost ~17 µs
-- for a row of 2,000 seats, more than a hold's other work together, and grew with the row.
local function longest_free_run(bytes, lo, hi, guess)
  if hi > #bytes then hi = #bytes end
  if lo >= hi then return hi end
  if has_free_run(bytes, hi) then return hi end
  hi = hi - 1
  if guess > lo and guess <= hi then
    if has_free_run(bytes, guess) then lo = guess else hi = guess - 1 end
  end
  while lo < hi do
    local mid = lo + math.floor((hi - lo + 1) / 2)
    if has_free_run(bytes, mid) then lo = mid else hi = mid - 1 end
  end
  return lo
end

-- `changed` seats of row r were taken (or, `freed`, given back): its leaf (the row's longest free
-- run) and the ancestors whose maximum changes with it. Taking seats can only shorten the longest
-- run, most often by the seats taken; giving back can only lengthen it.
local function recompute_row(r, changed, freed)
  local b, e = row_bounds(r)
  local n = meta.leaves + r
  local old, sibling = node_and_sibling(n)
  local longest
  if freed then
    longest = longest_free_run(row_bytes(b, e), old, e - b, old + changed)
  else
    longest = longest_free_run(row_bytes(b, e), 0, old, old - changed)
  end
  if longest == old then return end
  set_tree_node(n, longest)
  local v = math.max(longest, sibling)
  n = math.floor(n / 2)
  while n >= 1 do
    local value, other = node_and_sibling(n)
    if value == v then return end
    set_tree_node(n, v)
    v = math.max(v, other)
    n = math.floor(n / 2)
  end
end

-- Adjacent seats are written together: one SETRANGE per run (a block of 4 is one call).
local function mark_seats(seats, value, recompute)
  local ch = string.char(value)
  local rows, indices = {}, {}
  for index, row in string.gmatch(seats, '(%d+)%.(%d+)') do
    indices[#indices + 1] = tonumber(index)
    row = tonumber(row)
    rows[row] = (rows[row] or 0) + 1
  end
  table.sort(indices)
  local i = 1
  while i <= #indices do
    local j = i
    while j < #indices and indices[j + 1] == indices[j] + 1 do j = j + 1 end
    redis.call('SETRANGE', S, indices[i], string.rep(ch, j - i + 1))
    i = j + 1
  end
  if recompute then
    for row, changed in pairs(rows) do recompute_row(row, changed, value == 0) end
  end
end

local function decode(text)
  if not text then return nil end
  local f, pos = {}, 1
  for i = 1, 7 do
    local sep = string.find(text, '|', pos, true)
    f[i] = string.sub(text, pos, sep - 1)
    pos = sep + 1
  end
  return {status = f[1], sold = f[2] == '1', q = tonumber(f[3]), created = tonumber(f[4]),
          expires = tonumber(f[5]), fence = f[6], seats = f[7], buyer = string.sub(text, pos)}
end
local function encode(h)
  return table.concat({h.status, h.sold and '1' or '0', fmt(h.q), fmt(h.created),
                       fmt(h.expires), h.fence, h.seats, h.buyer}, '|')
end
local function save(id, h)
  local text = encode(h)
  redis.call('HSET', H, id, text)
  return text
end

-- Frees a hold's seats (held, or sold by a checked-out hold) and finishes it.
local function finish(id, h, status, at)
  add_count(h.sold and 'sold' or 'held', -h.q)
  if h.seats ~= '' then mark_seats(h.seats, 0, true) end
  h.status, h.sold = status, false
  redis.call('ZREM', X, id)
  redis.call('ZADD', F, fmt(at + RETENTION), id)
  lower_bound('forget', at + RETENTION)
  return save(id, h)
end

-- Expires the active holds due at NOW (at most `limit`, -1: all) and forgets finished holds past
-- retention. Returns how many expired. Most operations find nothing due by the bounds in meta,
-- without a call.
local function reclaim(limit)
  local expired = 0
  if limit ~= 0 and NOW >= meta.due then
    local due = redis.call('ZRANGEBYSCORE', X, '-inf', ARGV[1], 'LIMIT', 0, limit)
    for _, id in ipairs(due) do
      local h = decode(redis.call('HGET', H, id))
      if h and h.status == 'a' and h.expires <= NOW then
        finish(id, h, 'x', h.expires)
        expired = expired + 1
      else
        redis.call('ZREM', X, id)
      end
    end
    if expired > 0 then redis.call('HSET', M, 'returned', '1') end
    set_bound('due', earliest(X))
  end
  if NOW >= meta.forget then
    local old = redis.call('ZRANGEBYSCORE', F, '-inf', ARGV[1], 'LIMIT', 0, FORGET_PER_CALL)
    for _, id in ipairs(old) do
      redis.call('ZREM', F, id)
      local h = decode(redis.call('HGET', H, id))
      if h and (h.status == 'x' or h.status == 'r') then redis.call('HDEL', H, id) end
    end
    set_bound('forget', earliest(F))
  end
  return expired
end

-- Every operation starts here: a section that was not restored is lost (or never opened).
local function open(limit)
  load_meta()
  if not meta.ready then return false end
  reclaim(limit or -1)
  return true
end
)lua";

// The shared start of every buyer-claims script. A bucket's claims are one hash, one field per
// buyer: "hold=state|quantity|expires;..." (state a: active until expires, b: booked, expires 0).
// A field per buyer rather than a key per buyer: Redis's keyspace grows with the buckets, not with
// the buyers (a flash sale of 500,000 buyers rehashed the keyspace mid-sale; see the store).
constexpr const char* kClaimsPrelude = R"lua(
local function read_claims(key, buyer)
  local list = {}
  local text = redis.call('HGET', key, buyer)
  if text then
    for hold, claim in string.gmatch(text, '([^;=]+)=([^;]+)') do
      list[#list + 1] = {hold, claim}
    end
  end
  return list
end
local function write_claims(key, buyer, list)
  if #list == 0 then
    redis.call('HDEL', key, buyer)
    return
  end
  local parts = {}
  for i, c in ipairs(list) do parts[i] = c[1] .. '=' .. c[2] end
  redis.call('HSET', key, buyer, table.concat(parts, ';'))
end
-- Sets the buyer's claim of `hold` to `value` ('' drops it).
local function set_claim(key, buyer, hold, value)
  local kept = {}
  for _, c in ipairs(read_claims(key, buyer)) do
    if c[1] ~= hold then kept[#kept + 1] = c end
  end
  if value ~= '' then kept[#kept + 1] = {hold, value} end
  write_claims(key, buyer, kept)
end
)lua";
}  // namespace

std::string section_script(const char* body) { return std::string(kPrelude) + body; }

std::string claims_script(const char* body) { return std::string(kClaimsPrelude) + body; }

namespace {
const char* const kHoldWithClaimMain = R"lua(
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[11], ARGV[3], ARGV[1])
local function forget_index()
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[11], ARGV[1])
end
local reserved = reserve_claim({KEYS[2], KEYS[3]}, {ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
                                                    ARGV[9]})
if reserved[1] ~= 'ok' then
  forget_index()
  return reserved
end
local section_keys, section_args = {}, {}
for i = 4, 10 do section_keys[#section_keys + 1] = KEYS[i] end
for i = 10, #ARGV do section_args[#section_args + 1] = ARGV[i] end
local taken = hold_seats(section_keys, section_args)
local outcome = taken[1]
if outcome == 'unavailable' or outcome == 'sold_out' or outcome == 'lost' then
  set_claim(KEYS[3], ARGV[9], ARGV[1], '')
  forget_index()
end
return taken
)lua";
}  // namespace

std::string hold_with_claim_script() {
  // Each script becomes a function whose parameters shadow KEYS and ARGV.
  return std::string(kClaimsPrelude) + "local function reserve_claim(KEYS, ARGV)\n" +
         kReserveClaimScript + "\nend\nlocal function hold_seats(KEYS, ARGV)\n" +
         section_script(kHoldScript) + "\nend\n" + kHoldWithClaimMain;
}

// ARGV[3..]: hold id, buyer, quantity, expires_at, fence floor, for_waitlist (0/1),
// mode "seats" followed by (flat index, row) pairs, or mode "best".
// Replies: {"ok", fence, seats} | {"unavailable", position...} (0-based, in request order) |
// {"sold_out", takeable, kept (0/1)} | {"duplicate"} | {"lost"}.
const char* const kHoldScript = R"lua(
-- Best available: n adjacent seats in the front-most row that has them, the run whose centre is
-- nearest the row's centre (ties: lower seats); else the n free seats nearest the front.
local function find_row(node, lo, hi, from, run)
  if hi <= from or tree_node(node) < run then return nil end
  if hi - lo == 1 then return lo end
  local mid = lo + math.floor((hi - lo) / 2)
  return find_row(2 * node, lo, mid, from, run) or find_row(2 * node + 1, mid, hi, from, run)
end

local function best_available(n)
  local picked = {}
  if tree_node(1) >= n then
    local i = 1
    while i < meta.leaves do
      local left = tree_children(i)
      if left >= n then i = 2 * i else i = 2 * i + 1 end
    end
    local r = i - meta.leaves
    local b, e = row_bounds(r)
    local centre2 = b + e - 1  -- twice the row's centre, in flat seat units
    local ideal = (centre2 - n + 1) / 2
    local best, best_distance
    for pos, run in string.gmatch(row_bytes(b, e), '()(%z+)') do
      if #run >= n then
        local lo = b + pos - 1
        local hi = lo + #run - n
        for _, c in ipairs({math.floor(ideal), math.ceil(ideal)}) do
          if c < lo then c = lo elseif c > hi then c = hi end
          local d = math.abs(2 * c + n - 1 - centre2)
          if best == nil or d < best_distance or (d == best_distance and c < best) then
            best, best_distance = c, d
          end
        end
      end
    end
    for k = 0, n - 1 do picked[#picked + 1] = fmt(best + k) .. '.' .. fmt(r) end
    return table.concat(picked, ',')
  end
  local r = find_row(1, 0, meta.leaves, 0, 1)
  while r and #picked < n do
    local b, e = row_bounds(r)
    for pos in string.gmatch(row_bytes(b, e), '()%z') do
      picked[#picked + 1] = fmt(b + pos - 1) .. '.' .. fmt(r)
      if #picked == n then break end
    end
    r = find_row(1, 0, meta.leaves, r + 1, 1)
  end
  return table.concat(picked, ',')
end

if not open() then return {'lost'} end
local id, buyer, q, expires = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local floor, for_waitlist, mode = tonumber(ARGV[7]), ARGV[8] == '1', ARGV[9]
if redis.call('HEXISTS', H, id) == 1 then return {'duplicate'} end
-- Seats that came back while buyers wait are theirs: the public sees them as taken.
local kept = meta.waitlisted > 0 and not for_waitlist
local seats = ''
if mode == 'seats' then
  local taken, parts = {}, {}
  -- Seats close together (a block of one row) are read with one GETRANGE.
  local lo, hi
  for i = 10, #ARGV, 2 do
    local index = tonumber(ARGV[i])
    if not lo or index < lo then lo = index end
    if not hi or index > hi then hi = index end
  end
  local span = lo and hi - lo < 512 and redis.call('GETRANGE', S, lo, hi)
  for i = 10, #ARGV, 2 do
    local b
    if span then
      b = string.byte(span, tonumber(ARGV[i]) - lo + 1)  -- past the string's end: free
    else
      b = string.byte(redis.call('GETRANGE', S, ARGV[i], ARGV[i]))
    end
    if kept or (b and b ~= 0) then taken[#taken + 1] = (i - 10) / 2 end
    parts[#parts + 1] = ARGV[i] .. '.' .. ARGV[i + 1]
  end
  if #taken > 0 then return {'unavailable', unpack(taken)} end
  seats = table.concat(parts, ',')
else
  local takeable = meta.capacity - meta.held - meta.sold
  if kept then takeable = 0 end
  if takeable < q then return {'sold_out', takeable, kept and 1 or 0} end
  if meta.reserved then seats = best_available(q) end
end
if seats ~= '' then mark_seats(seats, 1, true) end
-- The count and the fence in one write (meta holds the counts as this script changed them).
meta.held = meta.held + q
local fence = math.max(meta.fence, floor) + 1
redis.call('HSET', M, 'held', fmt(meta.held), 'fence', fmt(fence))
save(id, {status = 'a', sold = false, q = q, created = NOW, expires = expires, fence = fmt(fence),
          seats = seats, buyer = buyer})
redis.call('ZADD', X, fmt(expires), id)
lower_bound('due', expires)
return {'ok', fmt(fence), seats}
)lua";

// ARGV[3]: hold id. Replies: {"ok", record} | {"not_found"} | {"lost"}.
const char* const kGetScript = R"lua(
if not open() then return {'lost'} end
local text = redis.call('HGET', H, ARGV[3])
if not text then return {'not_found'} end
return {'ok', text}
)lua";

// ARGV[3]: hold id. Replies: {"ok", record} | {"expired"} | {"released"} | {"checked_out"} |
// {"not_found"} | {"lost"}.
const char* const kReleaseScript = R"lua(
if not open() then return {'lost'} end
local id = ARGV[3]
local h = decode(redis.call('HGET', H, id))
if not h then return {'not_found'} end
if h.status == 'x' then return {'expired'} end
if h.status == 'r' then return {'released'} end
if h.status == 'c' then return {'checked_out'} end
return {'ok', finish(id, h, 'r', NOW)}
)lua";

// ARGV[3]: hold id. Replies: {"ok", record before} | {"expired"} | {"released"} |
// {"checked_out"} | {"not_found"} | {"lost"}.
const char* const kCheckoutScript = R"lua(
if not open() then return {'lost'} end
local id = ARGV[3]
local text = redis.call('HGET', H, id)
local h = decode(text)
if not h then return {'not_found'} end
if h.status == 'x' then return {'expired'} end
if h.status == 'r' then return {'released'} end
if h.status == 'c' then return {'checked_out'} end
h.status = 'c'
save(id, h)
redis.call('ZREM', X, id)  -- from now on expiry no longer frees its seats
return {'ok', text}
)lua";

// ARGV[3]: hold id, ARGV[4]: keep (0/1). NOW is 0: nothing is judged expired here; a kept hold
// goes back to the expiry set and the next call judges it.
// Replies: {"kept", record} | {"released", record} | {"noop"} | {"lost"}.
const char* const kAbortScript = R"lua(
if not open() then return {'lost'} end
local id = ARGV[3]
local h = decode(redis.call('HGET', H, id))
if not h or h.status ~= 'c' then return {'noop'} end
if ARGV[4] == '1' then
  h.status = 'a'
  local text = save(id, h)
  redis.call('ZADD', X, fmt(h.expires), id)
  lower_bound('due', h.expires)
  return {'kept', text}
end
return {'released', finish(id, h, 'r', h.expires)}
)lua";

// ARGV[3]: hold id. Replies: {"ok"} | {"invalid_state"} | {"not_found"} | {"lost"}.
const char* const kMarkSoldScript = R"lua(
if not open() then return {'lost'} end
local id = ARGV[3]
local h = decode(redis.call('HGET', H, id))
if not h then return {'not_found'} end
if h.status ~= 'c' then return {'invalid_state'} end
if h.sold then return {'ok'} end
add_count('held', -h.q)
add_count('sold', h.q)
if h.seats ~= '' then mark_seats(h.seats, 2, false) end  -- taken either way: no row changes
h.sold = true
save(id, h)
return {'ok'}
)lua";

// ARGV[3]: hold id. Replies: {"ok", record} | {"already", record} | {"invalid_state"} |
// {"not_found"} | {"lost"}.
const char* const kReleaseBookedScript = R"lua(
if not open() then return {'lost'} end
local id = ARGV[3]
local text = redis.call('HGET', H, id)
local h = decode(text)
if not h then return {'not_found'} end
if h.status == 'r' then return {'already', text} end
if h.status ~= 'c' then return {'invalid_state'} end
return {'ok', finish(id, h, 'r', NOW)}
)lua";

// Replies: {"ok", capacity, held, sold, waitlisted} | {"lost"}.
const char* const kCountsScript = R"lua(
if not open() then return {'lost'} end
return {'ok', meta.capacity, meta.held, meta.sold, meta.waitlisted}
)lua";

// ARGV[3], ARGV[4]: flat seat range [begin, end). Replies: {"ok", bytes, waitlisted} | {"lost"}.
// Bytes past the end of the state string are free and may be missing from the reply.
const char* const kSeatMapScript = R"lua(
if not open() then return {'lost'} end
local b, e = tonumber(ARGV[3]), tonumber(ARGV[4])
local bytes = ''
if e > b then bytes = redis.call('GETRANGE', S, b, e - 1) end
return {'ok', bytes, meta.waitlisted}
)lua";

// ARGV[3]: most holds to expire (0: only report). Clears the "returned" flag.
// Replies: {"ok", expired, returned (0/1)} | {"lost"}.
const char* const kSweepScript = R"lua(
load_meta()
if not meta.ready then return {'lost'} end
local expired = reclaim(tonumber(ARGV[3]))
local returned = redis.call('HGET', M, 'returned')
redis.call('HDEL', M, 'returned')
return {'ok', expired, returned == '1' and 1 or 0}
)lua";

// ARGV[3]: init (0/1), ARGV[4]: last chunk (0/1), then when init: ARGV[5..10] kind, capacity,
// rows, leaves, row offsets, tree; then claims from ARGV[11], 7 each: hold id, buyer, quantity,
// sold (0/1), created, expires, seats.
// A section already ready is left alone. The first chunk (init) lays the section out; claims
// already present are skipped; the last chunk opens the section.
// Replies: {"ok"} | {"ready"} | {"uninit"} (a later chunk found no layout: engine restarted).
const char* const kRestoreSectionScript = R"lua(
load_meta()
if meta.ready then return {'ready'} end
if redis.call('HGET', M, 'init') ~= '1' then
  if ARGV[3] ~= '1' then return {'uninit'} end
  redis.call('DEL', S, T, R, X, H, F)
  redis.call('HDEL', M, 'returned')
  redis.call('HSET', M, 'kind', ARGV[5], 'capacity', ARGV[6], 'rows', ARGV[7], 'leaves', ARGV[8],
             'held', 0, 'sold', 0, 'fence', 0, 'due', 0, 'forget', 0, 'init', 1)
  if ARGV[5] == 'reserved' then
    redis.call('SET', R, ARGV[9])
    redis.call('SET', T, ARGV[10])
  end
  load_meta()
end
local rows = {}
for i = 11, #ARGV, 7 do
  local id = ARGV[i]
  if redis.call('HEXISTS', H, id) == 0 then
    local q, sold, seats = tonumber(ARGV[i + 2]), ARGV[i + 3] == '1', ARGV[i + 6]
    local ch = string.char(sold and 2 or 1)
    for index, row in string.gmatch(seats, '(%d+)%.(%d+)') do
      redis.call('SETRANGE', S, tonumber(index), ch)
      row = tonumber(row)
      rows[row] = (rows[row] or 0) + 1
    end
    add_count(sold and 'sold' or 'held', q)
    save(id, {status = 'c', sold = sold, q = q, created = tonumber(ARGV[i + 4]),
              expires = tonumber(ARGV[i + 5]), fence = '0', seats = seats, buyer = ARGV[i + 1]})
  end
end
for row, changed in pairs(rows) do recompute_row(row, changed, false) end
if ARGV[4] == '1' then redis.call('HSET', M, 'ready', 1) end
return {'ok'}
)lua";

// KEYS[1]: the bucket's ready marker, KEYS[2]: its claims hash. ARGV: now, hold id, quantity,
// cap, expires_at, buyer. Drops the buyer's active claims expired at now, then refuses when the
// buyer's other claims plus this quantity pass the cap, else claims it (active until expires_at).
// Replies: {"ok"} | {"limit", held} | {"lost"}.
const char* const kReserveClaimScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local now, q, cap, buyer = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[6]
local live, others, has, dropped = {}, {}, 0, false
for _, c in ipairs(read_claims(KEYS[2], buyer)) do
  local state, quantity, expires = string.match(c[2], '^(%a)|(%d+)|(%d+)$')
  if not state or (state == 'a' and tonumber(expires) <= now) then
    dropped = true  -- lapsed (or unreadable: a claim that cannot be counted is not kept)
  else
    live[#live + 1] = c
    if c[1] ~= ARGV[2] then
      has = has + tonumber(quantity)
      others[#others + 1] = c
    end
  end
end
if has + q > cap then
  if dropped then write_claims(KEYS[2], buyer, live) end
  return {'limit', has}
end
others[#others + 1] = {ARGV[2], 'a|' .. ARGV[3] .. '|' .. ARGV[5]}
write_claims(KEYS[2], buyer, others)
return {'ok'}
)lua";

// KEYS[1]: the bucket's ready marker, KEYS[2]: its claims hash. ARGV[1]: last chunk (0/1), then
// per claim: buyer, hold id, quantity. A ready bucket is left as it is; otherwise claims from the
// bookings store are written as booked and the last chunk marks the bucket ready.
// Replies: {"ok"} | {"ready"}.
const char* const kRestoreClaimsScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return {'ready'} end
for i = 2, #ARGV, 3 do
  set_claim(KEYS[2], ARGV[i], ARGV[i + 1], 'b|' .. ARGV[i + 2] .. '|0')
end
if ARGV[1] == '1' then redis.call('SET', KEYS[1], '1') end
return {'ok'}
)lua";

// KEYS[1]: a claims hash. ARGV: buyer, hold id, the claim ("a|quantity|expires_at", "b|quantity|0",
// or empty to drop it). Replies: {"ok"}.
const char* const kSetClaimScript = R"lua(
set_claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return {'ok'}
)lua";

// KEYS[1]: a bucket of the hold index, KEYS[2]: its forget-by ZSET. ARGV: now (ms, the store's
// clock), limit. Forgets the entries due. Replies: the number forgotten.
const char* const kForgetIndexScript = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return #due
)lua";

}  // namespace boxoffice::redis_seat_locks

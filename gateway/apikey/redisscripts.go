package apikey

import "github.com/redis/go-redis/v9"

// The Lua scripts of Store. Each runs atomically, so a record and its indexes never
// disagree. Keys a script can name up front come in KEYS; the scripts that find a
// record through the ids hash (get, touch, page) build its key name from ARGV[1],
// the "<prefix>{apikeys}:" base. That is safe on Redis Cluster because every key of
// the store carries the {apikeys} hash tag and so lives in the slot of KEYS[1].

// hygieneLua defines hysync, which puts a key into its hygiene sets (see Store.hKey), and
// hexms, which reads a stored time (16 hex digits of the Unix ms, sign bit flipped). The
// scripts that write records start with it. hysync(base, id, revoked, exp, created, used,
// now): revoked "1" or "0", exp the expiry score ("+inf" for never), created and now Unix
// ms, used the stored last use or false.
const hygieneLua = `
local function hexms(h)
  return (tonumber(string.sub(h, 1, 8), 16) - 2147483648) * 4294967296 + tonumber(string.sub(h, 9), 16)
end
local function hysync(b, id, revoked, exp, created, used, now)
  local live, age, use, gone = b .. 'h:live', b .. 'h:age', b .. 'h:use', b .. 'h:expired'
  if revoked == '1' or (exp ~= '+inf' and tonumber(exp) <= tonumber(now)) then
    redis.call('ZREM', live, id)
    redis.call('ZREM', age, id)
    redis.call('ZREM', use, id)
    if revoked == '1' then
      redis.call('ZREM', gone, id)
    else
      redis.call('ZADD', gone, exp, id)
    end
    return
  end
  local u = tonumber(created)
  if used and used ~= '' then u = math.max(u, hexms(used)) end
  redis.call('ZREM', gone, id)
  redis.call('ZADD', live, exp, id)
  redis.call('ZADD', age, created, id)
  redis.call('ZADD', use, string.format('%.0f', u), id)
end
`

// getScript returns {hex, rec, used} for the ID ARGV[2], or nil.
// KEYS[1] ids. ARGV[1] base, ARGV[2] id.
var getScript = redis.NewScript(`
local hex = redis.call('HGET', KEYS[1], ARGV[2])
if not hex then return false end
local v = redis.call('HMGET', ARGV[1] .. 'k:' .. hex, 'rec', 'used')
return {hex, v[1], v[2]}
`)

// createScript stores a new record and adds it to its eight indexes and to its
// creator's active set. It returns 'hash' or 'id' when either is taken, 'limit' when the
// creator already holds ARGV[10] active keys (0: no limit), else 'ok'.
// KEYS[1] ids, KEYS[2] k:<hex>, KEYS[3..6] the global indexes in sortFields order,
// KEYS[7..10] the creator's, KEYS[11] the creator's active set (see activeKey).
// ARGV[1] id, ARGV[2] hex, ARGV[3] rec, ARGV[4] used or "", ARGV[5] creator,
// ARGV[6..9] the members in sortFields order, ARGV[10] the limit, ARGV[11] now (Unix
// ms), ARGV[12] the key's active-set score, ARGV[13..17] the hygiene arguments (base,
// revoked, expiry, creation, now; see hygieneLua).
var createScript = redis.NewScript(hygieneLua + `
if redis.call('EXISTS', KEYS[2]) == 1 then return 'hash' end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'id' end
local limit = tonumber(ARGV[10])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', ARGV[11])
  if redis.call('ZCARD', KEYS[11]) >= limit then return 'limit' end
end
redis.call('HSET', KEYS[2], 'rec', ARGV[3], 'by', ARGV[5])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'used', ARGV[4]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for i = 3, 10 do
  redis.call('ZADD', KEYS[i], 0, ARGV[6 + (i - 3) % 4])
end
if ARGV[12] ~= '' then redis.call('ZADD', KEYS[11], ARGV[12], ARGV[1]) end
if ARGV[13] then hysync(ARGV[13], ARGV[1], ARGV[14], ARGV[15], ARGV[16], ARGV[4], ARGV[17]) end
return 'ok'
`)

// casScript replaces a record if it still holds the value the caller read, and moves
// its name and expiry index members. It returns 1, or 0 when the record changed.
// KEYS[1] k:<hex>, KEYS[2] z:name, KEYS[3] z:expires_at, KEYS[4] the creator's
// name index, KEYS[5] the creator's expiry index. ARGV[1] old rec, ARGV[2] new rec,
// ARGV[3]/ARGV[4] old/new name member, ARGV[5]/ARGV[6] old/new expiry member; when
// given, ARGV[7] the creator's active set (its name carries the {apikeys} hash tag, so
// it lives in the slot of KEYS[1]), ARGV[8] the key's id, ARGV[9] its new active-set
// score, or "" when it is revoked; when given, ARGV[10..14] the hygiene arguments (base,
// revoked, expiry, creation, now; see hygieneLua).
var casScript = redis.NewScript(hygieneLua + `
if redis.call('HGET', KEYS[1], 'rec') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[2])
for i = 2, #KEYS do
  local j = 3 + 2 * ((i - 2) % 2)
  if ARGV[j] ~= ARGV[j + 1] then
    redis.call('ZREM', KEYS[i], ARGV[j])
    redis.call('ZADD', KEYS[i], 0, ARGV[j + 1])
  end
end
if ARGV[7] then
  if ARGV[9] == '' then
    redis.call('ZREM', ARGV[7], ARGV[8])
  else
    redis.call('ZADD', ARGV[7], ARGV[9], ARGV[8])
  end
end
if ARGV[10] then
  hysync(ARGV[10], ARGV[8], ARGV[11], ARGV[12], ARGV[13], redis.call('HGET', KEYS[1], 'used'), ARGV[14])
end
return 1
`)

// touchScript moves last-use times forward. It returns how many keys it changed.
// Times are 16 hex digits; they are compared as two 32-bit numbers because Lua's
// string comparison follows the server's collation locale, not byte order.
// A key in the hygiene set h:use (active) is re-scored there.
// KEYS[1] ids. ARGV[1] base, ARGV[2] the never-used time, then pairs of ID and time.
var touchScript = redis.NewScript(hygieneLua + `
local function before(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)
  if ah ~= bh then return ah < bh end
  return tonumber(string.sub(a, 9), 16) < tonumber(string.sub(b, 9), 16)
end
local n = 0
for i = 3, #ARGV, 2 do
  local id, t = ARGV[i], ARGV[i + 1]
  local hex = redis.call('HGET', KEYS[1], id)
  if hex then
    local k = ARGV[1] .. 'k:' .. hex
    local v = redis.call('HMGET', k, 'used', 'by')
    local old = v[1] or ARGV[2]
    if before(old, t) then
      redis.call('HSET', k, 'used', t)
      local by = v[2] or ''
      for _, z in ipairs({ARGV[1] .. 'z:last_used_at', ARGV[1] .. 'u:' .. by .. ':z:last_used_at'}) do
        redis.call('ZREM', z, old .. id)
        redis.call('ZADD', z, 0, t .. id)
      end
      local hu = ARGV[1] .. 'h:use'
      local cur = redis.call('ZSCORE', hu, id)
      local ms = hexms(t)
      if cur and tonumber(cur) < ms then redis.call('ZADD', hu, string.format('%.0f', ms), id) end
      n = n + 1
    end
  end
end
return n
`)

// pageScript reads up to ARGV[5] members of a lexicographic index between ARGV[3] and
// ARGV[4] (ZRANGEBYLEX bounds; reversed when ARGV[2] is '1') and returns, for each,
// member, rec and used.
// KEYS[1] the index, KEYS[2] ids. ARGV[1] base, ARGV[6] the length of an ID, which
// ends every member.
var pageScript = redis.NewScript(`
local ms
if ARGV[2] == '1' then
  ms = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[4], ARGV[3], 'LIMIT', 0, ARGV[5])
else
  ms = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[3], ARGV[4], 'LIMIT', 0, ARGV[5])
end
local idlen = tonumber(ARGV[6])
local out = {}
for _, m in ipairs(ms) do
  local hex = redis.call('HGET', KEYS[2], string.sub(m, -idlen))
  local v = {false, false}
  if hex then v = redis.call('HMGET', ARGV[1] .. 'k:' .. hex, 'rec', 'used') end
  out[#out + 1] = m
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
end
return out
`)

// countScript moves up to ARGV[2] keys of h:live whose expiry is at or before now to
// h:expired, then counts. It returns {moved, active, expiring, stale, unused, expired}.
// KEYS[1] h:live, KEYS[2] h:age, KEYS[3] h:use, KEYS[4] h:expired. ARGV[1] now (Unix ms),
// ARGV[3] expiring_within, ARGV[4] max_age, ARGV[5] unused_after (ms; 0 turns a count off).
var countScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local moved = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #moved, 2 do
  redis.call('ZREM', KEYS[1], moved[i])
  redis.call('ZREM', KEYS[2], moved[i])
  redis.call('ZREM', KEYS[3], moved[i])
  redis.call('ZADD', KEYS[4], moved[i + 1], moved[i])
end
local function upto(key, d)
  if tonumber(d) <= 0 then return 0 end
  return redis.call('ZCOUNT', key, '-inf', string.format('%.0f', now - tonumber(d)))
end
local expiring = 0
if tonumber(ARGV[3]) > 0 then
  expiring = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], string.format('%.0f', now + tonumber(ARGV[3])))
end
return {#moved / 2, redis.call('ZCARD', KEYS[1]), expiring, upto(KEYS[2], ARGV[4]), upto(KEYS[3], ARGV[5]),
  redis.call('ZCARD', KEYS[4])}
`)

// backfillScript puts keys into their hygiene sets when their record is still the one the
// caller read (a change in between synced the sets itself).
// KEYS[1] ids. ARGV[1] base, ARGV[2] now, then per key: id, rec, revoked, expiry, creation.
var backfillScript = redis.NewScript(hygieneLua + `
for i = 3, #ARGV, 5 do
  local id = ARGV[i]
  local hex = redis.call('HGET', KEYS[1], id)
  if hex then
    local v = redis.call('HMGET', ARGV[1] .. 'k:' .. hex, 'rec', 'used')
    if v[1] == ARGV[i + 1] then
      hysync(ARGV[1], id, ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], v[2], ARGV[2])
    end
  end
end
return 1
`)

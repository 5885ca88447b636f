-- Rotate: spend a token and store the next one of its family, atomically, so that of two
-- concurrent uses of one token exactly one spends it. The other, within the reuse grace
-- after the spend, gets the same successor (sealed); after it, it revokes the family.
-- KEYS[1] presented token's record, KEYS[2] next token's record, KEYS[3] family record,
-- KEYS[4] the user's families.
-- ARGV[1] now (unix ms), ARGV[2] next token's expiry (unix ms), ARGV[3] family ID and
-- ARGV[4] user ID, as read from KEYS[1] before the script (they never change),
-- ARGV[5] reuse grace (ms, 0 = none), ARGV[6] the next token sealed under the presented one.
-- Returns {status} or, for a reuse within the grace, {'grace', sealed successor, its expiry}.
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local grace = tonumber(ARGV[5])
local t = redis.call('HMGET', KEYS[1], 'u', 'f', 'x', 's', 'sa', 'n', 'nx')
if not t[1] or t[1] ~= ARGV[4] or t[2] ~= ARGV[3] or tonumber(t[3]) <= now then
  return {'invalid'}
end
local f = redis.call('HMGET', KEYS[3], 'r', 'x')
if not f[1] or tonumber(f[2]) <= now then
  return {'invalid'}
end
if f[1] == '1' then
  return {'revoked'}
end
if t[4] == '1' then
  local spentAt = tonumber(t[5])
  if grace > 0 and spentAt and t[6] and now - spentAt < grace then
    -- Two clients raced one refresh: both get the one successor, the family stays a chain.
    return {'grace', t[6], t[7]}
  end
  -- A spent token came back: someone holds a copy. Revoke the family (its record lives
  -- until the family's newest token expires).
  redis.call('HSET', KEYS[3], 'r', '1')
  redis.call('HDEL', KEYS[1], 'n')
  return {'reused'}
end
-- The spent record stays, marked used, until its own expiry, so a reuse is detected.
redis.call('HSET', KEYS[1], 's', '1')
if grace > 0 then
  -- What a racing second use within the grace gets back: the successor, sealed under
  -- the presented token (stored only as a hash), and its expiry.
  redis.call('HSET', KEYS[1], 'sa', ARGV[1], 'n', ARGV[6], 'nx', ARGV[2])
end
redis.call('HSET', KEYS[2], 'u', ARGV[4], 'f', ARGV[3], 'x', ARGV[2], 's', '0')
redis.call('PEXPIREAT', KEYS[2], exp)
if exp > tonumber(f[2]) then
  redis.call('HSET', KEYS[3], 'x', ARGV[2])
  redis.call('PEXPIREAT', KEYS[3], exp)
end
local s = redis.call('ZSCORE', KEYS[4], ARGV[3])
if not s or exp > tonumber(s) then
  redis.call('ZADD', KEYS[4], exp, ARGV[3])
end
if redis.call('PEXPIRETIME', KEYS[4]) < exp then
  redis.call('PEXPIREAT', KEYS[4], exp)
end
return {'ok'}

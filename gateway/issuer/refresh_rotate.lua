-- Rotate: spend a token and store the next one of its family, atomically, so that of two
-- concurrent uses of one token exactly one succeeds and the other revokes the family.
-- KEYS[1] presented token's record, KEYS[2] next token's record, KEYS[3] family record,
-- KEYS[4] the user's families.
-- ARGV[1] now (unix ms), ARGV[2] next token's expiry (unix ms), ARGV[3] family ID and
-- ARGV[4] user ID, as read from KEYS[1] before the script (they never change).
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local t = redis.call('HMGET', KEYS[1], 'u', 'f', 'x', 's')
if not t[1] or t[1] ~= ARGV[4] or t[2] ~= ARGV[3] or tonumber(t[3]) <= now then
  return 'invalid'
end
local f = redis.call('HMGET', KEYS[3], 'r', 'x')
if not f[1] or tonumber(f[2]) <= now then
  return 'invalid'
end
if f[1] == '1' then
  return 'revoked'
end
if t[4] == '1' then
  -- A spent token came back: someone holds a copy. Revoke the family (its record lives
  -- until the family's newest token expires).
  redis.call('HSET', KEYS[3], 'r', '1')
  return 'reused'
end
-- The spent record stays, marked used, until its own expiry, so a reuse is detected.
redis.call('HSET', KEYS[1], 's', '1')
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
return 'ok'

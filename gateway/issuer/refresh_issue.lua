-- Issue: store a new family and its first token.
-- KEYS[1] token hash record, KEYS[2] family record, KEYS[3] the user's families (sorted set,
-- scored by family expiry).
-- ARGV[1] user ID, ARGV[2] family ID, ARGV[3] expiry (unix ms), ARGV[4] now (unix ms),
-- ARGV[5] the user's session epoch.
local exp = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'f', ARGV[2], 'x', ARGV[3], 's', '0')
redis.call('PEXPIREAT', KEYS[1], exp)
redis.call('HSET', KEYS[2], 'u', ARGV[1], 'x', ARGV[3], 'r', '0', 'e', ARGV[5])
redis.call('PEXPIREAT', KEYS[2], exp)
-- Forget expired families, so the set stays as small as the user's live sessions.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
redis.call('ZADD', KEYS[3], exp, ARGV[2])
if redis.call('PEXPIRETIME', KEYS[3]) < exp then
  redis.call('PEXPIREAT', KEYS[3], exp)
end
return 1

-- Revoke families. KEYS[1] the user's families; KEYS[2..] family records to revoke.
-- ARGV[1] now (unix ms); ARGV[2..] the family IDs of KEYS[2..].
-- Returns the IDs of the user's live families that were not in ARGV (issued since the
-- caller listed them), so that the caller revokes those too.
local listed = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'r', '1')
  end
  listed[ARGV[i]] = true
end
local missed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  if not listed[id] then
    table.insert(missed, id)
  end
end
return missed

-- forward: turn a rotated session's old key into a short-lived pointer to the new one.
-- KEYS[1]  the old session hash
-- ARGV[1]  the forward token (the new ID, masked with a hash of the old ID)
-- ARGV[2]  grace period (ms)
-- Returns 1 when forwarded, 2 when it already was (a retry), 0 when the key is gone (or
-- revoked: a tombstone is never turned into a pointer).
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return 0
end
if redis.call('TYPE', key).ok ~= 'hash' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local m = redis.call('HMGET', key, '_f', '_r', '_n')
if m[1] then
  return 2
end
if m[2] then
  return 0
end
local ttl = redis.call('PTTL', key)
local grace = tonumber(ARGV[2])
if ttl > 0 and ttl < grace then
  grace = ttl
end
redis.call('DEL', key)
if m[3] then
  -- the rotation's mark stays: a revoke that finds the pointer follows it
  redis.call('HSET', key, '_f', ARGV[1], '_n', m[3])
else
  redis.call('HSET', key, '_f', ARGV[1])
end
redis.call('PEXPIRE', key, grace)
return 1

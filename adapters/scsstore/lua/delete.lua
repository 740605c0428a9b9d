-- delete: delete a session and leave a tombstone in its place, so that a request that
-- loaded the session before the delete cannot write it back with its commit.
-- KEYS[1]  the session key
-- KEYS[2]  its tombstone key (same hash tag)
-- ARGV[1]  the tombstone's least lifetime (ms)
-- The tombstone lives as long as the session would have, and at least ARGV[1]: past the
-- session's own expiry scs commits nothing for it (its expiry has passed). Returns 1.
local keep = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > keep then
  keep = ttl
end
redis.call('DEL', KEYS[1])
if redis.call('PTTL', KEYS[2]) < keep then
  redis.call('SET', KEYS[2], '1', 'PX', keep)
end
return 1

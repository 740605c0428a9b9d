-- commit: store a session's data, unless the session was deleted meanwhile.
-- KEYS[1]  the session key
-- KEYS[2]  its tombstone key (same hash tag)
-- ARGV[1]  the data
-- ARGV[2]  TTL (ms); 0 or less deletes the session
-- Returns 1 when done, 0 when a tombstone says the session was deleted (nothing written).
local ttl = tonumber(ARGV[2])
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1

-- touch: extend a session's TTL when its last touch is older than the touch interval.
-- A load reads the session with HGETALL (no script on the common path) and calls this
-- only when, by the app server's clock, the touch looks due; the decision is taken again
-- here with Redis TIME, so skewed app clocks cost at most a script call, never a write.
-- KEYS[1]  the session hash
-- ARGV[1]  idle timeout (ms)
-- ARGV[2]  touch interval (ms)
-- Returns the new last-touch time (ms), 0 when the touch was not due, -1 when the key is
-- gone (or past its absolute deadline: then it is deleted).
local m = redis.call('HMGET', KEYS[1], '_t', '_a')
local last, abs = tonumber(m[1]), tonumber(m[2])
if not last or not abs then
  return -1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if abs <= now then
  redis.call('DEL', KEYS[1])
  return -1
end
if now - last < tonumber(ARGV[2]) then
  return 0
end
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[1]), abs - now))
redis.call('HSET', KEYS[1], '_t', now)
return now

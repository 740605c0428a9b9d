-- touch: read a session and, when its last touch is older than the touch interval,
-- extend its TTL, in one atomic step. A load reads the session with HGETALL (no script on
-- the common path) and calls this only when, by the app server's clock, the touch looks
-- due; the decision is taken again here with Redis TIME, so skewed app clocks cost at
-- most a script call, never a write. The load returns the session this call read, so
-- what it returns is what was touched, and a rotation, save or destroy since the HGETALL
-- is seen.
-- KEYS[1]  the session hash
-- ARGV[1]  the store's idle timeout (ms); a session's own ('_i') applies where it has one
-- ARGV[2]  the store's touch interval (ms); for a session whose own idle timeout is
--          shorter than the store's, scaled down by the same ratio
-- Returns the whole hash, as HGETALL does, after the touch, followed by one more pair,
-- '!' 'touched', when this call touched it ('!' starts no field the store writes): an
-- empty array when the key is gone (or past its absolute deadline: then it is deleted). A hash without a last touch
-- and a deadline (a forward pointer, a tombstone, foreign data) is returned untouched;
-- a key of another type is a WRONGTYPE error. A key of a newer format ('_F' other than
-- '1') is returned untouched: the reader refuses it.
local key = KEYS[1]
local touched = false
local m = redis.call('HMGET', key, '_t', '_a', '_i', '_F')
local last, abs = tonumber(m[1]), tonumber(m[2])
if last and abs and (not m[4] or m[4] == '1') then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if abs <= now then
    redis.call('DEL', key)
    return {}
  end
  local idle, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
  local own = tonumber(m[3])
  if own and own > 0 then
    if own < idle then
      interval = math.floor(interval * own / idle)
    end
    idle = own
  end
  if now - last >= interval then
    redis.call('PEXPIRE', key, math.min(idle, abs - now))
    redis.call('HSET', key, '_t', now)
    touched = true
  end
end
local all = redis.call('HGETALL', key)
if touched then
  all[#all + 1] = '!'
  all[#all + 1] = 'touched'
end
return all

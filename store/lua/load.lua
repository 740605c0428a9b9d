-- load: read a session and touch it when the touch is due, in one round trip.
-- KEYS[1]  the session hash
-- ARGV[1]  idle timeout (ms)
-- ARGV[2]  touch interval (ms)
-- Returns nil when the key is missing (or past its absolute deadline: then it is
-- deleted), else the hash's fields and values as one msgpack array (one bulk string:
-- the client slices it without an allocation per field). A touch sets the TTL to
-- min(idle, absolute deadline - now) and the last-touch field to now (Redis TIME).
local v = redis.call('HGETALL', KEYS[1])
if #v == 0 then
  return false
end
local ti, ai
for i = 1, #v, 2 do
  local f = v[i]
  if f == '_t' then ti = i + 1 elseif f == '_a' then ai = i + 1 end
end
if ti and ai then
  local last, abs = tonumber(v[ti]), tonumber(v[ai])
  if last and abs then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if abs <= now then
      redis.call('DEL', KEYS[1])
      return false
    end
    if now - last >= tonumber(ARGV[2]) then
      local ttl = math.min(tonumber(ARGV[1]), abs - now)
      redis.call('PEXPIRE', KEYS[1], ttl)
      redis.call('HSET', KEYS[1], '_t', now)
      v[ti] = tostring(now)
    end
  end
end
return cmsgpack.pack(v)

-- destroy: delete a session (or a rotated session's forward pointer).
-- KEYS[1]  the session hash
-- ARGV[1]  '' or a tombstone TTL (ms): leave a tombstone in the key's place, so that a
--          rotation in flight cannot write it afterwards
-- Returns {deleted (0/1), forward token or false, user or false, pending tag or false}:
-- the caller deletes the session a forward pointer led to, and the one a rotation in
-- flight was writing (pending), and drops the session from its user's index. A revoke's
-- tombstone is left in place (it is no session).
local key = KEYS[1]
local fwd, user, pending = false, false, false
if redis.call('TYPE', key).ok == 'hash' then
  local m = redis.call('HMGET', key, '_f', '_u', '_r', '_n')
  if m[3] then
    return {0, false, false, false}
  end
  fwd, user, pending = m[1] or false, m[2] or false, m[4] or false
end
local n = redis.call('DEL', key)
if ARGV[1] ~= '' then
  redis.call('HSET', key, '_r', '1')
  redis.call('PEXPIRE', key, ARGV[1])
end
return {n, fwd, user, pending}

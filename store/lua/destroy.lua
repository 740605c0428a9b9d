-- destroy: delete a session (or a rotated session's forward pointer).
-- KEYS[1]  the session hash
-- Returns {deleted (0/1), forward token or false, user or false}: the caller deletes the
-- session a forward pointer led to as well, and drops the session from its user's index.
-- A revoke's tombstone is left in place (it is no session).
local key = KEYS[1]
local fwd, user = false, false
if redis.call('TYPE', key).ok == 'hash' then
  local m = redis.call('HMGET', key, '_f', '_u', '_r')
  if m[3] then
    return {0, false, false}
  end
  fwd, user = m[1] or false, m[2] or false
end
return {redis.call('DEL', key), fwd, user}

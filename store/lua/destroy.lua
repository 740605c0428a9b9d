-- destroy: delete a session (or a rotated session's forward pointer).
-- KEYS[1]  the session hash
-- Returns {deleted (0/1), forward token or false}: the caller deletes the session a
-- forward pointer led to as well.
local key = KEYS[1]
local fwd = false
if redis.call('TYPE', key).ok == 'hash' then
  fwd = redis.call('HGET', key, '_f') or false
end
return {redis.call('DEL', key), fwd}

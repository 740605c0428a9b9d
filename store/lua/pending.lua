-- pending: the first step of a rotation. Read the session as Redis holds it now, and, if
-- it belongs to a user, mark it as being rotated to a new tag before the new session is
-- written: a revoke that deletes the old session reads the mark and revokes the new tag
-- too, so a rotation racing a revoke cannot carry the session past it.
-- KEYS[1]  the session hash
-- ARGV[1]  the new session's tag
-- Returns the key's fields and values (as HGETALL, the mark included; a forward pointer's
-- or foreign data's unmarked), or an empty array when it is gone (expired, destroyed,
-- revoked, rotated away to another user). A key of a newer format ('_F' other than '1') is
-- returned unmarked and whole: the reader refuses it.
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' then
  if redis.call('EXISTS', key) == 1 then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  return {}
end
local m = redis.call('HMGET', key, '_v', '_u', '_f', '_r', '_F')
if m[5] and m[5] ~= '1' then
  return redis.call('HGETALL', key)
end
if m[4] then
  return {}
end
if m[1] and m[2] and not m[3] then
  redis.call('HSET', key, '_n', ARGV[1])
end
return redis.call('HGETALL', key)

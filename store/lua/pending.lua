-- pending: mark a user's session as being rotated to a new tag, before the new session
-- is written. A revoke that deletes the old session reads the mark and revokes the new
-- tag too, so a rotation racing a revoke cannot carry the session past it.
-- KEYS[1]  the session hash
-- ARGV[1]  the new session's tag
-- Returns 1 when marked, 0 when the session is gone (expired, destroyed, revoked).
local key = KEYS[1]
if not redis.call('HGET', key, '_v') then
  return 0
end
redis.call('HSET', key, '_n', ARGV[1])
return 1

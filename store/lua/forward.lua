-- forward: the last step of a rotation. Turn the old key into a short-lived pointer to
-- the new session, or, when the rotation changed who the session belongs to, into a
-- tombstone that no request follows (against session fixation: whoever held the old ID
-- must not be handed the new session).
-- KEYS[1]  the old session hash
-- ARGV[1]  the forward token (the new ID, masked with a hash of the old ID)
-- ARGV[2]  'f': grace period (ms) of the pointer; 't': how long the tombstone stays (ms)
-- ARGV[3]  the old session's version the new session was copied from
-- ARGV[4]  'f' forward pointer, 't' tombstone
-- ARGV[5]  the new session's tag: the rotation's mark on the pointer or tombstone, when
--          the session was marked (it has a user; the mark may be another rotation's)
-- ARGV[6]  '' on the first write of the call, '1' on a retry (not read here: the caller
--          tells a retry from it)
-- Returns 1 when done, 2 when it already was (a retry: the key holds this rotation's
-- pointer or tombstone, or a logout's tombstone that replaced the pointer), 3 when another rotation forwarded it first (a pointer with
-- another token: of concurrent rotations of one session exactly one wins), 0 when the key
-- is gone (or a tombstone: revoked, destroyed, or rotated to another user — never turned
-- into a pointer), -1 when the session was saved since it was copied (its version moved:
-- the caller copies it again), or the value of its '_F' (a string) when the key is of a
-- newer format (left as it is).
local key = KEYS[1]
-- replace writes t over the key, then deletes the key's other fields: the key never stops
-- existing here, which a script needs while the key's Cluster slot migrates (a node
-- refuses a script's write of a key it no longer holds: "non local key").
local function replace(t)
  redis.call('HSET', key, unpack(t))
  local keep, drop = {}, {}
  for i = 1, #t, 2 do
    keep[t[i]] = true
  end
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if not keep[name] then
      drop[#drop + 1] = name
      if #drop == 1000 then
        redis.call('HDEL', key, unpack(drop))
        drop = {}
      end
    end
  end
  if #drop > 0 then
    redis.call('HDEL', key, unpack(drop))
  end
end
if redis.call('EXISTS', key) == 0 then
  return 0
end
if redis.call('TYPE', key).ok ~= 'hash' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local m = redis.call('HMGET', key, '_f', '_r', '_n', '_v', '_s', '_F', '_R')
if m[6] and m[6] ~= '1' then
  return m[6]
end
if m[1] == ARGV[1] or m[2] == ARGV[1] or m[7] == ARGV[1] then
  -- This rotation's pointer or tombstone, or the tombstone a logout left in place of its
  -- pointer (keeping the token in '_R': see destroy.lua).
  return 2
end
if m[1] then
  return 3
end
if m[2] or not m[4] then
  return 0
end
if m[4] ~= ARGV[3] then
  return -1
end
local ttl = redis.call('PTTL', key)
local grace = tonumber(ARGV[2])
if ARGV[4] == 'f' and ttl > 0 and ttl < grace then
  grace = ttl
end
-- The rotation's mark stays, naming this rotation's new session (a concurrent rotation
-- that lost may have marked the session last): a revoke that finds the pointer or the
-- tombstone follows it (and revokes the new session only if it is still the revoked
-- user's).
-- The saves applied to the session stay too: a retry of one is answered as applied.
local t = {ARGV[4] == 'f' and '_f' or '_r', ARGV[1]}
if m[3] then
  t[#t + 1], t[#t + 2] = '_n', ARGV[5]
end
if m[5] then
  t[#t + 1], t[#t + 2] = '_s', m[5]
end
replace(t)
redis.call('PEXPIRE', key, grace)
return 1

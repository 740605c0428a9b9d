-- member: look at, or revoke, one session listed in a user's index.
-- KEYS[1]  the session hash
-- ARGV[1]  the user
-- ARGV[2]  'r' revoke (delete the user's session), 'l' list (read it), 's' status (read
--          it, and write nothing: no tombstone where there is no key)
-- ARGV[3]  tombstone TTL (ms): longer than the pending window of a login
-- ARGV[4…] ('l') attribute fields to return
-- Where the session is gone, or revoked, a tombstone (a hash holding '_r', and the
-- session's rotation mark '_n' and recent saves '_s') takes its place for the tombstone TTL, so that a login still pending between its index
-- entry and its write, or a retried save, cannot create it afterwards.
-- Returns {status, …}:
--   {'gone'}                     no key (expired, destroyed): now a tombstone (but 's')
--   {'dead', forward token or false, pending or false}  a tombstone, or a forward
--                                 pointer (with its token): never a session again
--                                 (pending: see 'revoked'; kept through both)
--   {'other'}                    not this user's session (another or no user, foreign data)
--   {'revoked', pending or false} deleted; pending: the tag a rotation in flight is
--                                 writing the session to, which must be revoked as well
--   {'live', created, touched, deadline, pttl, attribute values…}
--   {'format', version}          a key of a newer format ('_F' other than '1'): left as it
--                                 is
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
local ttl = tonumber(ARGV[3])
local typ = redis.call('TYPE', key).ok
if typ == 'none' then
  if ARGV[2] ~= 's' then
    redis.call('HSET', key, '_r', '1')
    redis.call('PEXPIRE', key, ttl)
  end
  return {'gone'}
end
if typ ~= 'hash' then
  return {'other'}
end
local m = redis.call('HMGET', key, '_v', '_u', '_c', '_t', '_a', '_n', '_r', '_f', '_s', '_F')
if m[10] and m[10] ~= '1' then
  return {'format', m[10]}
end
if m[7] or m[8] then
  return {'dead', m[8] or false, m[6] or false}
end
if not m[1] or m[2] ~= ARGV[1] then
  return {'other'}
end
if ARGV[2] == 'r' then
  -- The tombstone keeps the mark and the saves applied (a retried save is answered as
  -- applied: see save.lua).
  local t = {'_r', '1'}
  if m[6] then
    t[#t + 1], t[#t + 2] = '_n', m[6]
  end
  if m[9] then
    t[#t + 1], t[#t + 2] = '_s', m[9]
  end
  replace(t)
  redis.call('PEXPIRE', key, ttl)
  return {'revoked', m[6] or false}
end
local out = {'live', m[3], m[4], m[5], redis.call('PTTL', key)}
if #ARGV >= 4 then
  local a = redis.call('HMGET', key, unpack(ARGV, 4, #ARGV))
  for i = 1, #ARGV - 3 do
    out[#out + 1] = a[i] or false
  end
end
return out

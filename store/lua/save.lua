-- save: apply the attributes a request changed, bump the version, recompute the TTL.
-- KEYS[1]   the session hash
-- ARGV[1]   save id: a retried save that already applied is recognised, not applied twice
-- ARGV[2]   expected version ('' = no check)
-- ARGV[3]   mode: 'n' new session, 'u' update, 'c' copy (rotation: a new key with the old
--           session's created-at and absolute deadline)
-- ARGV[4]   idle timeout (ms)
-- ARGV[5]   'n': absolute lifetime (ms); 'c': absolute deadline (ms since epoch)
-- ARGV[6]   codec name
-- ARGV[7]   user: '' unchanged, '+name' set, '-' clear
-- ARGV[8]   'c': created-at (ms since epoch); 'c': version to continue from
-- ARGV[9]   'c': version of the old session
-- ARGV[10]  number of attribute fields to delete (n), then n field names, then field/value pairs
-- Returns {1, version, now, absolute deadline, created-at} when applied,
--         {2, version, now, absolute deadline, created-at} when this save id already applied,
--         {-1} not found (missing, expired, destroyed or rotated away: never resurrected),
--         {-2, version} version conflict, {-3} the new key exists already,
--         {-4, reason} not a session, {-5, codec} stored with another codec.
local key = KEYS[1]
local mode = ARGV[3]
local exists = redis.call('EXISTS', key) == 1
local m = redis.call('HMGET', key, '_v', '_a', '_s', '_k', '_f', '_c')
local ver, abs, sid, codec, fwd, created = m[1], m[2], m[3], m[4], m[5], m[6]
if exists and ver and sid == ARGV[1] then
  local t = redis.call('TIME')
  return {2, tonumber(ver), tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), tonumber(abs), tonumber(created)}
end
if mode == 'u' then
  if not exists or fwd then
    return {-1}
  end
  if not ver or not abs then
    return {-4, 'missing metadata'}
  end
  if codec ~= ARGV[6] then
    return {-5, codec or ''}
  end
  if ARGV[2] ~= '' and ver ~= ARGV[2] then
    return {-2, tonumber(ver)}
  end
elseif exists then
  return {-3}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local newver
if mode == 'n' then
  abs = now + tonumber(ARGV[5])
  created = now
  newver = 1
elseif mode == 'c' then
  abs = tonumber(ARGV[5])
  created = tonumber(ARGV[8])
  newver = tonumber(ARGV[9]) + 1
else
  abs = tonumber(abs)
  created = tonumber(created) or 0
  newver = tonumber(ver) + 1
end
if abs <= now then
  if exists then
    redis.call('DEL', key)
  end
  return {-1}
end
local n = tonumber(ARGV[10])
local i = 11
if n > 0 then
  redis.call('HDEL', key, unpack(ARGV, i, i + n - 1))
end
i = i + n
redis.call('HSET', key, '_v', newver, '_s', ARGV[1], '_t', now, unpack(ARGV, i, #ARGV))
if mode ~= 'u' then
  redis.call('HSET', key, '_c', created, '_a', abs, '_k', ARGV[6])
end
local u = ARGV[7]
if u == '-' then
  redis.call('HDEL', key, '_u')
elseif u ~= '' then
  redis.call('HSET', key, '_u', string.sub(u, 2))
end
redis.call('PEXPIRE', key, math.min(tonumber(ARGV[4]), abs - now))
return {1, newver, now, abs, created}

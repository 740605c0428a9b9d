-- save: apply the attributes a request changed, bump the version, recompute the TTL.
-- KEYS[1]   the session hash
-- ARGV[1]   save id: a retried save that already applied is recognised, not applied twice
-- ARGV[2]   expected version ('' = no check)
-- ARGV[3]   mode: 'n' new session, 'u' update, 'c' copy (rotation: a new key that keeps
--           the old session's created-at and absolute deadline)
-- ARGV[4]   idle timeout (ms)
-- ARGV[5]   'n': absolute lifetime (ms); 'c': absolute deadline (ms since epoch)
-- ARGV[6]   codec name
-- ARGV[7]   user: '' unchanged, '+name' set, '-' clear
-- ARGV[8]   'c': created-at (ms since epoch)
-- ARGV[9]   'c': version of the old session
-- ARGV[10]  '' or, when the save gives the session a user, the time (ms, Redis time)
--           until which the user's index entry written just before is trusted: a
--           later save is 'stale' and applies nothing (the caller lists it again), and
--           so is a save that gives the session a user it does not have without one
-- ARGV[11]  number of attribute fields to delete (n), then n field names, then
--           field/value pairs to set
-- Returns 'ok:<version>:<now>:<deadline>:<created>' when applied, 'dup:…' (same fields)
-- when this save id had already applied, 'notfound' (missing, expired, destroyed or
-- rotated away or revoked: never resurrected), 'conflict:<version>', 'exists', 'revoked'
-- (a new key where a revoke left a tombstone), 'stale', 'corrupt:<reason>',
-- 'codec:<stored codec>'.
local key = KEYS[1]
local mode = ARGV[3]
local m = redis.call('HMGET', key, '_v', '_a', '_s', '_k', '_c', '_f', '_r', '_u')
local ver, abs, sid, codec, created = m[1], m[2], m[3], m[4], m[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ver and sid == ARGV[1] then
  return 'dup:' .. ver .. ':' .. now .. ':' .. abs .. ':' .. created
end
if mode == 'u' then
  if not ver then
    if m[6] or m[7] or redis.call('EXISTS', key) == 0 then
      return 'notfound'
    end
    return 'corrupt:missing metadata'
  end
  if codec ~= ARGV[6] then
    return 'codec:' .. (codec or '')
  end
  if ARGV[2] ~= '' and ver ~= ARGV[2] then
    return 'conflict:' .. ver
  end
  -- Giving the session a user it does not have needs the index entry first.
  local want = ARGV[7]
  if ARGV[10] == '' and string.sub(want, 1, 1) == '+' and m[8] ~= string.sub(want, 2) then
    return 'stale'
  end
  abs = tonumber(abs)
  if not abs then
    return 'corrupt:malformed deadline'
  end
  ver = tonumber(ver) + 1
elseif m[7] then
  return 'revoked'
elseif redis.call('EXISTS', key) == 1 then
  return 'exists'
elseif mode == 'n' then
  abs = now + tonumber(ARGV[5])
  created = now
  ver = 1
else
  abs = tonumber(ARGV[5])
  created = ARGV[8]
  ver = tonumber(ARGV[9]) + 1
end
if ARGV[10] ~= '' and now > tonumber(ARGV[10]) then
  return 'stale'
end
if abs <= now then
  if mode == 'u' then
    redis.call('DEL', key)
  end
  return 'notfound'
end
local n = tonumber(ARGV[11])
if n > 0 then
  redis.call('HDEL', key, unpack(ARGV, 12, 11 + n))
end
if mode == 'u' then
  redis.call('HSET', key, '_v', ver, '_s', ARGV[1], '_t', now, unpack(ARGV, 12 + n, #ARGV))
else
  redis.call('HSET', key, '_v', ver, '_s', ARGV[1], '_t', now, '_c', created, '_a', abs, '_k', ARGV[6], unpack(ARGV, 12 + n, #ARGV))
end
local u = ARGV[7]
if u == '-' then
  redis.call('HDEL', key, '_u')
elseif u ~= '' then
  redis.call('HSET', key, '_u', string.sub(u, 2))
end
redis.call('PEXPIRE', key, math.min(tonumber(ARGV[4]), abs - now))
return string.format('ok:%d:%d:%d:%s', ver, now, abs, created)

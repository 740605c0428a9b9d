-- index_add: list a session in its user's index before the session is written with the
-- user (a login, or a rotation of a user's session), so that no session of the user
-- exists that the index does not know.
-- KEYS[1]  the user's index: a sorted set of session tags scored by absolute deadline
-- KEYS[2]  the index's logins: a hash, tag -> '<login>:<pending until>' (ms, this node's
--          clock): when the session's login was (kept through rotations: the cap's
--          order; later than every earlier login's, see '#'), and until when its entry
--          counts as a login in flight
-- ARGV[1]  the session's tag
-- ARGV[2]  the session's absolute deadline (ms since epoch), or '' for a new session
-- ARGV[3]  for a new session: its lifetime plus the pending window (ms), added to now
-- ARGV[4]  clock margin (ms): deadlines come from the session's node, so entries are
--          dropped only this long after their deadline by this node's clock
-- ARGV[5]  the pending window (ms)
-- ARGV[6]  '' for a login (its login time is now), or the tag of the session this one
--          is a rotation of (its login time is kept)
-- ARGV[7]  the cap on the user's sessions: 0, none; n > 0 (a login), refuse the login
--          when n sessions are counted already
-- ARGV[8…] (with a cap) tags the caller found to be no session of the user's: not
--          counted, unless their login is still in flight (its window, plus the clock
--          margin, not over); entries of one login (a rotation in flight) count once
-- Returns now (ms, Redis time): the save that follows must run within the pending window
-- after it; or -1 when the cap refused the login (nothing written).
local key, logins, tag = KEYS[1], KEYS[2], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local margin, window, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
-- Entries past their deadline go, with their logins.
local old = redis.call('ZRANGE', key, '-inf', now - margin, 'BYSCORE')
if #old > 0 then
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - margin)
  for i = 1, #old, 1000 do -- (Lua's unpack takes at most a few thousand values)
    redis.call('HDEL', logins, unpack(old, i, math.min(i + 999, #old)))
  end
end
local function field(v, n)
  local a, b = string.match(v or '', '^(%d+):(%d+)$')
  if n == 1 then
    return tonumber(a)
  end
  return tonumber(b)
end
if cap > 0 then
  -- Sessions are counted by login: a rotation's copy and the session it rotates (both
  -- live until the rotation forwards) keep one login time and count once. An entry whose
  -- login's window is open (with the clock margin: the save checks it on another node's
  -- clock) counts even when the caller found no session.
  local gone = {}
  for i = 8, #ARGV do
    gone[ARGV[i]] = true
  end
  local n, logins_seen = 0, {}
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local v = redis.call('HGET', logins, m)
    if m ~= tag and (not gone[m] or (field(v, 2) or 0) + margin >= now) then
      local l = field(v, 1)
      if not l or l == 0 then
        n = n + 1
      elseif not logins_seen[l] then
        logins_seen[l] = true
        n = n + 1
      end
    end
  end
  if n >= cap then
    return -1
  end
end
-- A login's time is made later than the last login's (field '#'), so that logins are
-- ordered as they ran here also within one millisecond.
local login = now
if ARGV[6] == '' then
  login = math.max(now, (tonumber(redis.call('HGET', logins, '#')) or 0) + 1)
  redis.call('HSET', logins, '#', login)
else
  login = field(redis.call('HGET', logins, ARGV[6]), 1) or 0
end
local score = tonumber(ARGV[2]) or (now + tonumber(ARGV[3]))
redis.call('ZADD', key, 'GT', score, tag)
redis.call('HSET', logins, tag, string.format('%d:%d', login, now + window))
local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
local at = math.max(tonumber(top[2]) + margin, now + 1)
redis.call('PEXPIREAT', key, at)
redis.call('PEXPIREAT', logins, at)
return now

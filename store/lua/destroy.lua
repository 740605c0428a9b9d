-- destroy: delete a session (or a rotated session's forward pointer).
-- KEYS[1]  the session hash
-- ARGV[1]  '' or a tombstone TTL (ms): leave a tombstone in the key's place, so that a
--          rotation in flight cannot write it afterwards
-- ARGV[2]  'd': a logout's tombstone ('_r' = 'd'), only where what it deleted had a
--          rotation mark, which it keeps ('_n': the session the key forwarded to, or a
--          rotation in flight was writing), so that a Destroy retried after a lost reply
--          finds where to go on, or a user, which it keeps ('_u'), so that the retry
--          takes the session out of the user's index; otherwise the key is just deleted. '': a plain
--          tombstone ('_r' = '1') when ARGV[1] is a TTL. Either tombstone keeps the saves
--          applied within its TTL ('_s'), and with them a logout leaves a tombstone even
--          without a mark: a retry of such a save is answered as applied (save.lua)
--          A forward pointer deleted with a TTL always leaves a tombstone, holding the
--          pointer's token in '_R' (see forward.lua).
-- ARGV[3]  'k': a forward pointer is left in place and answered {0, token, false, mark}
--          (a logout follows the chain to the session first and deletes the pointers
--          after it, so that one cut short has ended the session or nothing)
-- Returns {deleted (0/1), forward token or false, user or false, pending tag or false}:
-- the caller deletes the session a forward pointer led to, and the one a rotation in
-- flight was writing (pending), and drops the session from its user's index. A revoke's
-- tombstone is left in place (it is no session); a logout's tombstone answers
-- {0, false, its user, its mark}, so that a retried Destroy follows the chain again (the
-- tombstone of a rotation that changed the user, '_r' = its token, leads nowhere).
-- Foreign data is left untouched: {-1, reason, offending field name or false, false}; so
-- is a key of a newer format ('_F' other than '1'): {-2, its '_F', false, false}.
-- Ours are hashes of three shapes, whose fields are metadata ('_' and one letter, listed
-- below) or attributes ('.' and the name): a session (with all of '_v', '_c', '_a', '_t',
-- '_k'; maybe '_u', '_s', '_i', '_p' and a rotation's mark '_n'), a forward pointer
-- ('_f', maybe '_n') and a tombstone ('_r', maybe '_n'); any of them may hold reserved
-- fields a newer writer added ('_' and an uppercase letter). Anything else at the key is
-- foreign: another type, a hash with another field, or a hash of none of the three shapes.
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
local fwd, user, pending, saves = false, false, false, false
local typ = redis.call('TYPE', key).ok
if typ == 'hash' then
  local f = redis.call('HGET', key, '_F')
  if f and f ~= '1' then
    if string.match(f, '^[1-9]%d*$') and #f < 19 then
      return {-2, f, false, false}
    end
    return {-1, 'malformed format version', false, false}
  end
  local meta = {_v = true, _c = true, _a = true, _t = true, _u = true, _k = true,
    _s = true, _f = true, _n = true, _r = true, _i = true, _p = true}
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if not meta[name] and string.sub(name, 1, 1) ~= '.' and not string.match(name, '^_[A-Z]') then
      return {-1, 'unknown field', name, false}
    end
  end
  local m = redis.call('HMGET', key, '_f', '_u', '_r', '_n', '_v', '_c', '_a', '_t', '_k', '_s')
  if m[1] and not m[3] and ARGV[3] == 'k' then
    return {0, m[1], false, m[4] or false}
  end
  if m[3] then
    if m[3] == 'd' then
      -- A logout's tombstone (a retry): the user it kept, to take the session out of the
      -- user's index, and the mark, to follow the chain.
      return {0, false, m[2] or false, m[4] or false}
    end
    return {0, false, false, false}
  end
  if not m[1] and not (m[5] and m[6] and m[7] and m[8] and m[9]) then
    return {-1, 'missing session metadata', false, false}
  end
  fwd, user, pending = m[1] or false, m[2] or false, m[4] or false
  if m[10] and ARGV[1] ~= '' then
    -- The saves applied within the tombstone's TTL.
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local keep = {}
    for e in string.gmatch(m[10], '[^,]+') do
      local at = string.match(e, '^%x+:%d+:(%d+)$')
      if at and now - tonumber(at) <= tonumber(ARGV[1]) then
        keep[#keep + 1] = e
      end
    end
    if #keep > 0 then
      saves = table.concat(keep, ',')
    end
  end
elseif typ ~= 'none' then
  return {-1, 'not a hash but a ' .. typ, false, false}
end
local t
if ARGV[2] == 'd' then
  if pending then
    t = {'_r', 'd', '_n', pending}
  elseif saves or user then
    t = {'_r', 'd'}
  end
  if user then
    -- The user stays on a logout's tombstone: a Destroy retried after a lost reply takes
    -- the session out of the user's index as the first attempt would have.
    t[#t + 1], t[#t + 2] = '_u', user
  end
elseif ARGV[1] ~= '' then
  t = {'_r', '1'}
end
if fwd and ARGV[1] ~= '' then
  -- A forward pointer's tombstone keeps its token ('_R'), so that the rotation's forward
  -- step, retried after a lost reply, finds it applied (forward.lua) and does not tell
  -- its caller that a rotation other requests already followed never happened.
  t = t or {'_r', ARGV[2] == 'd' and 'd' or '1'}
  t[#t + 1], t[#t + 2] = '_R', fwd
end
local n = typ == 'hash' and 1 or 0
if t then
  if saves then
    t[#t + 1], t[#t + 2] = '_s', saves
  end
  replace(t) -- (a missing key: just written)
  redis.call('PEXPIRE', key, ARGV[1])
else
  redis.call('DEL', key)
end
return {n, fwd, user, pending}

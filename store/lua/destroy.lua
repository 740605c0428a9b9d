-- destroy: delete a session (or a rotated session's forward pointer).
-- KEYS[1]  the session hash
-- ARGV[1]  '' or a tombstone TTL (ms): leave a tombstone in the key's place, so that a
--          rotation in flight cannot write it afterwards
-- ARGV[2]  'd': a logout's tombstone ('_r' = 'd'), only where what it deleted had a
--          rotation mark, which it keeps ('_n': the session the key forwarded to, or a
--          rotation in flight was writing), so that a Destroy retried after a lost reply
--          finds where to go on; otherwise the key is just deleted. '': a plain
--          tombstone ('_r' = '1') when ARGV[1] is a TTL
-- Returns {deleted (0/1), forward token or false, user or false, pending tag or false}:
-- the caller deletes the session a forward pointer led to, and the one a rotation in
-- flight was writing (pending), and drops the session from its user's index. A revoke's
-- tombstone is left in place (it is no session); a logout's tombstone answers
-- {0, false, false, its mark}, so that a retried Destroy follows the chain again (the
-- tombstone of a rotation that changed the user, '_r' = its token, leads nowhere).
-- Foreign data is left untouched: {-1, reason, offending field name or false, false}.
-- Ours are hashes of three shapes, whose fields are metadata ('_' and one letter, listed
-- below) or attributes ('.' and the name): a session (with all of '_v', '_c', '_a', '_t',
-- '_k'; maybe '_u', '_s' and a rotation's mark '_n'), a forward pointer ('_f', maybe '_n')
-- and a tombstone ('_r', maybe '_n'). Anything else at the key is foreign: another type,
-- a hash with another field, or a hash of none of the three shapes.
local key = KEYS[1]
local fwd, user, pending = false, false, false
local typ = redis.call('TYPE', key).ok
if typ == 'hash' then
  local meta = {_v = true, _c = true, _a = true, _t = true, _u = true, _k = true,
    _s = true, _f = true, _n = true, _r = true}
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if not meta[name] and string.sub(name, 1, 1) ~= '.' then
      return {-1, 'unknown field', name, false}
    end
  end
  local m = redis.call('HMGET', key, '_f', '_u', '_r', '_n', '_v', '_c', '_a', '_t', '_k')
  if m[3] then
    if m[3] == 'd' and m[4] then
      return {0, false, false, m[4]}
    end
    return {0, false, false, false}
  end
  if not m[1] and not (m[5] and m[6] and m[7] and m[8] and m[9]) then
    return {-1, 'missing session metadata', false, false}
  end
  fwd, user, pending = m[1] or false, m[2] or false, m[4] or false
elseif typ ~= 'none' then
  return {-1, 'not a hash but a ' .. typ, false, false}
end
local n = redis.call('DEL', key)
if ARGV[2] == 'd' then
  if pending then
    redis.call('HSET', key, '_r', 'd', '_n', pending)
    redis.call('PEXPIRE', key, ARGV[1])
  end
elseif ARGV[1] ~= '' then
  redis.call('HSET', key, '_r', '1')
  redis.call('PEXPIRE', key, ARGV[1])
end
return {n, fwd, user, pending}

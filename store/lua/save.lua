-- save: apply the attributes a request changed, bump the version, recompute the TTL.
-- KEYS[1]   the session hash
-- KEYS[2]   the session's save history (optional: without it, no history is kept or read)
-- ARGV[1]   save id (16 hex digits), the same for every attempt of one Save: a retried
--           save that already applied is recognised and answered as it was the first time
-- ARGV[2]   expected version ('' = no check)
-- ARGV[3]   mode: 'n' new session, 'u' update, 'c' copy (rotation: a new key that keeps
--           the old session's created-at and absolute deadline)
-- ARGV[4]   the store's idle timeout (ms): the TTL of a session without one of its own
-- ARGV[5]   'n': absolute lifetime (ms); 'c': absolute deadline (ms since epoch); 'u': 0
-- ARGV[6]   codec name
-- ARGV[7]   user: '' unchanged, '+name' set, '-' clear
-- ARGV[8]   'c': created-at (ms since epoch); 'n' and 'u': 0
-- ARGV[9]   'c': version of the old session
-- ARGV[10]  '' or, when the save gives the session a user, the time (ms, Redis time)
--           until which the user's index entry written just before is trusted: a
--           later save is 'stale' and applies nothing (the caller lists it again), and
--           so is a save that gives the session a user it does not have without one
-- ARGV[11]  '' or the session's own idle timeout (ms), stored in '_i'; without one, a
--           session's stored '_i' applies, and without that ARGV[4]
-- ARGV[12]  '' or the session's own lifetime (ms): the deadline becomes created-at + it
--           (in every mode, instead of what ARGV[5] gives)
-- ARGV[13]  '' or the session's own cookie persistence, stored in '_p': '1' persistent,
--           '0' a session cookie (kept by the store for the middleware)
-- ARGV[14]  '1' on a retry of the save (an earlier attempt's reply was lost), else ''
-- ARGV[15]  number of attribute fields to delete (n), then n field names, then
--           field/value pairs to set
--
-- Retry window: '_s' holds the saves applied recently, oldest first, comma-separated,
-- each '<save id>:<version>:<now>' (what the save answered: created-at never changes under
-- one key, nor does the deadline unless ARGV[12] gives a lifetime: a dup is answered with
-- the current one). An entry is kept for 300 s (Redis time) and among the last 16
-- entries; within that window every retry is recognised, also when other saves landed in
-- between, and answered 'dup:…' with the fields it got the first time. A '_s' entry in
-- any other form is ignored: it takes one of the 16 places until it is the oldest (or
-- until a save whose ID '_s' contains reads every entry), and is then dropped; meanwhile
-- the saves before it leave '_s' one save earlier (for the history, if young). When the
-- session stops being one (revoked, destroyed, rotated: a tombstone or a forward pointer
-- takes its place), that key keeps '_s': a retry of a save that applied before is
-- answered 'dup:…' there too (the save did apply; what came after it is another
-- operation), with the deadline and created-at the caller sent ('n': computed as the first
-- attempt did; 'u': 0 and 0, the caller has them: they never change under one key, but
-- for ARGV[12], from which the caller computes the deadline).
--
-- Save history: an entry that leaves '_s' for the count (not the time) while it is younger
-- than 60 s moves, as it is, to the history hash KEYS[2], in the field of its version
-- modulo 1024 (so it keeps the last 1024 versions at most), which expires 60 s after the
-- last entry moved there. A retry (ARGV[14]) also looks its save ID up there, so a retry is
-- recognised after many saves landed in between (a busy session across a failover).
-- A version-checked retry that meets another version answers 'conflict:<version>:n' when
-- the key shows that another save made the version this one would have made (the entry
-- of that version in '_s' or the history, or a version below it): this save is not in
-- the session (it never applied, or a failover lost it).
--
-- Returns 'ok:<version>:<now>:<deadline>:<created>' when applied, 'dup:…' (the same
-- fields as the first time) when this save id had already applied, 'notfound' (missing,
-- expired, destroyed or rotated away or revoked: never resurrected), 'conflict:<version>'
-- (or 'conflict:<version>:n', above),
-- 'exists', 'revoked' (a new key where a revoke left a tombstone), 'stale',
-- 'corrupt:<reason>' (nothing written), 'codec:<stored codec>', 'format:<version>' (the key
-- is of a newer format, '_F' > 1: nothing read from it but that, nothing written).
-- Fields it does not set (reserved fields a newer writer added: '_' and an uppercase
-- letter) are left as they are.
local WINDOW, KEEP, HISTORY, HKEEP = 300000, 16, 60000, 1024
local key, hist = KEYS[1], KEYS[2]
local retry = ARGV[14] == '1'
local mode = ARGV[3]
local m = redis.call('HMGET', key, '_v', '_a', '_s', '_k', '_c', '_f', '_r', '_u', '_t', '_i', '_F')
if m[11] and m[11] ~= '1' then
  -- A newer format (FORMAT.md): refused whole.
  if string.match(m[11], '^[1-9]%d*$') and #m[11] < 19 then
    return 'format:' .. m[11]
  end
  return 'corrupt:malformed format version'
end
local ver, abs, sids, codec, created = m[1], m[2], m[3], m[4], m[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function int(s)
  return type(s) == 'string' and string.match(s, '^%-?%d+$') ~= nil and #s < 19
end
-- dup answers a save that applied before as version v at time at.
local function dup(v, at)
  if ver then
    return 'dup:' .. v .. ':' .. at .. ':' .. abs .. ':' .. created
  end
  local deadline, made = ARGV[5], ARGV[8]
  if mode == 'n' then
    local life = ARGV[12] ~= '' and ARGV[12] or ARGV[5]
    deadline, made = string.format('%d', tonumber(at) + tonumber(life)), at
  elseif mode == 'c' and ARGV[12] ~= '' then
    deadline = string.format('%d', tonumber(made) + tonumber(ARGV[12]))
  end
  return 'dup:' .. v .. ':' .. at .. ':' .. deadline .. ':' .. made
end
-- The recent saves are read entry by entry (recent) only where this save's ID is in
-- '_s' at all (a plain search, in C: a retry, or a chance match inside another entry).
-- Otherwise only the oldest entries are read (kept: the rest, as a string), to drop those
-- beyond the last KEEP − 1 and, from there on, those past the window or in another form.
-- An entry in another form further on is left in kept until it is the oldest: telling it
-- apart would mean matching a pattern against every entry (about a fifth of the script's
-- Redis time, even in one pass over the rest).
local recent, kept, fast = {}, nil, false
local starts, dropped = nil, 0 -- (fast) entries 1 to dropped leave '_s' for the count
if ver and sids and not string.find(sids, ARGV[1], 1, true) then
  fast = true
  local p = 1
  starts = {1}
  while true do
    local c = string.find(sids, ',', p, true)
    if not c then
      break
    end
    p = c + 1
    starts[#starts + 1] = p
  end
  local n = #starts
  local k = math.max(1, n - KEEP + 2)
  dropped = k - 1
  while k <= n do
    local e = string.sub(sids, starts[k], k < n and starts[k + 1] - 2 or -1)
    local at = string.match(e, '^%x+:%d+:(%d+)$')
    if at and now - tonumber(at) <= WINDOW then
      break
    end
    k = k + 1
  end
  if k <= n then
    kept = string.sub(sids, starts[k])
  end
end
if ver then
  -- A session: its metadata must be whole before anything is read from it or written.
  if not int(ver) then
    return 'corrupt:malformed version'
  elseif not int(abs) then
    return 'corrupt:malformed deadline'
  elseif not int(created) then
    return 'corrupt:malformed created-at'
  elseif not int(m[9]) then
    return 'corrupt:malformed last touch'
  elseif not codec then
    return 'corrupt:missing codec'
  elseif m[10] and not (int(m[10]) and tonumber(m[10]) > 0) then
    return 'corrupt:malformed idle timeout'
  end
  if sids and not fast then
    for e in string.gmatch(sids, '[^,]+') do
      local id, v, at = string.match(e, '^(%x+):(%d+):(%d+)$')
      if id == ARGV[1] then
        return dup(v, at)
      elseif e == ARGV[1] then
        -- written before entries carried their reply: answered with the current fields
        return 'dup:' .. ver .. ':' .. now .. ':' .. abs .. ':' .. created
      end
      if id and now - tonumber(at) <= WINDOW then
        recent[#recent + 1] = e
      end
    end
  end
elseif sids then
  -- No session any more (a tombstone, a forward pointer): the saves it had applied.
  for e in string.gmatch(sids, '[^,]+') do
    local id, v, at = string.match(e, '^(%x+):(%d+):(%d+)$')
    if id == ARGV[1] then
      return dup(v, at)
    end
  end
end
if retry and hist and (ver or sids) then
  -- A save that applied before may have left '_s' since: the history has it.
  local h = redis.call('HGETALL', hist)
  for i = 2, #h, 2 do
    local id, v, at = string.match(h[i], '^(%x+):(%d+):(%d+)$')
    if id == ARGV[1] then
      return dup(v, at)
    end
  end
end
if mode == 'u' then
  if not ver then
    if m[6] or m[7] or redis.call('EXISTS', key) == 0 then
      return 'notfound'
    end
    return 'corrupt:missing metadata'
  end
  if codec ~= ARGV[6] then
    return 'codec:' .. codec
  end
  if ARGV[2] ~= '' and ver ~= ARGV[2] then
    if retry and int(ARGV[2]) then
      -- Not this save's (that was answered 'dup' above): the version it would have made,
      -- if another save's entry shows it, or if the session is not there yet.
      local w = tonumber(ARGV[2]) + 1
      local want = string.format('%d', w)
      local e = hist and redis.call('HGET', hist, string.format('%d', w % HKEEP))
      if tonumber(ver) < w or (sids and string.find(sids, ':' .. want .. ':', 1, true))
          or (e and string.match(e, '^%x+:(%d+):%d+$') == want) then
        return 'conflict:' .. ver .. ':n'
      end
    end
    return 'conflict:' .. ver
  end
  -- Giving the session a user it does not have needs the index entry first.
  local want = ARGV[7]
  if ARGV[10] == '' and string.sub(want, 1, 1) == '+' and m[8] ~= string.sub(want, 2) then
    return 'stale'
  end
  abs = tonumber(abs)
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
if ARGV[12] ~= '' then
  abs = tonumber(created) + tonumber(ARGV[12])
end
if abs <= now then
  if mode == 'u' then
    redis.call('DEL', key)
  end
  return 'notfound'
end
local entry = string.format('%s:%d:%d', ARGV[1], ver, now)
local s
local moved = {}
-- record moves an entry that leaves '_s' for the count to the history, if it is young.
local function record(e)
  if not hist then
    return
  end
  local v, at = string.match(e, '^%x+:(%d+):(%d+)$')
  if v and now - tonumber(at) <= HISTORY then
    moved[#moved + 1] = string.format('%d', tonumber(v) % HKEEP)
    moved[#moved + 1] = e
  end
end
if fast then
  s = kept and kept .. ',' .. entry or entry
  for i = 1, dropped do
    record(string.sub(sids, starts[i], starts[i + 1] - 2))
  end
else
  local first = math.max(1, #recent - KEEP + 2)
  for i = 1, first - 1 do
    record(recent[i])
  end
  recent[#recent + 1] = entry
  s = table.concat(recent, ',', first)
end
local n = tonumber(ARGV[15])
if n > 0 then
  redis.call('HDEL', key, unpack(ARGV, 16, 15 + n))
end
if mode == 'u' then
  redis.call('HSET', key, '_v', ver, '_s', s, '_t', now, unpack(ARGV, 16 + n, #ARGV))
else
  redis.call('HSET', key, '_v', ver, '_s', s, '_t', now, '_c', created, '_a', abs, '_k', ARGV[6], unpack(ARGV, 16 + n, #ARGV))
end
-- The session's own expiry: its idle timeout, its lifetime's deadline, its persistence.
local idle = tonumber(ARGV[4])
if ARGV[11] ~= '' then
  idle = tonumber(ARGV[11])
  redis.call('HSET', key, '_i', ARGV[11])
elseif mode == 'u' and m[10] then
  idle = tonumber(m[10])
end
if mode == 'u' and ARGV[12] ~= '' then
  redis.call('HSET', key, '_a', abs)
end
if ARGV[13] ~= '' then
  redis.call('HSET', key, '_p', ARGV[13])
end
local u = ARGV[7]
if u == '-' then
  redis.call('HDEL', key, '_u')
elseif u ~= '' then
  redis.call('HSET', key, '_u', string.sub(u, 2))
end
redis.call('PEXPIRE', key, math.min(idle, abs - now))
-- (the history last: an error above, from arguments in another form, writes none of it)
if #moved > 0 then
  redis.call('HSET', hist, unpack(moved))
  redis.call('PEXPIRE', hist, HISTORY)
end
return string.format('ok:%d:%d:%d:%s', ver, now, abs, created)

-- index_read: the tags of a user's sessions, but for those past their absolute deadline
-- by more than the clock margin, which are dropped on the way (with their logins).
-- KEYS[1]  the user's index
-- KEYS[2]  the index's logins (see index_add)
-- ARGV[1]  clock margin (ms), as in index_add
-- ARGV[2]  '' the tags; 'l' each tag followed by its login time (ms) and whether its
--          login may be in flight ('1' or '0': its window, plus the clock margin, is not
--          over, since the save checks it on another node's clock), or by two empty
--          strings when the entry has no login recorded
-- Returns the tags, oldest deadline first (with 'l', as said).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZRANGE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'BYSCORE')
if #old > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
  for i = 1, #old, 1000 do -- (Lua's unpack takes at most a few thousand values)
    redis.call('HDEL', KEYS[2], unpack(old, i, math.min(i + 999, #old)))
  end
end
local tags = redis.call('ZRANGE', KEYS[1], 0, -1)
if ARGV[2] ~= 'l' or #tags == 0 then
  return tags
end
local meta = {}
for i = 1, #tags, 1000 do
  local part = redis.call('HMGET', KEYS[2], unpack(tags, i, math.min(i + 999, #tags)))
  for j, v in ipairs(part) do
    meta[i + j - 1] = v
  end
end
local out = {}
for i, tag in ipairs(tags) do
  local a, b = string.match(meta[i] or '', '^(%d+):(%d+)$')
  out[#out + 1] = tag
  if a then
    out[#out + 1] = a
    out[#out + 1] = tonumber(b) + tonumber(ARGV[1]) >= now and '1' or '0'
  else
    out[#out + 1] = ''
    out[#out + 1] = ''
  end
end
return out

-- index_remove: drop session tags from a user's index, or close their logins' pending
-- windows (the sessions are written: they count as what they are from now on).
-- KEYS[1]  the user's index
-- KEYS[2]  the index's logins (see index_add)
-- ARGV[1]  'r' drop the tags, 'w' close their pending windows
-- ARGV[2…] the tags
-- Returns, for each tag in order, 1 if it was listed ('r': this call removed it) or its
-- window was closed ('w'), else 0.
local out = {}
if ARGV[1] == 'r' then
  -- (in slices: Lua's unpack takes at most a few thousand values)
  for i = 2, #ARGV, 1000 do
    redis.call('HDEL', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  for i = 2, #ARGV do
    out[#out + 1] = redis.call('ZREM', KEYS[1], ARGV[i])
  end
  return out
end
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[2], ARGV[i])
  local login = v and string.match(v, '^(%d+):%d+$')
  if login then
    redis.call('HSET', KEYS[2], ARGV[i], login .. ':0')
  end
  out[#out + 1] = login and 1 or 0
end
return out

-- index_read: the tags of a user's sessions, but for those past their absolute deadline
-- by more than the clock margin, which are dropped on the way.
-- KEYS[1]  the user's index
-- ARGV[1]  clock margin (ms), as in index_add
-- Returns the tags, oldest deadline first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return redis.call('ZRANGE', KEYS[1], 0, -1)

-- index_read: the tags of a user's sessions whose absolute deadline has not passed;
-- entries past their deadline are dropped on the way.
-- KEYS[1]  the user's index
-- Returns the tags, oldest deadline first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)

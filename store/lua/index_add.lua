-- index_add: list a session in its user's index before the session is written with the
-- user (a login), so that no session of the user exists that the index does not know.
-- KEYS[1]  the user's index: a sorted set of session tags scored by absolute deadline
-- ARGV[1]  the session's tag
-- ARGV[2]  the session's absolute deadline (ms since epoch), or '' for a new session
-- ARGV[3]  for a new session: its lifetime plus the pending window (ms), added to now
-- ARGV[4]  clock margin (ms): deadlines come from the session's node, so entries are
--          dropped only this long after their deadline by this node's clock
-- Returns now (ms, Redis time): the save that follows must run within the pending window
-- after it.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local margin = tonumber(ARGV[4])
local score = tonumber(ARGV[2]) or (now + tonumber(ARGV[3]))
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - margin)
redis.call('ZADD', key, 'GT', score, ARGV[1])
local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', key, math.max(tonumber(top[2]) + margin, now + 1))
return now

-- scs_move: write a legacy scs session at its key in hasession's layout, unless the
-- session is there already or was deleted there since.
-- KEYS[1]  the session key, <prefix>{<token>}
-- KEYS[2]  its tombstone key (same hash tag)
-- ARGV[1]  the session's bytes, as scs encoded them
-- ARGV[2]  TTL (ms), more than 0
-- Returns {1} when written; {2, value} when the session key exists (value is what it
-- holds: another mover won, or the session was saved since); {3} when a tombstone says
-- the session was deleted. Only {1} writes.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {3}
end
local cur = redis.call('GET', KEYS[1])
if cur then
  return {2, cur}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}

-- legacy: read, or claim, one session another store wrote (a migration; see legacy.go).
-- KEYS[1]  the legacy key: a string, or a hash of sessions (ARGV[2] names the field)
-- KEYS[2]  the claim key, in KEYS[1]'s hash slot: the ID of the hasession session the
--          legacy session became, once one request or the import moved it
-- ARGV[1]  'r' read, or 'c' claim
-- ARGV[2]  the hash field; '' for a string key
-- ARGV[3]  (claim) the value read: the claim is made only if the session still holds it
-- ARGV[4]  (claim) the new session's ID
-- ARGV[5]  (claim) the claim's TTL (ms)
-- Replies: {1, id} moved already, to session id; {0} no such legacy session;
-- {2, type} the key is of another type (left untouched); read: {3, value, pttl};
-- claim: {3} claimed (the legacy session deleted), {4} the value changed since it was
-- read (nothing done).
local c = redis.call('GET', KEYS[2])
if c then
  return {1, c}
end
local field = ARGV[2]
local want = 'string'
if field ~= '' then
  want = 'hash'
end
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then
  return {0}
end
if t ~= want then
  return {2, t}
end
local v
if field == '' then
  v = redis.call('GET', KEYS[1])
else
  v = redis.call('HGET', KEYS[1], field)
end
if not v then
  return {0}
end
if ARGV[1] == 'r' then
  return {3, v, redis.call('PTTL', KEYS[1])}
end
if v ~= ARGV[3] then
  return {4}
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
if field == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HDEL', KEYS[1], field)
end
return {3}

-- compare_delete: delete a legacy key only if it still holds the bytes that were read,
-- so that a value written since (by a store still on the legacy layout) is not lost.
-- KEYS[1]  the legacy key
-- ARGV[1]  the bytes read
-- Returns 1 when deleted, 0 otherwise (also when the key is no longer a string).
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
  return 0
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

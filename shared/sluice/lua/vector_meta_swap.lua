-- vector_meta_swap.lua: compare-and-set of one vector index's metadata (a migration's steps).
--
-- KEYS[1]  ns:vindex:<ix>   string: JSON IndexMeta
-- ARGV[1]  the value the caller read and based its change on
-- ARGV[2]  the new value
--
-- Two admins migrating (or one migrating while another drops) cannot interleave their steps:
-- a change based on a value that is no longer there is refused. Returns 1 if set, 0 if refused.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1

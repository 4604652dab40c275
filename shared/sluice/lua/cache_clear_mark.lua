-- cache_clear_mark.lua: record that a cache (or one model in it) was cleared, per partition.
--
-- KEYS[1]  ns:cache-meta:<c>:cleared     hash "<scope>:<p>" -> version (padded entry id)
-- ARGV[1]  scope: "*" for the whole cache, <hl> for one model
-- ARGV[2..P+1]  the versions of the clear, one per partition p = 0..P-1, each reserved by the
--          caller from that partition's cache-fill stream (reserve_versions.lua), padded
--
-- cache_write.lua drops a fill whose version (an entry id of its partition's cache-fill stream)
-- is older than the mark of its partition, so a fill enqueued before clear() cannot reappear
-- after it, and a fill enqueued after it is kept: marks and fills of one partition are ids of
-- one stream, never clocks. A mark only moves forward. The unpartitioned fields of older
-- versions ("*", "<hl>": server clock times) are removed. Returns the number of marks raised.
local raised = 0
for i = 2, #ARGV do
  local field = ARGV[1] .. ':' .. (i - 2)
  local old = redis.call('HGET', KEYS[1], field)
  if not old or old < ARGV[i] then
    redis.call('HSET', KEYS[1], field, ARGV[i])
    raised = raised + 1
  end
end
redis.call('HDEL', KEYS[1], ARGV[1])
return raised

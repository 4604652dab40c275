-- cache_clear_mark.lua: record that a cache (or one model in it) was cleared now.
--
-- KEYS[1]  ns:cache-meta:<c>:cleared     hash "*" / <hl> -> version (padded server time in ms)
-- ARGV[1]  field: "*" for the whole cache, <hl> for one model
--
-- cache_write.lua drops fills whose version (entry id) is older than this mark, so a fill
-- enqueued before clear() cannot reappear after it. Ids share the server's clock in ms; a fill
-- enqueued in the same millisecond as the clear counts as concurrent and is kept. Returns the mark.
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ver = string.format('%018d-%010d', ms, 0)
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or old < ver then
  redis.call('HSET', KEYS[1], ARGV[1], ver)
end
return ver

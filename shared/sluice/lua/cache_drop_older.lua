-- cache_drop_older.lua: drop one LLM cache entry if it is older than a clear mark.
--
-- KEYS[1]  ns:cache:<c>:<hl>:<hp>   string "<version>:<generations JSON>"
-- ARGV[1]  the clear mark of the entry's partition (padded version)
--
-- On a Cluster the clear marks live in another slot than the entries, so a worker reads them
-- before it writes and again after: a clear marked in between (whose SCAN may have passed the
-- entry before it was written) is caught by the second read, and the entry is dropped here,
-- unless a write newer than the clear replaced it meanwhile. Returns 1 if dropped, else 0.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 30, 30) == ':' and string.sub(value, 1, 29) < ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

-- cache_drop_older.lua: drop one LLM cache entry if it is older than a clear mark.
--
-- KEYS[1]  ns:cache:<c>:<hl>:<hp>   string "<version>:<generations JSON>"
-- ARGV[1]  the clear mark of the entry's partition (padded version)
-- ARGV[2]  optional '1': also drop a value that is not a sluice entry (a clear's own sweep)
--
-- On a Cluster the clear marks live in another slot than the entries, so a worker reads them
-- before it writes and again after: a clear marked in between (whose SCAN may have passed the
-- entry before it was written) is caught by the second read, and the entry is dropped here,
-- unless a write newer than the clear replaced it meanwhile. A clear's SCAN sweep deletes through
-- this script too, so a fill enqueued after the clear and applied during the sweep survives it.
-- Returns 1 if dropped, else 0.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
  if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('UNLINK', KEYS[1])
    return 1
  end
  return 0
end
local value = redis.call('GET', KEYS[1])
local versioned = string.sub(value, 30, 30) == ':'
if (versioned and string.sub(value, 1, 29) < ARGV[1]) or (not versioned and ARGV[2] == '1') then
  redis.call('UNLINK', KEYS[1])
  return 1
end
return 0

-- cache_write.lua: store one LLM cache entry, versioned, with its TTL set in the same write.
--
-- KEYS[1]  ns:cache:<c>:<hl>:<hp>        string "<version>:<generations JSON>" (version: 29 chars)
-- KEYS[2]  ns:cache-meta:<c>:cleared     optional hash "*:<p>" / "<hl>:<p>" -> version of the
--                                        newest clear in partition p (absent on a Cluster: another
--                                        slot; ARGV[6] carries it)
-- KEYS[3]  ns:jobs:{cache-fill:p}        optional: the stream that versions this entry, when
--                                        ARGV[1] is "" (a write="sync" update on one server)
-- ARGV[1]  version: an entry id of the entry's cache-fill stream, zero-padded (lexical order =
--          id order); "" = take one from KEYS[3] now
-- ARGV[2]  TTL in ms ("0" = no TTL)
-- ARGV[3]  generations JSON
-- ARGV[4]  field of the whole cache's clear mark in this entry's partition ("*:<p>")
-- ARGV[5]  field of this model's clear mark in this entry's partition ("<hl>:<p>")
-- ARGV[6]  clear version read by the caller ("" = none)
--
-- Applies only if the version is at least the stored one (a redelivered job rewrites the same
-- value) and not older than a clear of the whole cache or of this model: a fill enqueued before
-- clear() and applied after it is dropped. Versions and marks are all ids of the one stream
-- that versions this entry, never a clock. Returns 1 if written, 0 if older than the entry,
-- -1 if older than a clear.
--@include stream_versions
local ver = ARGV[1]
if ver == '' then
  local m, s = string.match(next_versions(KEYS[3], 1)[1], '^(%d+)%-(%d+)$')
  ver = string.format('%018d-%010d', tonumber(m), tonumber(s))
end
local cleared = ARGV[6]
if #KEYS > 1 then
  local marks = redis.call('HMGET', KEYS[2], ARGV[4], ARGV[5])
  for _, m in ipairs(marks) do
    if m and m > cleared then cleared = m end
  end
end
if cleared ~= '' and ver < cleared then
  return -1
end
local old = redis.call('GET', KEYS[1])
if old and string.sub(old, 30, 30) == ':' then  -- a value not in our format is overwritten
  local oldver = string.sub(old, 1, 29)
  if string.find(oldver, '^%d+%-%d+$') and oldver > ver then
    return 0
  end
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ver .. ':' .. ARGV[3], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ver .. ':' .. ARGV[3])
end
return 1

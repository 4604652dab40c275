-- cache_write.lua: store one LLM cache entry, versioned, with its TTL set in the same write.
--
-- KEYS[1]  ns:cache:<c>:<hl>:<hp>        string "<version>:<generations JSON>" (version: 29 chars)
-- KEYS[2]  ns:cache-meta:<c>:cleared     optional hash "*" / <hl> -> version of the newest clear
--                                        (absent on a Cluster: another slot; ARGV[5] carries it)
-- ARGV[1]  version: the job's entry id, zero-padded (lexical order = id order); "" = server time
-- ARGV[2]  TTL in ms ("0" = no TTL)
-- ARGV[3]  generations JSON
-- ARGV[4]  <hl>, the field of this model in the cleared hash
-- ARGV[5]  clear version read by the caller ("" = none)
--
-- Applies only if the version is at least the stored one (a redelivered job rewrites the same
-- value) and not older than a clear of the whole cache or of this model: a fill enqueued before
-- clear() and applied after it is dropped. Returns 1 if written, 0 if older than the entry,
-- -1 if older than a clear.
local ver = ARGV[1]
if ver == '' then
  local t = redis.call('TIME')
  local us = tonumber(t[2])
  ver = string.format('%018d-%010d', tonumber(t[1]) * 1000 + math.floor(us / 1000), us % 1000)
end
local cleared = ARGV[5]
if #KEYS > 1 then
  local marks = redis.call('HMGET', KEYS[2], '*', ARGV[4])
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

#!lua flags=no-writes
-- job_state.lua: how far a consumer group has got with some entries of one stream (read-only).
--
-- KEYS[1]     job stream                     ns:jobs:{kind:p}
-- KEYS[2..]   dead markers of the entries asked about (ns:jobs:{kind:p}:dead:<id>); may be none
-- ARGV[1]     consumer group
-- ARGV[2]     lowest entry id of the pending range ("-": from the start)
-- ARGV[3]     highest entry id of the pending range
-- ARGV[4]     most pending entries to list
--
-- Returns {last-delivered id, pending entry ids in the range (at most ARGV[4]), the dead markers'
-- values (nil where none)}. With no stream or no such group yet the last-delivered id is nil and
-- nothing is pending: no worker has read the stream, so nothing is applied.
local dead = {}
if #KEYS > 1 then
  dead = redis.call('MGET', unpack(KEYS, 2))
end
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if groups.err then
  return {false, {}, dead}
end
local last = false
for _, g in ipairs(groups) do
  for k = 1, #g, 2 do
    if g[k] == 'name' and g[k + 1] == ARGV[1] then
      for j = 1, #g, 2 do
        if g[j] == 'last-delivered-id' then last = g[j + 1] end
      end
    end
  end
end
if not last then
  return {false, {}, dead}
end
local ids = {}
for _, entry in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))) do
  ids[#ids + 1] = entry[1]
end
return {last, ids, dead}

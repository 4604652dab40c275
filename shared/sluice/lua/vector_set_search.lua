#!lua flags=no-writes
-- vector_set_search.lua: VSIM on one shard's vector set plus the matching documents, in one round trip.
--
-- KEYS[1]  ns:vset:<ix>:g<n>:{t}        vector set
-- KEYS[2]  ns:vset:<ix>:g<n>:{t}:docs   hash: doc id -> <29-char version><JSON {"t": text, "m": metadata}>
-- ARGV[1]  FP32 query vector blob
-- ARGV[2]  COUNT (k)
-- ARGV[3]  EF (search candidates)
-- ARGV[4]  FILTER expression ("" = none)
-- ARGV[5]  EPSILON, the largest VSIM distance 1 - score ("" = none)
-- ARGV[6]  "1" to return each element's vector (VEMB), for MMR
--
-- Returns a flat array: id, score, doc value, vector (array of strings, empty unless asked) per hit.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local cmd = {'VSIM', KEYS[1], 'FP32', ARGV[1], 'WITHSCORES', 'COUNT', ARGV[2], 'EF', ARGV[3]}
if ARGV[4] ~= '' then
  table.insert(cmd, 'FILTER')
  table.insert(cmd, ARGV[4])
end
if ARGV[5] ~= '' then
  table.insert(cmd, 'EPSILON')
  table.insert(cmd, ARGV[5])
end
local found = redis.call(unpack(cmd))
local out = {}
for i = 1, #found, 2 do
  local id = found[i]
  table.insert(out, id)
  table.insert(out, found[i + 1])
  table.insert(out, redis.call('HGET', KEYS[2], id) or '')
  if ARGV[6] == '1' then
    table.insert(out, redis.call('VEMB', KEYS[1], id))
  else
    table.insert(out, {})
  end
end
return out

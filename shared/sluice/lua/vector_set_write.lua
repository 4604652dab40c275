-- vector_set_write.lua: apply one versioned upsert or delete of one document (Vector Sets storage).
--
-- KEYS[1]  ns:vset:<ix>:g<n>:{t}        vector set: element = doc id, attributes = filterable metadata (JSON)
-- KEYS[2]  ns:vset:<ix>:g<n>:{t}:docs   hash: doc id -> <version><JSON {"t": text, "m": metadata}>
-- KEYS[3]  ns:vset:<ix>:g<n>:{t}:tomb   hash: doc id -> version of the newest delete; field TTL ARGV[4] ms
-- ARGV[1]  version: the job's entry id, zero-padded to 29 characters (string order = id order)
-- ARGV[2]  "upsert" | "delete"
-- ARGV[3]  doc id
-- ARGV[4]  tombstone TTL in ms ("0" = keep)
-- ARGV[5..10] upsert: quantization (NOQUANT | Q8 | BIN), M, EF, FP32 vector blob, attributes JSON, doc JSON
--
-- Same rules as vector_hash_write.lua: apply only if newer than the stored document and than a
-- tombstone (an upsert may equal the tombstone: the same job's delete ran first). VADD runs
-- here, not with CAS from the client, because the version check and the insert must be atomic.
-- Returns 1 if applied, 0 if superseded.
local ver, op, id = ARGV[1], ARGV[2], ARGV[3]
local doc = redis.call('HGET', KEYS[2], id)
local cur = doc and string.sub(doc, 1, 29)
local tomb = redis.call('HGET', KEYS[3], id)
if op == 'delete' then
  if (cur and ver <= cur) or (tomb and ver <= tomb) then
    return 0
  end
  redis.call('VREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HSET', KEYS[3], id, ver)
  local ttl = tonumber(ARGV[4])
  if ttl > 0 then
    redis.call('HPEXPIRE', KEYS[3], ttl, 'FIELDS', 1, id)
  end
  return 1
end
if (cur and ver <= cur) or (tomb and ver < tomb) then
  return 0
end
redis.call('VADD', KEYS[1], 'FP32', ARGV[8], id, ARGV[5], 'M', ARGV[6], 'EF', ARGV[7], 'SETATTR', ARGV[9])
redis.call('HSET', KEYS[2], id, ver .. ARGV[10])
redis.call('HDEL', KEYS[3], id)
return 1

-- vector_hash_write.lua: apply one versioned upsert or delete of one document (RediSearch HASH storage).
--
-- KEYS[1]  ns:vec:<ix>:g<n>:{<id>}    hash: text, vector, metadata fields, _id, _meta, _v (indexed by RediSearch)
-- KEYS[2]  ns:vtomb:<ix>:g<n>:{<id>}  string: version of the newest delete (tombstone), expires after ARGV[3] ms
-- ARGV[1]  version: the job's entry id, zero-padded (string order = id order)
-- ARGV[2]  "upsert" | "delete"
-- ARGV[3]  tombstone TTL in ms ("0" = keep)
-- ARGV[4..] upsert: field, value pairs (without _v)
--
-- Apply only if newer: an upsert older than the stored document or than a tombstone is dropped,
-- so redelivery, parallel consumers and out-of-order processing never regress a document and a
-- late upsert never resurrects a deleted one. Within one job deletes run before upserts, so an
-- upsert may carry the tombstone's own version. Returns 1 if applied, 0 if superseded.
local ver, op = ARGV[1], ARGV[2]
local cur = redis.call('HGET', KEYS[1], '_v')
local tomb = redis.call('GET', KEYS[2])
if op == 'delete' then
  if (cur and ver <= cur) or (tomb and ver <= tomb) then
    return 0
  end
  redis.call('DEL', KEYS[1])
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    redis.call('SET', KEYS[2], ver, 'PX', ttl)
  else
    redis.call('SET', KEYS[2], ver)
  end
  return 1
end
if (cur and ver <= cur) or (tomb and ver < tomb) then
  return 0
end
-- DEL first: fields the new version lacks must not survive in the index (only what exists:
-- a new document costs one write here, the HNSW insert is costly enough)
if cur then
  redis.call('DEL', KEYS[1])
end
if tomb then
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], '_v', ver, unpack(ARGV, 4))
return 1

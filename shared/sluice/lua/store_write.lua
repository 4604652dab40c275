-- store_write.lua: apply one versioned put or delete of one LangGraph store item, once.
--
-- KEYS[1]  ns:st:{n}:items  hash item key -> "<version><record JSON>"; a field's TTL is the item's
--                           record = {"c": created ms, "u": updated ms, "t": ttl ms, "e": [vector
--                           elements], "v": value} (the value last, as the app encoded it)
-- KEYS[2]  ns:st:{n}:tomb   hash item key -> version of its delete; field TTL ARGV[5] ms
-- KEYS[3]  ns:st:{n}:vec    vector set, element "<item key>\31<field path>", attributes ARGV[8]
-- ARGV[1]  version: the job's entry id, zero-padded to 29 characters (string order = id order)
-- ARGV[2]  "put" | "delete"
-- ARGV[3]  item key
-- ARGV[4]  TTL ms of the item ("0" = none)
-- ARGV[5]  ms a delete's tombstone lives
-- ARGV[6]  the job's time (ms of its entry id): created (first put) and updated stamp
-- ARGV[7]  put: value JSON
-- ARGV[8]  put: attributes JSON (the value's top-level scalars, what VSIM FILTER reads)
-- ARGV[9]  put: quantization (NOQUANT | Q8)
-- ARGV[10..] put: pairs of field path, FP32 vector blob
--
-- Applies only if newer than the stored item and than its tombstone, so redelivery and reordering
-- never regress an item; a put's vectors replace the item's old ones. Each put also drops a few
-- vectors of items that expired (a field TTL leaves the item's vectors behind).
-- Returns {code, items left}: code 0 = superseded, 1 = applied.
local ver, op, key = ARGV[1], ARGV[2], ARGV[3]
local ttl, tomb_ms, now = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local V = 29

local tomb = redis.call('HGET', KEYS[2], key)
local cur = redis.call('HGET', KEYS[1], key)
if (tomb and ver <= tomb) or (cur and string.sub(cur, 1, V) >= ver) then
  return {0, redis.call('HLEN', KEYS[1])}
end
local old, created = {}, now
if cur then
  local record = cjson.decode(string.sub(cur, V + 1))
  if type(record.e) == 'table' then
    old = record.e
  end
  created = string.format('%d', record.c)
end

local function tombstone_ttl()
  -- hash field TTLs need Redis >= 7.4; below, the tombstones live ARGV[5] ms after the last delete
  -- (item TTLs need 7.4: the store refuses them on older servers)
  if redis.pcall('HPEXPIRE', KEYS[2], tomb_ms, 'FIELDS', 1, key)['err'] then
    redis.call('PEXPIRE', KEYS[2], tomb_ms)
  end
end

if op == 'delete' then
  for _, element in ipairs(old) do
    redis.call('VREM', KEYS[3], element)
  end
  redis.call('HDEL', KEYS[1], key)
  redis.call('HSET', KEYS[2], key, ver)
  tombstone_ttl()
  local left = redis.call('HLEN', KEYS[1])
  if left == 0 then
    redis.call('DEL', KEYS[3])
  end
  return {1, left}
end

local dims = nil
if redis.call('EXISTS', KEYS[3]) == 1 then
  dims = redis.call('VDIM', KEYS[3])
end
for i = 10, #ARGV, 2 do
  local n = #ARGV[i + 1] / 4
  if dims and n ~= dims then
    return redis.error_reply('ERR store_write.lua: a ' .. n .. '-dimension vector for a namespace of '
      .. dims .. '-dimension vectors; index every item of a namespace with one embedder')
  end
  dims = n
end
local new, quoted = {}, {}
for i = 10, #ARGV, 2 do
  local element = key .. '\31' .. ARGV[i]
  redis.call('VADD', KEYS[3], 'FP32', ARGV[i + 1], element, ARGV[9], 'SETATTR', ARGV[8])
  new[element] = true
  quoted[#quoted + 1] = cjson.encode(element)
end
for _, element in ipairs(old) do
  if not new[element] then
    redis.call('VREM', KEYS[3], element)
  end
end
local record = '{"c":' .. created .. ',"u":' .. now .. ',"t":' .. ttl .. ',"e":[' .. table.concat(quoted, ',')
  .. '],"v":' .. ARGV[7] .. '}'
redis.call('HSET', KEYS[1], key, ver .. record) -- an overwritten field loses its old TTL
redis.call('HDEL', KEYS[2], key)
if ttl > 0 then
  redis.call('HPEXPIRE', KEYS[1], ttl, 'FIELDS', 1, key)
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  for _, element in ipairs(redis.call('VRANDMEMBER', KEYS[3], 8)) do
    local owner = string.match(element, '^(.-)\31')
    if owner and redis.call('HEXISTS', KEYS[1], owner) == 0 then
      redis.call('VREM', KEYS[3], element)
    end
  end
end
return {1, redis.call('HLEN', KEYS[1])}

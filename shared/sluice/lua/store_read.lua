-- store_read.lua: read LangGraph store items of one namespace, refreshing their TTLs if asked.
--
-- KEYS[1]  ns:st:{n}:items  hash item key -> "<version><record JSON>" (see store_write.lua)
-- KEYS[2]  ns:st:{n}:vec    vector set, element "<item key>\31<field path>"
-- ARGV[1]  "get":  ARGV[3..] item keys
--          "list": ARGV[3] value filter (JSON; "" = none), ARGV[4] how many (newest updates first)
--          "knn":  ARGV[3] FP32 query vector, ARGV[4] how many items, ARGV[5] VSIM FILTER
--                  expression ("" = none), ARGV[6] EF (candidates explored)
-- ARGV[2]  "1" = refresh the TTL of every item returned (an item's TTL is in its record)
--
-- Returns flat triples {key, score ("" but for knn), stored record}; "get" keeps the order asked,
-- with an empty record for a missing item. The filter is part of the vector query (FILTER): a
-- filtered search finds as many items as match, up to the count asked. The only writes are TTL
-- refreshes (HPEXPIRE), so an app user may run it with PEXPIRE rights alone.
local mode, refresh = ARGV[1], ARGV[2] == '1'
local V = 29

local function ttl_of(stored)
  return tonumber(string.match(stored, '^{"c":%d+,"u":%d+,"t":(%d+)', V + 1)) or 0
end

local function touch(key, stored)
  if refresh then
    local ttl = ttl_of(stored)
    if ttl > 0 then
      redis.call('HPEXPIRE', KEYS[1], ttl, 'FIELDS', 1, key)
    end
  end
end

if mode == 'get' then
  local out = {}
  for i = 3, #ARGV do
    local stored = redis.call('HGET', KEYS[1], ARGV[i])
    out[#out + 1] = ARGV[i]
    out[#out + 1] = ''
    out[#out + 1] = stored or ''
    if stored then
      touch(ARGV[i], stored)
    end
  end
  return out
end

--@include json_same

local function operators(t)
  for k in pairs(t) do
    if type(k) == 'string' and string.sub(k, 1, 1) == '$' then
      return true
    end
  end
  return false
end

local function apply(value, op, arg)
  if op == '$eq' then
    return same(value, arg)
  elseif op == '$ne' then
    return not same(value, arg)
  end
  local a, b = tonumber(value), tonumber(arg)
  if a == nil or b == nil then
    return false
  end
  if op == '$gt' then
    return a > b
  elseif op == '$gte' then
    return a >= b
  elseif op == '$lt' then
    return a < b
  elseif op == '$lte' then
    return a <= b
  end
  return false
end

local function matches(value, filter) -- as LangGraph's InMemoryStore compares (JSONB-like)
  if type(filter) ~= 'table' then
    return same(value, filter)
  end
  if operators(filter) then
    for op, arg in pairs(filter) do
      if not apply(value, op, arg) then
        return false
      end
    end
    return true
  end
  if type(value) ~= 'table' then
    return false
  end
  if #filter > 0 then
    if #value ~= #filter then
      return false
    end
    for i = 1, #filter do
      if not matches(value[i], filter[i]) then
        return false
      end
    end
    return true
  end
  for k, v in pairs(filter) do
    if not matches(value[k], v) then
      return false
    end
  end
  return true
end

if mode == 'list' then
  local filter = nil
  if ARGV[3] ~= '' then
    filter = cjson.decode(ARGV[3])
  end
  local want = tonumber(ARGV[4])
  local found = {}
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local record = cjson.decode(string.sub(all[i + 1], V + 1))
    if not filter or matches(record.v, filter) then
      found[#found + 1] = {all[i], string.sub(all[i + 1], 1, V), all[i + 1]}
    end
  end
  table.sort(found, function(x, y) -- the newest write first (its version: time, then order)
    if x[2] ~= y[2] then
      return x[2] > y[2]
    end
    return x[1] < y[1]
  end)
  local out = {}
  for i = 1, math.min(want, #found) do
    out[#out + 1] = found[i][1]
    out[#out + 1] = ''
    out[#out + 1] = found[i][3]
    touch(found[i][1], found[i][3])
  end
  return out
end

if mode == 'knn' then
  local blob, want, expression, ef = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
  if want <= 0 or redis.call('EXISTS', KEYS[2]) == 0 then
    return {}
  end
  local count = want * 2 + 8
  while true do
    local args = {'VSIM', KEYS[2], 'FP32', blob, 'WITHSCORES', 'COUNT', count, 'EF', math.max(ef, count)}
    if expression ~= '' then
      args[#args + 1] = 'FILTER'
      args[#args + 1] = expression
      args[#args + 1] = 'FILTER-EF'
      args[#args + 1] = math.max(ef, count) * 10
    end
    local hits = redis.call(unpack(args))
    local out, seen = {}, {}
    for i = 1, #hits, 2 do
      local key = string.match(hits[i], '^(.-)\31')
      if key and not seen[key] then
        seen[key] = true
        local stored = redis.call('HGET', KEYS[1], key)
        if stored then -- an expired item's vectors stay until a write drops them: skip those
          out[#out + 1] = key
          out[#out + 1] = hits[i + 1]
          out[#out + 1] = stored
          if #out / 3 >= want then
            break
          end
        end
      end
    end
    if #out / 3 >= want or #hits / 2 < count or count >= 100000 then
      for i = 1, #out, 3 do
        touch(out[i], out[i + 2])
      end
      return out
    end
    count = count * 4
  end
end

return redis.error_reply('ERR store_read.lua: unknown mode ' .. tostring(mode))

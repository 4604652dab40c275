#!lua flags=no-writes
-- checkpoint_read.lua: checkpoints of one thread with their blobs and writes, in one call.
--
-- KEYS[1]  ns:cp:{t}:ckpts   zset, scores 0, member "<ns>\0<checkpoint id>\0<version><record JSON>"
-- KEYS[2]  ns:cp:{t}:writes  zset, scores 0, member "<ns>\0<checkpoint id>\0<task id>\0<idx>\0<version>..."
-- KEYS[3]  ns:cp:{t}:blobs   hash "<ns>\0<channel>\0<channel version>" -> "<version><type>\0<bytes>"
-- ARGV[1]  "get":    ARGV[2] ns, ARGV[3..] checkpoint ids
--          "latest": ARGV[2] ns
--          "list":   ARGV[2] ns, ARGV[3] "1" = every namespace, ARGV[4] before (a checkpoint id;
--                    "" = none), ARGV[5] cursor (a member: continue below it; "" = from the top),
--                    ARGV[6] how many to return at most, ARGV[7] metadata filter (JSON; "" = none),
--                    ARGV[8] how many checkpoints to look at at most (bounds the call's time)
--
-- Returns {cursor, entry, entry, ...}, newest first; entry = {member, blob values (in the order of
-- the record's "b" refs; nil = missing), write members}. The cursor is the last member looked at
-- when the listing stopped before the end ("" when it reached the end; always "" but for "list").
local mode = ARGV[1]

local function split(member)
  local a = string.find(member, '\0', 1, true)
  local b = string.find(member, '\0', a + 1, true)
  return string.sub(member, 1, a - 1), string.sub(member, a + 1, b - 1), string.sub(member, b + 30)
end

local function entry(member, ns, cid, record)
  local refs = record.b or {}
  local blobs = {}
  if #refs > 0 then
    local names = {}
    for i, ref in ipairs(refs) do
      names[i] = ns .. '\0' .. ref
    end
    blobs = redis.call('HMGET', KEYS[3], unpack(names))
  end
  local head = ns .. '\0' .. cid .. '\0'
  local writes = redis.call('ZRANGE', KEYS[2], '[' .. head, '(' .. ns .. '\0' .. cid .. '\1', 'BYLEX')
  return {member, blobs, writes}
end

--@include json_same

local function matches(record, filter)
  if not filter then
    return true
  end
  local metadata = record.m
  if type(metadata) ~= 'table' then
    metadata = {}
  end
  for k, v in pairs(filter) do
    if not same(metadata[k], v) then
      return false
    end
  end
  return true
end

if mode == 'get' then
  local ns, out = ARGV[2], {''}
  for i = 3, #ARGV do
    local cid = ARGV[i]
    local m = redis.call('ZRANGE', KEYS[1], '[' .. ns .. '\0' .. cid .. '\0', '(' .. ns .. '\0' .. cid .. '\1',
      'BYLEX', 'LIMIT', 0, 1)[1]
    if m then
      local _, _, json = split(m)
      out[#out + 1] = entry(m, ns, cid, cjson.decode(json))
    end
  end
  return out
end

if mode == 'latest' then
  local ns = ARGV[2]
  local m = redis.call('ZRANGE', KEYS[1], '(' .. ns .. '\1', '[' .. ns .. '\0', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1]
  if not m then
    return {''}
  end
  local _, cid, json = split(m)
  return {'', entry(m, ns, cid, cjson.decode(json))}
end

if mode == 'list' then
  local ns, every, before, cursor = ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[5]
  local want, budget = tonumber(ARGV[6]), tonumber(ARGV[8])
  local filter = nil
  if ARGV[7] ~= '' then
    filter = cjson.decode(ARGV[7])
  end
  local hi, lo = '+', '-'
  if not every then
    hi, lo = '(' .. ns .. '\1', '[' .. ns .. '\0'
    if before ~= '' then
      hi = '(' .. ns .. '\0' .. before
    end
  end
  if cursor ~= '' then
    hi = '(' .. cursor
  end
  local out = {''}
  local looked = 0
  while looked < budget do
    local chunk = redis.call('ZRANGE', KEYS[1], hi, lo, 'BYLEX', 'REV', 'LIMIT', 0, math.min(100, budget - looked))
    if #chunk == 0 then
      return out
    end
    for _, m in ipairs(chunk) do
      looked = looked + 1
      local mns, cid, json = split(m)
      if before == '' or cid < before then
        local record = cjson.decode(json)
        if matches(record, filter) then
          out[#out + 1] = entry(m, mns, cid, record)
          if #out - 1 >= want then
            out[1] = m
            return out
          end
        end
      end
      hi = '(' .. m
    end
  end
  out[1] = string.sub(hi, 2)
  return out
end

return redis.error_reply('ERR checkpoint_read.lua: unknown mode ' .. tostring(mode))

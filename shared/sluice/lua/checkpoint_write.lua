-- checkpoint_write.lua: apply one LangGraph checkpointer job to one thread, once.
--
-- KEYS[1]  ns:cp:{t}:meta    hash: cleared = version of the newest delete, deleted = set while a
--                            delete's tombstone is all that is left, pruned = version of the newest
--                            prune (keep_latest)
-- KEYS[2]  ns:cp:{t}:ckpts   zset, scores 0, member "<ns>\0<checkpoint id>\0<version><record JSON>"
-- KEYS[3]  ns:cp:{t}:writes  zset, scores 0, member
--                            "<ns>\0<checkpoint id>\0<task id>\0<idx>\0<version><channel>\0<task path>\0<type>\0<bytes>"
-- KEYS[4]  ns:cp:{t}:blobs   hash "<ns>\0<channel>\0<channel version>" -> "<version><type>\0<bytes>"
-- ARGV[1]  version: the job's entry id, zero-padded to 29 characters (lexical order = id order)
-- ARGV[2]  "put" | "writes" | "delete" | "prune"
-- ARGV[3]  TTL ms of the thread's keys, refreshed on every write ("0" = leave TTLs alone)
-- ARGV[4]  ms a delete's tombstone (the meta hash) lives
-- put:     ARGV[5] ns, ARGV[6] checkpoint id, ARGV[7] record JSON ({"b": blob refs, ...}),
--          ARGV[8..] pairs: "<channel>\0<channel version>", "<type>\0<bytes>"
-- writes:  ARGV[5] ns, ARGV[6] checkpoint id, ARGV[7] task id, ARGV[8] task path,
--          ARGV[9..] triples: idx, channel, "<type>\0<bytes>"
--
-- Every stored item carries the version of the job that wrote it, so the result does not depend on
-- the order jobs are applied in, nor on how often: a checkpoint or blob keeps the newest version's
-- value; a task's write keeps the oldest (LangGraph: a write is never overwritten), except special
-- writes (idx < 0: errors, interrupts), which keep the newest. A delete removes what is older than
-- itself and drops older jobs that arrive late; a prune keeps, per namespace, the newest checkpoint
-- older than itself, and a late older checkpoint takes that place only if it is newer.
-- Returns {code}: 0 = superseded (nothing written), 1 = applied, 2 = the thread is deleted.
local ver, op = ARGV[1], ARGV[2]
local ttl, tomb = tonumber(ARGV[3]), tonumber(ARGV[4])
local V = 29

local function fields(member, n)
  -- the first n NUL-separated fields of a member, then the rest
  local out, from = {}, 1
  for _ = 1, n do
    local at = string.find(member, '\0', from, true)
    out[#out + 1] = string.sub(member, from, at - 1)
    from = at + 1
  end
  out[#out + 1] = string.sub(member, from)
  return out
end

local function members_of(key, lo, hi)
  return redis.call('ZRANGE', key, lo, hi, 'BYLEX')
end

local function checkpoint_range(ns, cid)
  return '[' .. ns .. '\0' .. cid .. '\0', '(' .. ns .. '\0' .. cid .. '\1'
end

local function drop_checkpoint(member)
  local f = fields(member, 2)
  redis.call('ZREM', KEYS[2], member)
  local lo, hi = checkpoint_range(f[1], f[2])
  redis.call('ZREMRANGEBYLEX', KEYS[3], lo, hi)
end

local function remove(key, members)
  for first = 1, #members, 1000 do -- unpack() has a stack limit
    redis.call('ZREM', key, unpack(members, first, math.min(first + 999, #members)))
  end
end

local function refresh()
  if ttl > 0 then
    for i = 1, 4 do
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  elseif redis.call('HDEL', KEYS[1], 'deleted') == 1 then
    redis.call('PERSIST', KEYS[1]) -- the thread lives again: its meta is no longer a tombstone
  end
end

local cleared = redis.call('HGET', KEYS[1], 'cleared')
if cleared and ver <= cleared then
  return {0}
end
local pruned = redis.call('HGET', KEYS[1], 'pruned')

if op == 'put' then
  local ns, cid, record = ARGV[5], ARGV[6], ARGV[7]
  if pruned and ver < pruned then
    -- the prune kept the newest checkpoint older than itself: this one, if it is newer
    local lo, hi = '[' .. ns .. '\0', '(' .. ns .. '\1'
    for _, m in ipairs(redis.call('ZRANGE', KEYS[2], hi, lo, 'BYLEX', 'REV')) do
      local f = fields(m, 2)
      if string.sub(f[3], 1, V) < pruned then
        if f[2] > cid then
          return {0}
        elseif f[2] < cid then
          drop_checkpoint(m)
        end
        break
      end
    end
  end
  local lo, hi = checkpoint_range(ns, cid)
  local old = redis.call('ZRANGE', KEYS[2], lo, hi, 'BYLEX', 'LIMIT', 0, 1)[1]
  if old then
    if string.sub(fields(old, 2)[3], 1, V) >= ver then
      return {0}
    end
    redis.call('ZREM', KEYS[2], old)
  end
  redis.call('ZADD', KEYS[2], 0, ns .. '\0' .. cid .. '\0' .. ver .. record)
  for i = 8, #ARGV, 2 do
    local field = ns .. '\0' .. ARGV[i]
    local current = redis.call('HGET', KEYS[4], field)
    if not current or string.sub(current, 1, V) < ver then
      redis.call('HSET', KEYS[4], field, ver .. ARGV[i + 1])
    end
  end
  refresh()
  return {1}
end

if op == 'writes' then
  local ns, cid, task, path = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  if pruned and ver < pruned then
    local lo, hi = checkpoint_range(ns, cid)
    if not redis.call('ZRANGE', KEYS[2], lo, hi, 'BYLEX', 'LIMIT', 0, 1)[1] then
      return {0} -- its checkpoint was pruned after these writes were made
    end
  end
  for i = 9, #ARGV, 3 do
    local idx = ARGV[i]
    local head = ns .. '\0' .. cid .. '\0' .. task .. '\0' .. idx .. '\0'
    local tail = ns .. '\0' .. cid .. '\0' .. task .. '\0' .. idx .. '\1'
    local old = redis.call('ZRANGE', KEYS[3], '[' .. head, '(' .. tail, 'BYLEX', 'LIMIT', 0, 1)[1]
    local write = true
    if old then
      local was = string.sub(old, #head + 1, #head + V)
      if tonumber(idx) < 0 then
        write = was < ver
      else
        write = was > ver
      end
      if write then
        redis.call('ZREM', KEYS[3], old)
      end
    end
    if write then
      redis.call('ZADD', KEYS[3], 0, head .. ver .. ARGV[i + 1] .. '\0' .. path .. '\0' .. ARGV[i + 2])
    end
  end
  refresh()
  return {1}
end

local function version_of_checkpoint(m)
  return string.sub(fields(m, 2)[3], 1, V)
end

local function version_of_write(m)
  return string.sub(fields(m, 4)[5], 1, V)
end

if op == 'delete' then
  redis.call('HSET', KEYS[1], 'cleared', ver)
  local left = 0
  for _, spec in ipairs({{KEYS[2], version_of_checkpoint}, {KEYS[3], version_of_write}}) do
    local gone = {}
    for _, m in ipairs(members_of(spec[1], '-', '+')) do
      if spec[2](m) < ver then
        gone[#gone + 1] = m
      else
        left = left + 1
      end
    end
    remove(spec[1], gone)
  end
  local blobs = redis.call('HGETALL', KEYS[4])
  for i = 1, #blobs, 2 do
    if string.sub(blobs[i + 1], 1, V) < ver then
      redis.call('HDEL', KEYS[4], blobs[i])
    else
      left = left + 1
    end
  end
  if left == 0 then
    -- the meta hash stays as a tombstone: redelivered older jobs must still be dropped
    redis.call('HSET', KEYS[1], 'deleted', ver)
    redis.call('HDEL', KEYS[1], 'pruned')
    redis.call('PEXPIRE', KEYS[1], tomb)
    return {2}
  end
  refresh()
  return {1}
end

if op == 'prune' then
  if not pruned or pruned < ver then
    redis.call('HSET', KEYS[1], 'pruned', ver)
  end
  -- newest first within each namespace: the first one older than the prune is kept
  local all = members_of(KEYS[2], '-', '+')
  local seen, kept, refs, gone = {}, {}, {}, {}
  for i = #all, 1, -1 do
    local f = fields(all[i], 2)
    local older = string.sub(f[3], 1, V) < ver
    if older and seen[f[1]] then
      gone[#gone + 1] = all[i]
    else
      if older then
        seen[f[1]] = true
      end
      kept[f[1] .. '\0' .. f[2]] = true
      for _, ref in ipairs(cjson.decode(string.sub(f[3], V + 1)).b or {}) do
        refs[f[1] .. '\0' .. ref] = true
      end
    end
  end
  remove(KEYS[2], gone)
  gone = {}
  for _, m in ipairs(members_of(KEYS[3], '-', '+')) do
    local f = fields(m, 4)
    if string.sub(f[5], 1, V) < ver and not kept[f[1] .. '\0' .. f[2]] then
      gone[#gone + 1] = m
    end
  end
  remove(KEYS[3], gone)
  local blobs = redis.call('HGETALL', KEYS[4])
  for i = 1, #blobs, 2 do
    if string.sub(blobs[i + 1], 1, V) < ver and not refs[blobs[i]] then
      redis.call('HDEL', KEYS[4], blobs[i])
    end
  end
  refresh()
  return {1}
end

return redis.error_reply('ERR checkpoint_write.lua: unknown op ' .. tostring(op))

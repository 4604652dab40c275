-- checkpoint_write.lua: apply one LangGraph checkpointer job to one thread, once.
--
-- KEYS[1]  ns:cp:{t}:meta    hash: cleared = version of the newest delete, deleted = set while a
--                            delete's tombstone is all that is left, pruned = version of the newest
--                            prune (keep_latest), gc = of the newest run deletion, run:<id> = version
--                            of the deletion of run <id>
-- KEYS[2]  ns:cp:{t}:ckpts   zset, scores 0, member "<ns>\0<checkpoint id>\0<version><record JSON>"
-- KEYS[3]  ns:cp:{t}:writes  zset, scores 0, member
--                            "<ns>\0<checkpoint id>\0<task id>\0<idx>\0<version><channel>\0<task path>\0<type>\0<bytes>"
-- KEYS[4]  ns:cp:{t}:blobs   hash "<ns>\0<channel>\0<channel version>" -> "<version><type>\0<bytes>"
-- ARGV[1]  version: the job's entry id, zero-padded to 29 characters (lexical order = id order)
-- ARGV[2]  "put" | "writes" | "delete" | "prune" | "delete-runs"
-- ARGV[3]  TTL ms of the thread's keys, refreshed on every write ("0" = leave TTLs alone)
-- ARGV[4]  ms a delete's tombstone (the meta hash) lives
-- put:     ARGV[5] ns, ARGV[6] checkpoint id, ARGV[7] record JSON ({"b": blob refs, ...}),
--          ARGV[8] run id ("" = none), ARGV[9..] pairs: "<channel>\0<channel version>", "<type>\0<bytes>"
-- writes:  ARGV[5] ns, ARGV[6] checkpoint id, ARGV[7] task id, ARGV[8] task path,
--          ARGV[9..] triples: idx, channel, "<type>\0<bytes>"
-- delete-runs: ARGV[5..] run ids
--
-- Every stored item carries the version of the job that wrote it, so the result does not depend on
-- the order jobs are applied in, nor on how often: a checkpoint or blob keeps the newest version's
-- value; a task's write keeps the oldest (LangGraph: a write is never overwritten), except special
-- writes (idx < 0: errors, interrupts), which keep the newest. A delete removes what is older than
-- itself and drops older jobs that arrive late; a prune keeps, per namespace, the newest checkpoint
-- older than itself, and a late older checkpoint takes that place only if it is newer. A run
-- deletion removes that run's checkpoints older than itself, and drops its late ones.
-- Returns {code, run, run, ...}: code 0 = superseded (nothing written), 1 = applied, 2 = the thread
-- is deleted; the runs are those of which the thread holds no checkpoint any more (deletions).
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
  local ns, cid, record, run = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  if run ~= '' then
    local dropped = redis.call('HGET', KEYS[1], 'run:' .. run)
    if dropped and ver < dropped then
      return {0} -- its run was deleted after this checkpoint was made
    end
  end
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
  for i = 9, #ARGV, 2 do
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
  local gc = redis.call('HGET', KEYS[1], 'gc')
  if gc and (not pruned or pruned < gc) then
    pruned = gc
  end
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

local function run_of(record)
  local run = type(record.m) == 'table' and record.m.run_id or nil
  if type(run) == 'string' and run ~= '' then
    return run
  end
  return nil
end

-- What a deletion reports: the runs of removed checkpoints that no kept checkpoint has.
local function runs_gone(removed, kept)
  local out = {}
  for run in pairs(removed) do
    if not kept[run] then
      out[#out + 1] = run
    end
  end
  return out
end

-- Keep the checkpoints older than this job that `keep(ns, record, run)` says to keep (and every
-- newer one), with their writes and the blobs they read; remove the others, their writes and the
-- older blobs no kept checkpoint reads. `strict` (a delete) removes every older write and blob.
local function sweep(keep, strict)
  local kept, refs, gone, removed_runs, kept_runs = {}, {}, {}, {}, {}
  local all = members_of(KEYS[2], '-', '+')
  for i = #all, 1, -1 do -- newest first within each namespace
    local f = fields(all[i], 2)
    local version = string.sub(f[3], 1, V)
    local record = cjson.decode(string.sub(f[3], V + 1))
    local run = run_of(record)
    if version >= ver or keep(f[1], record, run) then
      kept[f[1] .. '\0' .. f[2]] = true
      for _, ref in ipairs(record.b or {}) do
        refs[f[1] .. '\0' .. ref] = true
      end
      if run then
        kept_runs[run] = true
      end
    else
      gone[#gone + 1] = all[i]
      if run then
        removed_runs[run] = true
      end
    end
  end
  remove(KEYS[2], gone)
  gone = {}
  for _, m in ipairs(members_of(KEYS[3], '-', '+')) do
    local f = fields(m, 4)
    if string.sub(f[5], 1, V) < ver and (strict or not kept[f[1] .. '\0' .. f[2]]) then
      gone[#gone + 1] = m
    end
  end
  remove(KEYS[3], gone)
  local blobs = redis.call('HGETALL', KEYS[4])
  for i = 1, #blobs, 2 do
    if string.sub(blobs[i + 1], 1, V) < ver and (strict or not refs[blobs[i]]) then
      redis.call('HDEL', KEYS[4], blobs[i])
    end
  end
  return runs_gone(removed_runs, kept_runs)
end

local function raise(field)
  local current = redis.call('HGET', KEYS[1], field)
  if not current or current < ver then
    redis.call('HSET', KEYS[1], field, ver)
  end
end

local function reply(code, runs)
  local out = {code}
  for _, run in ipairs(runs) do
    out[#out + 1] = run
  end
  return out
end

if op == 'delete' then
  redis.call('HSET', KEYS[1], 'cleared', ver)
  local runs = sweep(function()
    return false
  end, true)
  if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) == 0 then
    -- the meta hash stays as a tombstone: redelivered older jobs must still be dropped
    redis.call('HSET', KEYS[1], 'deleted', ver)
    redis.call('HDEL', KEYS[1], 'pruned')
    redis.call('PEXPIRE', KEYS[1], tomb)
    return reply(2, runs)
  end
  refresh()
  return reply(1, runs)
end

if op == 'prune' then
  raise('pruned')
  local seen = {}
  local runs = sweep(function(ns)
    if seen[ns] then
      return false
    end
    seen[ns] = true -- the newest checkpoint older than the prune, per namespace
    return true
  end, false)
  refresh()
  return reply(1, runs)
end

if op == 'delete-runs' then
  local doomed = {}
  for i = 5, #ARGV do
    doomed[ARGV[i]] = true
    raise('run:' .. ARGV[i])
  end
  raise('gc')
  local runs = sweep(function(_, _, run)
    return not (run and doomed[run])
  end, false)
  refresh()
  return reply(1, runs)
end

return redis.error_reply('ERR checkpoint_write.lua: unknown op ' .. tostring(op))

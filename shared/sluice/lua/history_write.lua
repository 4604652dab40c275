-- history_write.lua: apply one history job (append, clear or delete) to one session, once.
--
-- KEYS[1]  ns:history:{<session>}         zset, all scores 0, members "<version>:<nnnnnn>:<message json>"
--                                         ordered by member text = by version, then position in the job
-- KEYS[2]  ns:history:{<session>}:meta    hash: cleared = version of the newest clear or delete,
--                                         deleted = version of a delete that emptied the session,
--                                         floor = "<version>:<nnnnnn>" of the oldest message kept by trimming
-- KEYS[3]  ns:history:{<session>}:vdocs   hash "<version>:<nnnnnn>" -> semantic index name, for the
--                                         messages that have a vector (so that trims, clears and the
--                                         pruner of expired sessions can delete them); TTL = ttl + ARGV[5]
-- ARGV[1]  version: the job's entry id, zero-padded to 29 characters (lexical order = id order)
-- ARGV[2]  "append" | "clear" | "delete"
-- ARGV[3]  TTL ms for the session's keys, refreshed on every write ("0" = leave TTLs alone)
-- ARGV[4]  max messages kept ("0" = unbounded)
-- ARGV[5]  ms a delete's tombstone (the meta hash) lives; also the extra life of the vdocs hash
-- ARGV[6]  semantic index the new messages get vectors in ("" = none)
-- ARGV[7..] encoded messages (append)
--
-- Idempotent and order-independent: a redelivered append re-adds identical members (no-op); an
-- append older than the newest clear is dropped, and so are messages below the trimming floor;
-- a clear removes only what is older than itself, so an append applied early survives a late clear.
-- Returns {code, messages left, floor, index1, ref1, index2, ref2, ...}: code 0 = superseded
-- (nothing written), 1 = applied, 2 = the session was deleted; floor = the trimming floor ("" =
-- none: the caller indexes only new messages at or above it); the pairs name the vectors of the
-- messages this write removed (the caller deletes them).
local ver, op = ARGV[1], ARGV[2]
local ttl, max, tomb, index = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local REF = 36 -- #"<29-char version>:<nnnnnn>"

local cleared = redis.call('HGET', KEYS[2], 'cleared')
if cleared and ver <= cleared then
  return {0, redis.call('ZCARD', KEYS[1]), ''}
end

local removed = {}
local tracked = redis.call('EXISTS', KEYS[3]) == 1 or index ~= ''
local function forget(members)
  if not tracked then
    return
  end
  for first = 1, #members, 1000 do -- unpack() has a stack limit
    local refs = {}
    for i = first, math.min(first + 999, #members) do
      refs[#refs + 1] = string.sub(members[i], 1, REF)
    end
    local names = redis.call('HMGET', KEYS[3], unpack(refs))
    for i, ref in ipairs(refs) do
      if names[i] then
        removed[#removed + 1] = names[i]
        removed[#removed + 1] = ref
        redis.call('HDEL', KEYS[3], ref)
      end
    end
  end
end

local code = 1
if op == 'append' then
  local floor = redis.call('HGET', KEYS[2], 'floor')
  for i = 7, #ARGV do
    local ref = ver .. ':' .. string.format('%06d', i - 7)
    if not floor or ref >= floor then
      redis.call('ZADD', KEYS[1], 0, ref .. ':' .. ARGV[i])
      if index ~= '' then
        redis.call('HSET', KEYS[3], ref, index)
      end
    end
  end
  if redis.call('HDEL', KEYS[2], 'deleted') == 1 and ttl == 0 then
    redis.call('PERSIST', KEYS[2]) -- the session lives again: its meta is no longer a tombstone
  end
else
  redis.call('HSET', KEYS[2], 'cleared', ver)
  forget(redis.call('ZRANGE', KEYS[1], '-', '(' .. ver, 'BYLEX'))
  redis.call('ZREMRANGEBYLEX', KEYS[1], '-', '(' .. ver)
  if op == 'delete' and redis.call('ZCARD', KEYS[1]) == 0 then
    -- the meta hash stays as a tombstone: redelivered older appends must still be dropped
    redis.call('HSET', KEYS[2], 'deleted', ver)
    redis.call('HDEL', KEYS[2], 'floor')
    redis.call('PEXPIRE', KEYS[2], tomb)
    if redis.call('HLEN', KEYS[3]) == 0 then
      redis.call('DEL', KEYS[3])
    end
    code = 2
  end
end

if max > 0 and code == 1 then
  local over = redis.call('ZCARD', KEYS[1]) - max
  if over > 0 then
    forget(redis.call('ZRANGE', KEYS[1], 0, over - 1))
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
    local first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    redis.call('HSET', KEYS[2], 'floor', string.sub(first, 1, REF))
  end
end

if ttl > 0 and code == 1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl + tomb)
end

local out = {code, redis.call('ZCARD', KEYS[1]), redis.call('HGET', KEYS[2], 'floor') or ''}
for _, v in ipairs(removed) do
  out[#out + 1] = v
end
return out

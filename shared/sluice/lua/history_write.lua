-- history_write.lua: apply one history job (append or clear) to one session, once.
--
-- KEYS[1]  ns:history:{<session>}        zset, all scores 0, members "<version>:<nnnnnn>:<message json>"
--                                        ordered by member text = by version, then position in the job
-- KEYS[2]  ns:history:{<session>}:meta   hash: cleared = version of the newest clear
-- ARGV[1]  version: the job's entry id, zero-padded to fixed width (lexical order = id order)
-- ARGV[2]  "append" | "clear"
-- ARGV[3]  TTL ms for both keys, refreshed on every write ("0" = no TTL)
-- ARGV[4]  max messages kept ("0" = unbounded)
-- ARGV[5..] encoded messages (append)
--
-- Idempotent and order-independent: a redelivered append re-adds identical members (no-op); an
-- append older than the newest clear is dropped; a clear removes only what is older than itself.
-- Returns the number of messages in the session after the write.
local ver, op = ARGV[1], ARGV[2]
local ttl, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local cleared = redis.call('HGET', KEYS[2], 'cleared')
if cleared and ver <= cleared then
  return redis.call('ZCARD', KEYS[1])
end
if op == 'clear' then
  redis.call('HSET', KEYS[2], 'cleared', ver)
  redis.call('ZREMRANGEBYLEX', KEYS[1], '-', '(' .. ver)
else
  for i = 5, #ARGV do
    redis.call('ZADD', KEYS[1], 0, ver .. ':' .. string.format('%06d', i - 5) .. ':' .. ARGV[i])
  end
end
if max > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(max + 1))
end
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return redis.call('ZCARD', KEYS[1])

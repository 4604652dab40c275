-- enqueue.lua: append jobs to one partition stream, at most once per job id, unless the
-- stream's backlog would exceed the limit.
--
-- KEYS[1]  job stream                    ns:jobs:{kind:p}              stream
-- KEYS[2]  dedupe bucket (now)           ns:jobs:{kind:p}:enq:<bucket>  hash job id -> entry id, TTL 2 windows
-- KEYS[3]  dedupe bucket (previous)      ns:jobs:{kind:p}:enq:<bucket-1>
-- ARGV[1]  max backlog
-- ARGV[2]  field name ("job")
-- ARGV[3]  dedupe window, ms ("0" = off)
-- ARGV[4]  "1" on a resend: look the job ids up first; "0" on a first send (fresh random ids)
-- ARGV[5..] pairs: job id, encoded job
--
-- Returns the entry ids in order (on a resend, the earlier id of a job already held, so a
-- producer may resend after an ambiguous failure without adding the job twice), or the error
-- "QUEUEFULL <backlog> <limit>". Workers delete acknowledged entries, so XLEN counts unprocessed
-- jobs only: refusing here bounds the backlog without ever trimming an unprocessed entry.
local limit, field, window, resend = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local ids, fresh = {}, 0
for i = 5, #ARGV, 2 do
  local seen = false
  if resend and window > 0 then
    seen = redis.call('HGET', KEYS[2], ARGV[i]) or redis.call('HGET', KEYS[3], ARGV[i])
  end
  ids[#ids + 1] = seen
  if not seen then fresh = fresh + 1 end
end
local backlog = redis.call('XLEN', KEYS[1])
if fresh > 0 and backlog + fresh > limit then
  return redis.error_reply('QUEUEFULL ' .. backlog .. ' ' .. limit)
end
local remembered = {}
local k = 0
for i = 5, #ARGV, 2 do
  k = k + 1
  if not ids[k] then
    ids[k] = redis.call('XADD', KEYS[1], '*', field, ARGV[i + 1])
    remembered[#remembered + 1] = ARGV[i]
    remembered[#remembered + 1] = ids[k]
  end
end
if window > 0 and #remembered > 0 then
  for first = 1, #remembered, 400 do
    redis.call('HSET', KEYS[2], unpack(remembered, first, math.min(first + 399, #remembered)))
  end
  redis.call('PEXPIRE', KEYS[2], 2 * window)
end
return ids

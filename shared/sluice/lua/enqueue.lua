-- enqueue.lua: append jobs to one partition stream, at most once per job id, unless the
-- stream's backlog would exceed the limit.
--
-- KEYS[1]  job stream                    ns:jobs:{kind:p}              stream
-- KEYS[2]  dedupe bucket (now)           ns:jobs:{kind:p}:enq:<bucket>  hash job id -> entry id, TTL 2 windows
-- KEYS[3]  dedupe bucket (previous)      ns:jobs:{kind:p}:enq:<bucket-1>
-- KEYS[4..] tracked calls only, one per job in order: the pending set of the job's target key
--          ns:jobs:{kind:p}:pend:<digest>  set of entry ids, TTL ARGV[5] after the last enqueue
-- ARGV[1]  max backlog
-- ARGV[2]  field name ("job")
-- ARGV[3]  dedupe window, ms ("0" = off)
-- ARGV[4]  "1" on a resend: look the job ids up first; "0" on a first send (fresh random ids)
-- ARGV[5]  ms a pending set lives after its last enqueue (tracked calls)
-- ARGV[6..] pairs: job id, encoded job
--
-- A tracked job's entry id joins its pending set in the same step as the XADD, so any process
-- that reads the set sees every tracked job Redis has accepted for that key and not yet applied
-- (the worker removes the id after the write: sluice.queue.pending).
-- Returns the entry ids in order (on a resend, the earlier id of a job already held, so a
-- producer may resend after an ambiguous failure without adding the job twice), or the error
-- "QUEUEFULL <backlog> <limit>". Workers delete acknowledged entries, so XLEN counts unprocessed
-- jobs only: refusing here bounds the backlog without ever trimming an unprocessed entry.
local limit, field, window, resend = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local tracked, pending_ttl = #KEYS > 3, tonumber(ARGV[5])
local ids, fresh = {}, 0
for i = 6, #ARGV, 2 do
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
for i = 6, #ARGV, 2 do
  k = k + 1
  if not ids[k] then
    ids[k] = redis.call('XADD', KEYS[1], '*', field, ARGV[i + 1])
    remembered[#remembered + 1] = ARGV[i]
    remembered[#remembered + 1] = ids[k]
    if tracked then
      redis.call('SADD', KEYS[3 + k], ids[k])
      redis.call('PEXPIRE', KEYS[3 + k], pending_ttl)
    end
  end
end
if window > 0 and #remembered > 0 then
  for first = 1, #remembered, 400 do
    redis.call('HSET', KEYS[2], unpack(remembered, first, math.min(first + 399, #remembered)))
  end
  redis.call('PEXPIRE', KEYS[2], 2 * window)
end
return ids

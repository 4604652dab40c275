-- enqueue.lua: append jobs to one partition stream, at most once per job id, in groups (one
-- group per producer call sharing this script call); a group that would take the stream's
-- backlog past the limit is refused as a whole, the others go on.
--
-- KEYS[1]  job stream                    ns:jobs:{kind:p}              stream
-- KEYS[2]  dedupe bucket (now)           ns:jobs:{kind:p}:enq:<bucket>  hash job id -> entry id, TTL 2 windows
-- KEYS[3]  dedupe bucket (previous)      ns:jobs:{kind:p}:enq:<bucket-1>
-- KEYS[4..] one per job of the tracked groups, in order: the pending set of the job's target key
--          ns:jobs:{kind:p}:pend:<digest>  set of entry ids, TTL ARGV[4] after the last enqueue
-- ARGV[1]  max backlog
-- ARGV[2]  field name ("job")
-- ARGV[3]  dedupe window, ms ("0" = off)
-- ARGV[4]  ms a pending set lives after its last enqueue (tracked groups)
-- ARGV[5..] groups, each: job count n, flags (1 = resend: look the job ids up first; 2 = tracked),
--          then n pairs: job id, encoded job
--
-- A first send carries fresh random ids, so it skips the lookups: one XLEN, the XADDs and one
-- HSET + PEXPIRE for the whole call. A tracked job's entry id joins its pending set in the same
-- step as the XADD, so any process that reads the set sees every tracked job Redis has accepted
-- for that key and not yet applied (the worker removes the id after the write: sluice.queue.pending).
-- Returns one reply per group, in order: the entry ids (on a resend, the earlier id of a job
-- already held, so a producer may resend after an ambiguous failure without adding the job
-- twice), or the string "QUEUEFULL <backlog> <limit>" when the group was refused. Workers
-- delete acknowledged entries, so XLEN counts unprocessed jobs only: refusing here bounds the
-- backlog without ever trimming an unprocessed entry.
local limit, field, window, pending_ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local backlog = redis.call('XLEN', KEYS[1])
local out, remembered = {}, {}
local i, pend = 5, 3
while i <= #ARGV do
  local n, flags = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local resend, tracked = flags % 2 == 1, flags >= 2
  local first, ids, fresh = i + 2, {}, 0
  for k = 1, n do
    local seen = false
    if resend and window > 0 then
      local id = ARGV[first + 2 * k - 2]
      seen = redis.call('HGET', KEYS[2], id) or redis.call('HGET', KEYS[3], id)
    end
    ids[k] = seen
    if not seen then fresh = fresh + 1 end
  end
  if fresh > 0 and backlog + fresh > limit then
    out[#out + 1] = 'QUEUEFULL ' .. backlog .. ' ' .. limit
    if tracked then pend = pend + n end
  else
    for k = 1, n do
      if tracked then pend = pend + 1 end
      if not ids[k] then
        local at = first + 2 * k - 2
        ids[k] = redis.call('XADD', KEYS[1], '*', field, ARGV[at + 1])
        remembered[#remembered + 1] = ARGV[at]
        remembered[#remembered + 1] = ids[k]
        if tracked then
          redis.call('SADD', KEYS[pend], ids[k])
          redis.call('PEXPIRE', KEYS[pend], pending_ttl)
        end
      end
    end
    backlog = backlog + fresh
    out[#out + 1] = ids
  end
  i = first + 2 * n
end
if window > 0 and #remembered > 0 then
  for first = 1, #remembered, 400 do
    redis.call('HSET', KEYS[2], unpack(remembered, first, math.min(first + 399, #remembered)))
  end
  redis.call('PEXPIRE', KEYS[2], 2 * window)
end
return out

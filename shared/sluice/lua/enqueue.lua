-- enqueue.lua: append jobs to one partition stream unless its backlog would exceed the limit.
--
-- KEYS[1]  job stream            ns:jobs:{kind:p}   (stream; entries deleted only after XACK)
-- ARGV[1]  max backlog           integer
-- ARGV[2]  field name            "job"
-- ARGV[3..] encoded jobs          one entry each, in order
--
-- Returns the new entry ids in order, or the error "QUEUEFULL <backlog> <limit>".
-- Acknowledged entries are deleted by the workers, so XLEN counts unprocessed jobs only:
-- refusing here bounds the backlog without ever trimming an unprocessed entry.
local limit = tonumber(ARGV[1])
local n = #ARGV - 2
local backlog = redis.call('XLEN', KEYS[1])
if backlog + n > limit then
  return redis.error_reply('QUEUEFULL ' .. backlog .. ' ' .. limit)
end
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[i])
end
return ids

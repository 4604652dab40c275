#!lua flags=allow-oom
-- ack.lua: finish entries of one job stream: acknowledge, copy the dead ones to the stream's
-- dead-letter stream, leave signals for waiters, delete what every consumer group has acked.
--
-- KEYS[1]      job stream                    ns:jobs:{kind:p}
-- KEYS[2]      its dead-letter stream        ns:jobs:{kind:p}:dlq   (same hash tag: one slot)
-- KEYS[3..]    per entry, in ARGV order, the keys its flags need (same hash tag as the stream):
--              when dead:   ns:jobs:{kind:p}:dead:<id>   string, TTL ARGV[4], read by wait()
--              when dead with "p": the pending set of the job's target key
--                           ns:jobs:{kind:p}:pend:<digest>, where a tracked job's id becomes
--                           "dead:<id>" (sluice.queue.pending: other readers stop waiting for it)
--              when notify: ns:jobs:{kind:p}:done:<id>   list, TTL ARGV[3], read by wait() (BLPOP)
-- ARGV[1]      group
-- ARGV[2]      "xackdel" (Redis >= 8.2) or "xack" (XACK, then XDEL where every group has acked)
-- ARGV[3]      signal TTL, ms
-- ARGV[4]      dead-marker TTL, ms
-- ARGV[5]      dead-letter stream cap (approximate MAXLEN)
-- ARGV[6]      now, ms (the dead letter's "at")
-- ARGV[7..]    5-tuples: entry id, flags ("" or any of "d" dead, "p" with "d": mark it dead in
--              the pending set, "n" notify, in that order), reason, kind, attempts
--
-- Everything about one entry happens in this one script, and only if this call acknowledged it
-- (XACK / XACKDEL found it pending): an entry finished twice (a redelivery racing a slow first run, or a resend
-- after a lost reply) is dead-lettered and signalled once. allow-oom: finishing frees memory, and
-- a full Redis must not keep finished work pending. Returns the number of entries acknowledged.
local stream, dlq, group, mode = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local signal_ttl, dead_ttl, dlq_cap, now = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]

-- Other groups on this stream: an entry is deleted only once every group has acknowledged it.
local others = {}
if mode ~= 'xackdel' then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] ~= group then others[#others + 1] = info end
  end
end

local function older_or_equal(a, b)  -- stream ids "ms-seq"
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as <= bs)
end

local function acked_by_all_others(id)
  for _, g in ipairs(others) do
    if not older_or_equal(id, g['last-delivered-id']) then return false end
    if #redis.call('XPENDING', stream, g['name'], id, id, 1) > 0 then return false end
  end
  return true
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return ''
end

-- Entries with no flags and no other group (the common case) are finished in bulk; the others one
-- by one, so that only the call that acknowledged an entry writes its dead letter and signal.
local acked, k, plain = 0, 3, {}
for i = 7, #ARGV, 5 do
  local id, flags, reason, kind, attempts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local dead = string.find(flags, 'd', 1, true) ~= nil
  local notify = string.find(flags, 'n', 1, true) ~= nil
  local marker, pend, signal
  if dead then marker = KEYS[k]; k = k + 1 end
  if dead and string.find(flags, 'p', 1, true) then pend = KEYS[k]; k = k + 1 end
  if notify then signal = KEYS[k]; k = k + 1 end
  if not dead and not notify and #others == 0 then
    plain[#plain + 1] = id
  else
    local entry = dead and redis.call('XRANGE', stream, id, id) or nil
    local done
    if mode == 'xackdel' then  -- 1: acked and deleted; 2: acked, kept for other groups; -1: not ours
      local code = redis.call('XACKDEL', stream, group, 'ACKED', 'IDS', 1, id)[1]
      done = code == 1 or code == 2
    else
      done = redis.call('XACK', stream, group, id) == 1
      if done and (#others == 0 or acked_by_all_others(id)) then redis.call('XDEL', stream, id) end
    end
    if done then
      acked = acked + 1
      if dead then
        local job = entry[1] and field(entry[1][2], 'job') or ''
        redis.call('XADD', dlq, 'MAXLEN', '~', dlq_cap, '*', 'stream', stream, 'entry_id', id,
          'kind', kind, 'error', reason, 'attempts', attempts, 'at', now, 'job', job)
        redis.call('SET', marker, reason, 'PX', dead_ttl)
        -- a tracked job: its id gives way to "dead:<id>" (added first, so the set, and its TTL,
        -- never lapse in between); an untracked one is not in the set and adds nothing
        if pend and redis.call('SISMEMBER', pend, id) == 1 then
          redis.call('SADD', pend, 'dead:' .. id)
          redis.call('SREM', pend, id)
        end
      end
      if notify then
        redis.call('RPUSH', signal, dead and 'dead' or 'ok')
        redis.call('PEXPIRE', signal, signal_ttl)
      end
    end
  end
end
for first = 1, #plain, 500 do
  local chunk = {unpack(plain, first, math.min(first + 499, #plain))}
  if mode == 'xackdel' then
    for _, code in ipairs(redis.call('XACKDEL', stream, group, 'ACKED', 'IDS', #chunk, unpack(chunk))) do
      if code == 1 or code == 2 then acked = acked + 1 end
    end
  else
    acked = acked + redis.call('XACK', stream, group, unpack(chunk))
    redis.call('XDEL', stream, unpack(chunk))
  end
end
return acked

-- reclaim.lua: claim idle entries of one job stream, with the exact delivery count of each.
--
-- KEYS[1]  job stream                    ns:jobs:{kind:p}
-- ARGV[1]  group
-- ARGV[2]  consumer that takes them
-- ARGV[3]  min idle, ms
-- ARGV[4]  cursor (XAUTOCLAIM start id; "0-0" starts a scan of the pending list)
-- ARGV[5]  count
-- ARGV[6]  deadline, server ms ("0" = none): after it the caller has stopped waiting for the reply
--
-- Returns {next cursor, {{id, fields, times delivered}, ...}, server ms}. The counts are read in
-- the same script as the claim, so they are exact: XPENDING by id range and consumer could miss
-- entries (and a missing count must never pass for "delivered once").
--
-- The deadline: a call sent while Redis was stopped or unreachable is still executed when the
-- server resumes, long after its caller gave up. Each such stale claim would count a delivery no
-- worker made, so a long outage would make healthy jobs look like poison; past its deadline the
-- script claims nothing.
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[6])
if deadline > 0 and now > deadline then
  return {ARGV[4], {}, now}
end
local reply = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for _, entry in ipairs(reply[2]) do
  local id, fields = entry[1], entry[2]
  if fields then
    local p = redis.call('XPENDING', stream, group, id, id, 1)
    out[#out + 1] = {id, fields, p[1] and p[1][4] or -1}
  end
end
return {reply[1], out, now}

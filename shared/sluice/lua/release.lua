-- release.lua: hand entries this consumer holds back to the group, claimable after a pause.
--
-- KEYS[1]  job stream                    ns:jobs:{kind:p}
-- ARGV[1]  group
-- ARGV[2]  consumer that holds them
-- ARGV[3..] triples: entry id, idle to set (ms), give-back count
--
-- idle = visibility timeout - pause: any consumer's reclaim takes the entry after the pause.
-- give-back count > 0: the attempt failed because Redis was unreachable, full or reconfiguring,
-- not because of the job, so its delivery is not counted (RETRYCOUNT count - 1) — but only if the
-- count is still the one this consumer saw, so a resent call never gives back twice. An entry
-- another consumer has claimed meanwhile is left alone. Returns the number of entries released.
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local released = 0
for i = 3, #ARGV, 3 do
  local id, idle, give = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] and p[1][2] == consumer then
    if give > 0 and tonumber(p[1][4]) == give then
      redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', idle, 'RETRYCOUNT', give - 1, 'JUSTID')
    else
      redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', idle, 'JUSTID')
    end
    released = released + 1
  end
end
return released

-- ack.lua: acknowledge processed entries, delete them, and leave signals for waiters.
--
-- KEYS[1]      job stream                    ns:jobs:{kind:p}
-- KEYS[2..]    per entry, in ARGV order, the keys its flags need (same hash tag as the stream):
--              when dead:   ns:jobs:{kind:p}:dead:<id>   string, TTL ARGV[4], read by wait()
--              when notify: ns:jobs:{kind:p}:done:<id>   list, TTL ARGV[3], read by wait() (BLPOP)
-- ARGV[1]      group
-- ARGV[2]      "xackdel" (Redis >= 8.2) or "xack" (XACK then XDEL)
-- ARGV[3]      signal TTL, ms
-- ARGV[4]      dead-marker TTL, ms
-- ARGV[5..]    triples: entry id, flags ("", "n" notify, "d" dead, "dn"), reason (dead only)
--
-- Signals are written before the acknowledgement in the same script, so a waiter that sees the
-- entry acknowledged also sees why. Returns the number of entries acknowledged.
local stream, group, mode = KEYS[1], ARGV[1], ARGV[2]
local signal_ttl, dead_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = {}
local k = 2
for i = 5, #ARGV, 3 do
  local id, flags, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  ids[#ids + 1] = id
  local dead = string.find(flags, 'd', 1, true) ~= nil
  if dead then
    redis.call('SET', KEYS[k], reason, 'PX', dead_ttl)
    k = k + 1
  end
  if string.find(flags, 'n', 1, true) ~= nil then
    redis.call('RPUSH', KEYS[k], dead and 'dead' or 'ok')
    redis.call('PEXPIRE', KEYS[k], signal_ttl)
    k = k + 1
  end
end
local acked = 0
for first = 1, #ids, 500 do
  local chunk = {unpack(ids, first, math.min(first + 499, #ids))}
  if mode == 'xackdel' then
    local res = redis.call('XACKDEL', stream, group, 'IDS', #chunk, unpack(chunk))
    acked = acked + #res
  else
    acked = acked + redis.call('XACK', stream, group, unpack(chunk))
    redis.call('XDEL', stream, unpack(chunk))
  end
end
return acked

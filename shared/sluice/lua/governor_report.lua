#!lua flags=allow-oom
-- governor_report.lua: an app's lookup latency, for the workers' governor (governor_take.lua).
--
-- KEYS[1]  ns:governor  hash (see governor_take.lua); this script writes the fg_* fields
-- ARGV[1]  ratio: the worst lookup kind's p99 over its idle p99 in the window ("0": idle p99 unknown)
-- ARGV[2]  that kind's p99, µs       ARGV[3]  its idle p99, µs       ARGV[4]  the kind
-- ARGV[5]  the report interval, ms
--
-- Reports of several apps within half an interval merge: the worst ratio stands and counts as one
-- report, so the workers' rate moves once per interval however many apps report.
-- Returns ms since a worker last paid server time ("-1": never), so the app can tell an idle window.
local key = KEYS[1]
local ratio, interval = tonumber(ARGV[1]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', key, 'fg_at', 'fg_ratio', 'charged_at')
local last, worst = tonumber(f[1]), tonumber(f[2]) or 0
if not (last and now - last < interval / 2 and ratio <= worst) then
  redis.call('HSET', key, 'fg_ratio', ARGV[1], 'fg_p99_us', ARGV[2], 'fg_base_us', ARGV[3],
    'fg_kind', ARGV[4], 'fg_at', tostring(now))
  redis.call('PEXPIRE', key, 86400000)
end
local charged = tonumber(f[3])
if not charged then return '-1' end
return tostring(math.max(now - charged, 0))

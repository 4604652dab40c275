#!lua flags=allow-oom
-- governor_take.lua: the workers' shared token bucket of server-milliseconds (DESIGN rule 7).
--
-- KEYS[1]  ns:governor  hash, 1 day after the last write; written here and by governor_report.lua
--          tokens, ts        bucket level (server-ms, may be negative: debt) and when it was refilled
--          rate              share of wall time the workers may take now (AIMD, <= ARGV[3])
--          spent, spent:<w>  server-ms paid in all and by worker process <w>
--          waits, backoffs   takes told to wait; rate decreases
--          win_start, win_spent, duty, duty_at   the last closed 1-second window's measured duty cycle
--          fg_ratio, fg_at, fg_seen   the apps' latest report (governor_report.lua), the one last acted on
--          charged_at        when a worker last paid (reports use it to learn their idle p99)
--          lease_by, lease_end, lease_until   the one pipeline allowed on the server now, when it
--                            is expected to end, and when the lease lapses if its caller never returns
-- ARGV[1]  server-ms to pay (pipelines run since this caller's last call); paying ends its lease
-- ARGV[2]  ms the caller's next pipeline is expected to take ("0": it only pays)
-- ARGV[3]  duty cycle (the largest rate)       ARGV[4]  burst, server-ms
-- ARGV[5]  foreground ratio target             ARGV[6]  decrease factor     ARGV[7]  increase step
-- ARGV[8]  smallest rate                       ARGV[9]  ms a report stays fresh
-- ARGV[10] worker process id               ARGV[11] caller (process and thread)
-- ARGV[12] ms after a decrease in which slow reports change nothing (the decrease needs a window to show)
--
-- The bucket refills at `rate` server-ms per wall-ms up to the burst. A pipeline may start while
-- the level is positive and no other caller's pipeline holds the lease (one worker pipeline on the
-- server at a time: a lookup waits behind one pipeline at most, and a pipeline's round trip less
-- an empty call's is then its own server time). It pays what it measured on the caller's next
-- call, so the level can dip below zero by one pipeline; the reply then says how long to wait. Each new fresh report
-- moves the rate once: halved (times ARGV[6]) when the apps' p99 is above ARGV[5] times its idle
-- p99, up by ARGV[7] otherwise; without a fresh report (no readers) the rate is the duty cycle.
-- Time is the server's (TIME), shared by every worker. Returns {wait ms, rate, level} as strings.
local key = KEYS[1]
local pay, expect = tonumber(ARGV[1]), tonumber(ARGV[2])
local duty, burst = tonumber(ARGV[3]), tonumber(ARGV[4])
local target, decrease, increase = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local least, fresh, worker, caller = math.min(tonumber(ARGV[8]), duty), tonumber(ARGV[9]), ARGV[10], ARGV[11]
local cooldown = tonumber(ARGV[12])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local f = redis.call('HMGET', key, 'tokens', 'ts', 'rate', 'fg_ratio', 'fg_at', 'fg_seen', 'win_start', 'win_spent',
  'lease_by', 'lease_until', 'dec_at', 'lease_end')
local tokens = tonumber(f[1]) or burst
local ts = tonumber(f[2]) or now
local rate = tonumber(f[3]) or duty

local fg_at = tonumber(f[5])
if fg_at and now - fg_at <= fresh then
  if f[5] ~= f[6] then  -- a report not acted on yet
    if (tonumber(f[4]) or 0) > target then
      if now - (tonumber(f[11]) or 0) >= cooldown then
        rate = rate * decrease
        redis.call('HINCRBY', key, 'backoffs', 1)
        redis.call('HSET', key, 'dec_at', tostring(now))
      end
    else
      rate = rate + increase
    end
    redis.call('HSET', key, 'fg_seen', f[5])
  end
else
  rate = duty  -- nobody is reading (or reporting): nothing to leave room for beyond the duty cycle
end
rate = math.max(least, math.min(duty, rate))

tokens = math.min(burst, tokens + math.max(now - ts, 0) * rate) - pay

local win_start = tonumber(f[7]) or now
local win_spent = (tonumber(f[8]) or 0) + pay
if now - win_start >= 1000 then
  redis.call('HSET', key, 'duty', tostring(win_spent / (now - win_start)), 'duty_at', tostring(now))
  win_start, win_spent = now, 0
end

local mine = f[9] == caller  -- a caller's own lease ends with its next call
local lease_until = mine and 0 or (tonumber(f[10]) or 0)
local wait, granted = 0, false
if expect > 0 then
  if lease_until > now then  -- poll again when it should be over (its caller's call releases it)
    wait = math.max((tonumber(f[12]) or 0) - now, 0.1)
  elseif tokens <= 0 then
    wait = -tokens / rate
    redis.call('HINCRBY', key, 'waits', 1)
  else  -- held for twice the expected time at most: a caller may die holding it
    granted = true
    redis.call('HSET', key, 'lease_by', caller, 'lease_end', tostring(now + expect),
      'lease_until', tostring(now + math.min(2 * expect + 1, 200)))
  end
end
if mine and not granted then
  redis.call('HDEL', key, 'lease_by', 'lease_end', 'lease_until')
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now), 'rate', tostring(rate),
  'win_start', tostring(win_start), 'win_spent', tostring(win_spent))
if pay > 0 then
  redis.call('HINCRBYFLOAT', key, 'spent', pay)
  redis.call('HINCRBYFLOAT', key, 'spent:' .. worker, pay)
  redis.call('HSET', key, 'charged_at', tostring(now))
end
redis.call('PEXPIRE', key, 86400000)
return {tostring(wait), tostring(rate), tostring(tokens)}

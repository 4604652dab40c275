-- history_index.lua: keep the session index in step with the conversations it lists.
--
-- KEYS[1]  ns:sessions:{ns}:active    zset member = session, score = last write (its entry id's ms)
-- KEYS[2]  ns:sessions:{ns}:names     zset score 0, member = session (lexical order: listing by prefix)
-- KEYS[3]  ns:sessions:{ns}:expires   zset member = session, score = when its keys expire (ms)
-- ARGV[1]  "touch": ARGV[2..] = triples session, last write ms, expiry ms ("0" = leave as is)
--          "drop":  ARGV[2..] = pairs session, ms: forget it unless written at or after ms (a delete)
--          "prune": ARGV[2..] = pairs session, ms: forget it unless written after ms (the pruner saw it dead)
--          "expiry": ARGV[2..] = pairs session, expiry ms ("0" = the session has no TTL any more)
--
-- Scores only grow (ZADD GT), so batches applied out of order never move a session back in time;
-- a drop is conditional on the score, so a session written again after its delete (or expiry) was
-- noticed stays listed. Returns the number of sessions touched or dropped.
local op = ARGV[1]
local n = 0
if op == 'touch' then
  for i = 2, #ARGV, 3 do
    local session, at, expires = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    redis.call('ZADD', KEYS[1], 'GT', at, session)
    redis.call('ZADD', KEYS[2], 0, session)
    if expires > 0 then
      redis.call('ZADD', KEYS[3], 'GT', expires, session)
    end
    n = n + 1
  end
elseif op == 'drop' or op == 'prune' then
  -- a delete keeps a session written in its own millisecond: better listed (and filtered) than lost
  local strict = op == 'drop'
  for i = 2, #ARGV, 2 do
    local session, upto = ARGV[i], tonumber(ARGV[i + 1])
    local at = tonumber(redis.call('ZSCORE', KEYS[1], session) or '-1')
    if at < upto or (at == upto and not strict) then
      redis.call('ZREM', KEYS[1], session)
      redis.call('ZREM', KEYS[2], session)
      redis.call('ZREM', KEYS[3], session)
      n = n + 1
    end
  end
elseif op == 'expiry' then
  for i = 2, #ARGV, 2 do
    local session, expires = ARGV[i], tonumber(ARGV[i + 1])
    if expires > 0 then
      redis.call('ZADD', KEYS[3], 'XX', expires, session)
    else
      redis.call('ZREM', KEYS[3], session)
    end
    n = n + 1
  end
else
  return redis.error_reply('ERR history_index.lua: unknown op ' .. tostring(op))
end
return n

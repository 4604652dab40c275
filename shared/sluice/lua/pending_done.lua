-- pending_done.lua: tracked jobs of one target key are applied; take them out of its pending set.
--
-- KEYS[1]  ns:jobs:{kind:p}:pend:<digest>   set of entry ids (tracked jobs not applied yet)
-- ARGV[1]  the stream's dead-marker prefix "ns:jobs:{kind:p}:dead:" (markers share the stream's
--          hash tag, hence this script's slot)
-- ARGV[2..] entry ids whose writes are done
--
-- Also drops what dead-lettered jobs left in the set: a "dead:<id>" member (ack.lua) once its
-- dead marker has expired (until then the process that wrote the job finds its failure there;
-- other readers skip it), and a plain id older than the newest one given whose marker exists
-- (dead-lettered by an older sluice). Returns how many members it dropped.
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then
    return false
  end
  if #am ~= #bm then
    return #am < #bm
  end
  if am ~= bm then
    return am < bm
  end
  return tonumber(as) < tonumber(bs)
end

local newest, dropped = nil, 0
for i = 2, #ARGV do
  redis.call('SREM', KEYS[1], ARGV[i])
  if not newest or older(newest, ARGV[i]) then
    newest = ARGV[i]
  end
end
if newest then
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local id = string.match(member, '^dead:(.+)$')
    if id then
      if redis.call('EXISTS', ARGV[1] .. id) == 0 then
        redis.call('SREM', KEYS[1], member)
        dropped = dropped + 1
      end
    elseif older(member, newest) and redis.call('EXISTS', ARGV[1] .. member) == 1 then
      redis.call('SREM', KEYS[1], member)
      dropped = dropped + 1
    end
  end
end
return dropped

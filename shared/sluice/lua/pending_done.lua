-- pending_done.lua: tracked jobs of one target key are applied; take them out of its pending set.
--
-- KEYS[1]  ns:jobs:{kind:p}:pend:<digest>   set of entry ids (tracked jobs not applied yet)
-- ARGV[1]  the stream's dead-marker prefix "ns:jobs:{kind:p}:dead:" (markers share the stream's
--          hash tag, hence this script's slot)
-- ARGV[2..] entry ids whose writes are done
--
-- Also drops ids older than the newest one given whose job was dead-lettered (its marker exists):
-- such an id would otherwise sit in the set, and cost every reader a look at the queue's state,
-- until the set expires. Returns how many such ids it dropped.
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
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if older(id, newest) and redis.call('EXISTS', ARGV[1] .. id) == 1 then
      redis.call('SREM', KEYS[1], id)
      dropped = dropped + 1
    end
  end
end
return dropped

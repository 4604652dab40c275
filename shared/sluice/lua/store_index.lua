-- store_index.lua: keep the LangGraph store's namespace index in step with the item writes.
--
-- KEYS[1]  ns:store:{ns}:names     zset, scores 0, member = the namespace's labels, each followed
--                                  by "\31" (lexical order: a prefix of labels is a range)
-- KEYS[2]  ns:store:{ns}:versions  hash namespace -> version of its newest applied put
-- ARGV[1]  "add" (puts applied) | "drop" (deletes that left their namespace empty)
-- ARGV[2..] pairs: namespace member, version (padded entry id)
--
-- A namespace leaves only if no put newer than the delete that emptied it was applied: a put
-- handled at the same time by another worker keeps its namespace listed.
local op = ARGV[1]
for i = 2, #ARGV, 2 do
  local name, ver = ARGV[i], ARGV[i + 1]
  local newest = redis.call('HGET', KEYS[2], name)
  if op == 'add' then
    if not newest or newest < ver then
      redis.call('HSET', KEYS[2], name, ver)
    end
    redis.call('ZADD', KEYS[1], 0, name)
  elseif not newest or newest <= ver then
    redis.call('ZREM', KEYS[1], name)
    redis.call('HDEL', KEYS[2], name)
  end
end
return 1

-- stream_versions.lua: a function for scripts that take versions from a job stream; a script
-- includes it with a line `--@include stream_versions` (sluice.scripts expands it).
--
-- next_versions(stream, n) returns n entry ids, each above every id `stream` has given out and
-- below every id it will give out, chosen as XADD would choose them, and moves the stream's last
-- id past them (XSETID) without adding an entry: XLEN, the backlog and consumer lag do not
-- change. Redis gives out a stream's ids in increasing order whatever any clock says, so a write
-- versioned by one of these ids is ordered with that stream's jobs by the moment it was made,
-- with no clock compared across nodes. A missing stream is created empty (XADD MAXLEN 0: it
-- holds no other entry to trim) so that the ids it gives out later stay above these.
local function next_versions(stream, n)
  local ms, seq, last
  if redis.call('EXISTS', stream) == 1 then
    local info = redis.call('XINFO', 'STREAM', stream)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        last = info[i + 1]
        break
      end
    end
    local m, s = string.match(last, '^(%d+)%-(%d+)$')
    ms, seq = tonumber(m), tonumber(s) + 1
  else
    local first = redis.call('XADD', stream, 'MAXLEN', '0', '*', 'version', '1')
    local m, s = string.match(first, '^(%d+)%-(%d+)$')
    ms, seq, last = tonumber(m), tonumber(s), first
  end
  local ids = {}
  for i = 0, n - 1 do
    ids[#ids + 1] = string.format('%d-%d', ms, seq + i)
  end
  if ids[n] ~= last then
    redis.call('XSETID', stream, ids[n])
  end
  return ids
end

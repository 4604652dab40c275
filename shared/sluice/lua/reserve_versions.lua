-- reserve_versions.lua: take versions for writes to keys of one partition from its stream.
--
-- KEYS[1]  ns:jobs:{kind:p}   the stream that versions the keys (created empty if missing)
-- ARGV[1]  how many versions (>= 1)
--
-- Returns that many entry ids in increasing order (see stream_versions.lua): every job already
-- in the stream is older than each of them, every job added later is newer. Used by cache-warm
-- enqueues, write="sync" cache updates and cache clears.
--@include stream_versions
return next_versions(KEYS[1], tonumber(ARGV[1]))

#!lua flags=no-writes,allow-stale
-- governor_clock.lua: the server's CPU clock (os.clock(), seconds), read-only.
--
-- KEYS[1]  ns:governor (not read: it routes the call to the node that keeps the bucket)
--
-- A worker's write pipeline is sent between two of these calls; the difference is the CPU time the
-- server spent between them — the pipeline's own commands and any other client's run in between —
-- and, unlike the round trip, never time the operating system gave to other processes.
return tostring(os.clock())

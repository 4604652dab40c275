"""Reading the data people already have in Redis, in the layouts of the classes sluice replaces.

Each reader (`sluice.migrate.sources.open_source`) reads one kind of data — exact cache,
semantic cache, vectors or chat history — written by langchain-community, langchain-redis or
redisvl, with read commands only (SCAN, HGETALL, JSON.GET, LRANGE, PTTL, FT.INFO), and yields
typed records (`sluice.migrate.records`). `sluice.migrate.plan` turns records into ordinary
sluice jobs and `sluice.migrate.run` enqueues them and follows them to applied; the
`sluice migrate` command drives both. The source keys are never written.
"""

from sluice.migrate.records import SOURCES, WHATS, SourceError, SourceName, What

__all__ = ["SOURCES", "WHATS", "SourceError", "SourceName", "What"]

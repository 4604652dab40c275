"""Hit counts of the LLM caches and the sources refresh-ahead recomputes entries from, bounded.

The cache facades add buffered counts to ``ns:cache-meta:<c>:hits`` (zset) and, once per entry,
its source (prompt, llm_string, ttl, embedder) to ``ns:cache-meta:<c>:src`` (hash). Neither has
a TTL, and the refresh-ahead beat, which ages them, may not run: so every flush also keeps the
zset to the `HITS_KEPT` hottest entries, deleting the sources of those it drops, in the same
round trip when nothing is to drop and one more when something is. The two keys live in
different Cluster slots, so a concurrent flush or beat can leave a source without its count; a
flush that finds more than `HITS_KEPT + ORPHAN_SLACK` sources removes such orphans, a page at a
time. Bound without the beat: `HITS_KEPT` counted entries and `HITS_KEPT + ORPHAN_SLACK` sources
(plus one page in flight). A dropped entry's source is written again only by a process that has
not sent it yet, so a dropped entry that turns hot again may be skipped by the beat (it counts
it as `unknown_model`) until its process sends the source again.

Sync (`record`) and asyncio (`arecord`) shells share the command builders and reply parsers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sluice.keys import Keys

HITS_KEPT: Final = 10_000
"""Entries per cache whose hit counts and sources are kept (the hottest)."""
ORPHAN_SLACK: Final = 1_000
"""Sources without a count tolerated before a flush removes them."""
ORPHAN_PAGE: Final = 1_000


@dataclass(frozen=True, slots=True)
class Overflow:
    """What a flush found past the bounds."""

    coldest: list[str]  # members past HITS_KEPT, coldest first
    orphans_due: bool  # more sources than HITS_KEPT + ORPHAN_SLACK


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def hit_commands(
    pipe: Any, keys: Keys, cache: str, counts: Mapping[str, float], sources: Mapping[str, str]
) -> None:
    """Queue the counts and sources, then what `parse_overflow` reads (the last two replies)."""
    hits = keys.cache_hits(cache)
    for member, n in counts.items():
        pipe.zincrby(hits, n, member)
    if sources:
        pipe.hset(keys.cache_sources(cache), mapping=dict(sources))
    pipe.zrange(hits, 0, -(HITS_KEPT + 1))  # empty unless the zset holds more than HITS_KEPT
    pipe.hlen(keys.cache_sources(cache))


def parse_overflow(replies: Sequence[Any]) -> Overflow:
    coldest, sources = replies[-2], replies[-1]
    return Overflow([_text(m) for m in coldest], int(sources) > HITS_KEPT + ORPHAN_SLACK)


def drop_commands(pipe: Any, keys: Keys, cache: str, members: Sequence[str]) -> None:
    pipe.zrem(keys.cache_hits(cache), *members)
    pipe.hdel(keys.cache_sources(cache), *members)


def orphans(fields: Sequence[Any], scores: Sequence[Any]) -> list[str]:
    """Source fields whose entry has no hit count (ZMSCORE gave None)."""
    return [_text(f) for f, s in zip(fields, scores, strict=True) if s is None]


def record(
    redis: Any, keys: Keys, cache: str, counts: Mapping[str, float], sources: Mapping[str, str]
) -> None:
    """Add counts and sources, then enforce the bounds (sync; errors translated by the caller)."""
    pipe = redis.pipeline(transaction=False)
    hit_commands(pipe, keys, cache, counts, sources)
    overflow = parse_overflow(pipe.execute())
    if overflow.coldest:
        pipe = redis.pipeline(transaction=False)
        drop_commands(pipe, keys, cache, overflow.coldest)
        pipe.execute()
    if overflow.orphans_due:
        fields = redis.hrandfield(keys.cache_sources(cache), ORPHAN_PAGE)
        if fields:
            lost = orphans(fields, redis.zmscore(keys.cache_hits(cache), fields))
            if lost:
                redis.hdel(keys.cache_sources(cache), *lost)


async def arecord(
    redis: Any, keys: Keys, cache: str, counts: Mapping[str, float], sources: Mapping[str, str]
) -> None:
    pipe = redis.pipeline(transaction=False)
    hit_commands(pipe, keys, cache, counts, sources)
    overflow = parse_overflow(await pipe.execute())
    if overflow.coldest:
        pipe = redis.pipeline(transaction=False)
        drop_commands(pipe, keys, cache, overflow.coldest)
        await pipe.execute()
    if overflow.orphans_due:
        fields = await redis.hrandfield(keys.cache_sources(cache), ORPHAN_PAGE)
        if fields:
            lost = orphans(fields, await redis.zmscore(keys.cache_hits(cache), fields))
            if lost:
                await redis.hdel(keys.cache_sources(cache), *lost)

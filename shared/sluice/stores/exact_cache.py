"""The exact LLM cache: one string per (cache, llm_string, prompt), written only by cache_write.lua.

Reads are one ``GET``. A value is ``<padded version>:<generations JSON>``; the version makes
writes idempotent and ordered (a redelivered or older fill never replaces a newer entry) and
the TTL is set by the same ``SET``. Versions are entry ids of the entry's cache-fill partition
stream (`sluice.stores.versions`): a fill's own id, or one reserved from that stream for a warm
job or a ``write="sync"`` update (in the write's own script on one server; one call before it on
a Cluster, where the stream lives in another slot). `clear` marks the clear with a version
reserved from every partition's stream (so fills still in the queue are dropped when they
arrive, and fills enqueued after it are kept; on a Cluster, where the marks live in another
slot, writers read them before and after writing), then sweeps by ``SCAN MATCH`` on every primary,
deleting each entry found only if it is older than the clear (cache_drop_older.lua: a fill enqueued
after the clear and applied during the sweep stays): it never touches another namespace, another
cache, or (with ``llm_string``) another model.
Never FLUSHDB, never KEYS.

Sync (`ExactCacheStore`) and asyncio (`AsyncExactCacheStore`) shells drive the same plans
(`sluice.stores.cache_versions`: writes, versions, a clear's sweep) and share the reply parser.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from langchain_core.outputs import Generation
from redis.exceptions import ResponseError

from sluice.errors import InvalidArgument, StoreCorrupted
from sluice.keys import Keys, digest
from sluice.stores import generations as codec
from sluice.stores import hits
from sluice.stores.cache_versions import (
    CacheWrite,
    clear_mark_plan,
    clear_sweep_calls,
    versions_plan,
    write_plan,
)
from sluice.transport.runner import AsyncRunner, Runner, adrive, drive
from sluice.transport.translate import ServerErrors, translate_errors

log = logging.getLogger(__name__)

VERSION_WIDTH: Final = 29
"""Characters of a padded version (`sluice.stores.versions.padded`)."""
UNLINK_BATCH: Final = 500
SCAN_COUNT: Final = 1000
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_name(name: str) -> str:
    """Cache names go into keys and SCAN patterns: no glob characters, no separators."""
    if not _NAME.match(name):
        raise InvalidArgument(f"cache name {name!r} must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return name


def parse_entry(raw: bytes | str | None, key: str) -> list[Generation] | None:
    """A stored value -> generations; None for a miss, and for anything corrupted (logged)."""
    if raw is None:
        return None
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if len(text) <= VERSION_WIDTH or text[VERSION_WIDTH] != ":":
            raise StoreCorrupted(
                f"{key} is not a sluice cache entry (no version prefix); it is treated as a miss"
            )
        return codec.decode(text[VERSION_WIDTH + 1 :], key)
    except (StoreCorrupted, UnicodeDecodeError) as e:
        log.warning("LLM cache: %s", e)
        return None


def _entry_or_miss(reply: Any, key: str) -> list[Generation] | None:
    """One reply of a pipelined lookup: an error (another Redis type) is a miss, logged."""
    if isinstance(reply, Exception):
        log.warning("LLM cache: %s cannot be read (%s); treated as a miss", key, reply)
        return None
    return parse_entry(reply, key)


def _wrong_type(e: ResponseError, what: str) -> StoreCorrupted | None:
    if ServerErrors.matches(e, ServerErrors.WRONGTYPE):
        return StoreCorrupted(f"{what}: a cache key holds another Redis type; delete that key ({e})")
    return None


class ExactCacheStore:
    """Sync access: lookups for the facade, versioned writes for the workers, scoped clears."""

    def __init__(self, redis: Any, keys: Keys, *, cluster: bool = False) -> None:
        self._redis = redis
        self._keys = keys
        self._cluster = cluster
        self._runner = Runner(redis, cluster=cluster)

    @property
    def keys(self) -> Keys:
        return self._keys

    def lookup(self, cache: str, llm_string: str, prompt: str) -> list[Generation] | None:
        return self.lookup_key(self._keys.cache_entry(cache, llm_string, prompt))

    def lookup_key(self, key: str) -> list[Generation] | None:
        with translate_errors("look up the LLM cache"):
            try:
                raw = self._redis.get(key)
            except ResponseError as e:
                if ServerErrors.matches(e, ServerErrors.WRONGTYPE):
                    log.warning("LLM cache: %s holds another Redis type; treated as a miss", key)
                    return None
                raise
        return parse_entry(raw, key)

    def lookup_keys(self, keys: Sequence[str]) -> list[list[Generation] | None]:
        """Several entries in one round trip (a pipeline: the keys may live on different Cluster slots)."""
        with translate_errors("look up the LLM cache"):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            replies = pipe.execute(raise_on_error=False)
        return [_entry_or_miss(r, k) for k, r in zip(keys, replies, strict=True)]

    def write(self, writes: Sequence[CacheWrite]) -> list[int]:
        """Apply writes (`sluice.stores.cache_versions.write_plan`): 1 = written, 0 = older, -1 =
        cleared since."""
        with translate_errors("write the LLM cache"):
            try:
                return drive(write_plan(self._keys, writes, cluster=self._cluster), self._runner)
            except ResponseError as e:
                raise _wrong_type(e, "write the LLM cache") or e from None

    def versioned(self, writes: Sequence[CacheWrite]) -> list[CacheWrite]:
        """The writes, each without a version given one reserved from its entry's stream."""
        with translate_errors("reserve LLM cache versions"):
            return drive(versions_plan(self._keys, writes), self._runner)

    def clear(self, cache: str, llm_string: str | None = None) -> int:
        """Remove this cache's entries (or one model's); returns how many keys were deleted."""
        scope = "*" if llm_string is None else digest(llm_string)
        removed = 0
        with translate_errors("clear the LLM cache"):
            reserved = drive(clear_mark_plan(self._keys, cache, scope), self._runner)
            batch: list[Any] = []
            for key in self._redis.scan_iter(
                match=self._keys.cache_match(cache, llm_string), count=SCAN_COUNT
            ):
                batch.append(key)
                if len(batch) >= UNLINK_BATCH:
                    removed += self._sweep(cache, batch, reserved)
                    batch = []
            removed += self._sweep(cache, batch, reserved)
            if llm_string is None:
                self._redis.unlink(self._keys.cache_hits(cache), self._keys.cache_sources(cache))
        return removed

    def _sweep(self, cache: str, found: Sequence[Any], reserved: Sequence[str]) -> int:
        replies = self._runner.run(
            clear_sweep_calls(self._keys, cache, found, reserved), what="clear the LLM cache"
        )
        return sum(r == 1 for r in replies)

    def record_hits(self, cache: str, counts: Mapping[str, float], sources: Mapping[str, str]) -> None:
        """Add hit counts (members ``<hl>:<hp>``) and the sources refresh-ahead needs to recompute them
        (bounded: `sluice.stores.hits`)."""
        if not counts:
            return
        with translate_errors("record LLM cache hits"):
            hits.record(self._redis, self._keys, cache, counts, sources)


class AsyncExactCacheStore:
    """asyncio access over redis.asyncio: lookup, sync-mode writes, clear, hits."""

    def __init__(self, redis: Any, keys: Keys, *, cluster: bool = False) -> None:
        self._redis = redis
        self._keys = keys
        self._cluster = cluster
        self._runner = AsyncRunner(redis, cluster=cluster)

    async def lookup_key(self, key: str) -> list[Generation] | None:
        with translate_errors("look up the LLM cache"):
            try:
                raw = await self._redis.get(key)
            except ResponseError as e:
                if ServerErrors.matches(e, ServerErrors.WRONGTYPE):
                    log.warning("LLM cache: %s holds another Redis type; treated as a miss", key)
                    return None
                raise
        return parse_entry(raw, key)

    async def lookup_keys(self, keys: Sequence[str]) -> list[list[Generation] | None]:
        with translate_errors("look up the LLM cache"):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            replies = await pipe.execute(raise_on_error=False)
        return [_entry_or_miss(r, k) for k, r in zip(keys, replies, strict=True)]

    async def write(self, writes: Sequence[CacheWrite]) -> list[int]:
        with translate_errors("write the LLM cache"):
            try:
                return await adrive(write_plan(self._keys, writes, cluster=self._cluster), self._runner)
            except ResponseError as e:
                raise _wrong_type(e, "write the LLM cache") or e from None

    async def clear(self, cache: str, llm_string: str | None = None) -> int:
        scope = "*" if llm_string is None else digest(llm_string)
        removed = 0
        with translate_errors("clear the LLM cache"):
            reserved = await adrive(clear_mark_plan(self._keys, cache, scope), self._runner)
            batch: list[Any] = []
            async for key in self._redis.scan_iter(
                match=self._keys.cache_match(cache, llm_string), count=SCAN_COUNT
            ):
                batch.append(key)
                if len(batch) >= UNLINK_BATCH:
                    removed += await self._sweep(cache, batch, reserved)
                    batch = []
            removed += await self._sweep(cache, batch, reserved)
            if llm_string is None:
                await self._redis.unlink(self._keys.cache_hits(cache), self._keys.cache_sources(cache))
        return removed

    async def _sweep(self, cache: str, found: Sequence[Any], reserved: Sequence[str]) -> int:
        calls = clear_sweep_calls(self._keys, cache, found, reserved)
        return sum(r == 1 for r in await self._runner.run(calls, what="clear the LLM cache"))

    async def record_hits(self, cache: str, counts: Mapping[str, float], sources: Mapping[str, str]) -> None:
        if not counts:
            return
        with translate_errors("record LLM cache hits"):
            await hits.arecord(self._redis, self._keys, cache, counts, sources)

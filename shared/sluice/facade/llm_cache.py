"""LangChain `BaseCache` over sluice's exact cache: lookups are one GET, updates go through workers.

`update` enqueues a ``cache-fill`` job by default (``write="enqueued"``: the app pays one
XADD, the worker encodes and writes); ``write="direct"`` writes in the call. With
`read_your_writes` (the default) a lookup of prompt P first waits, bounded, for *this object's*
pending fill of P, and nothing else, so LangChain's own cache test suite passes unchanged. A
fill that was dead-lettered or did not land in time is logged and reads as a miss: a cache
never fails the app's call for that.

`local_cache=N` keeps up to N hot entries in process (sync lookups), invalidated by the server
(see `sluice.stores.tracking`): a repeated hit costs no round trip, an entry's TTL is enforced
locally, and a change by another client is seen as soon as its invalidation arrives (like every
Redis client-side cache, that is asynchronous: well under a millisecond on a LAN). Leave it off
where one process must see another's write the instant that write returns. Hits are counted in memory
and flushed to Redis about once a second, so the refresh-ahead beat task can re-warm hot
entries before they expire.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.outputs import Generation

from sluice.core import check_timeout
from sluice.errors import (
    ConfigError,
    InvalidArgumentType,
    JobFailed,
    PermissionDenied,
    RedisUnavailable,
    SluiceError,
)
from sluice.facade.pending import ReadYourWrites
from sluice.facade.policy import OnTimeout, WriteMode, check_ttl, on_timeout_policy, write_mode
from sluice.jobs.models import CacheFillPayload
from sluice.keys import digest
from sluice.ops import cachestats
from sluice.ops.cachestats import LookupCounts
from sluice.stores import generations as codec
from sluice.stores.cache_versions import CacheWrite
from sluice.stores.exact_cache import (
    AsyncExactCacheStore,
    ExactCacheStore,
    check_name,
    parse_entry,
)
from sluice.stores.tracking import MISSING, TrackedReads
from sluice.types import StreamEntryRef

if TYPE_CHECKING:
    from sluice.core import Core

log = logging.getLogger(__name__)

HIT_FLUSH_SECONDS = 1.0
HIT_FLUSH_MEMBERS = 256
SOURCES_REMEMBERED = 10_000

_digest = lru_cache(maxsize=256)(digest)  # llm_strings repeat; prompts mostly do not


def member_of(llm_string: str, prompt: str) -> str:
    """``<hl>:<hp>``: an entry inside its cache (the last two parts of its key)."""
    return f"{_digest(llm_string)}:{digest(prompt)}"


def copies(generations: list[Generation]) -> list[Generation]:
    """Shallow copies: LangChain replaces `gen.message` on a cache hit; shared objects must not see it."""
    return [g.model_copy() for g in generations]


class Consistency:
    """Read-your-writes for one cache object: a read waits for its own pending writes to its keys
    (bounded: see `sluice.facade.pending`). A fill that was dead-lettered is logged and forgotten;
    one that did not land in time is handled by `on_timeout` (see `sluice.facade.policy`)."""

    def __init__(
        self,
        client: Core,
        enabled: bool,
        timeout: float | None,
        on_timeout: OnTimeout = "warn",
        what: str = "LLM cache",
    ) -> None:
        self.client = client
        self.enabled = enabled
        self.timeout = None if timeout is None else check_timeout(timeout, "wait_timeout")
        self.on_timeout: OnTimeout = on_timeout_policy(on_timeout, what)
        self.what = what
        self.writes = ReadYourWrites(client, forget_on_timeout=True)

    def add(self, key: str, handles: Sequence[StreamEntryRef]) -> None:
        if self.enabled:
            self.writes.add(key, handles)

    async def aadd(self, key: str, handles: Sequence[StreamEntryRef]) -> None:
        if self.enabled:
            await self.writes.aadd(key, handles)

    def settle(self, keys: Sequence[str] | None, timeout: float | None = None) -> None:
        if not len(self.writes):  # nothing pending: no bookkeeping, no round trip
            return
        try:
            self.writes.settle(keys, self.timeout if timeout is None else timeout, self.on_timeout, self.what)
        except JobFailed as e:
            log.warning("%s: a fill of this cache failed (%s); reading without it", self.what, e)

    async def asettle(self, keys: Sequence[str] | None) -> None:
        if not len(self.writes):
            return
        try:
            await self.writes.asettle(keys, self.timeout, self.on_timeout, self.what)
        except JobFailed as e:
            log.warning("%s: a fill of this cache failed (%s); reading without it", self.what, e)


class SkippedFills:
    """Fills a cache gave up on rather than fail the LLM call that produced them: the model has
    answered, and losing that answer to a cache problem (a prompt or answer over the job size
    limit, a full queue, Redis unreachable) is worse than not caching it. Logged, counted by
    error class in `counts`. Arguments that can never work (a `ConfigError`) still raise."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.counts: Counter[str] = Counter()

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except ConfigError:
            raise
        except SluiceError as e:
            self.counts[type(e).__name__] += 1
            log.warning("%s: this answer is not cached (%s); the LLM call goes on", self.what, e)


class EntryStores:
    """A client's exact-cache store, sync and asyncio, built on first use (both LLM caches keep
    their answers there)."""

    def __init__(self, client: Core) -> None:
        self.client = client
        self._sync: ExactCacheStore | None = None
        self._async: AsyncExactCacheStore | None = None
        self._async_on: Any = None  # the asyncio client `_async` runs on

    def sync(self) -> ExactCacheStore:
        if self._sync is None:
            cluster = self.client.capabilities.cluster
            self._sync = ExactCacheStore(self.client.redis, self.client.keys, cluster=cluster)
        return self._sync

    async def asyncio(self) -> AsyncExactCacheStore:
        """The running event loop's store (each loop has its own connections)."""
        redis = self.client.async_redis
        if self._async is None or self._async_on is not redis:
            caps = await self.client.acapabilities()
            self._async = AsyncExactCacheStore(redis, self.client.keys, cluster=caps.cluster)
            self._async_on = redis
        return self._async


class HitBuffer:
    """Hit counts kept in memory and flushed in one pipeline about once a second (refresh-ahead)."""

    def __init__(self, ttl: float | None, embedder: str | None = None) -> None:
        self.ttl = ttl
        self.embedder = embedder
        self._counts: Counter[str] = Counter()
        self._sources: dict[str, str] = {}
        self._sent: set[str] = set()
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self.lookups = LookupCounts()  # hits and misses per minute, for the dashboard's hit rates

    def due(self) -> bool:
        return time.monotonic() - self._last >= HIT_FLUSH_SECONDS

    def add(self, member: str, llm_string: str, prompt: str) -> bool:
        """Count a hit; True when a flush is due."""
        with self._lock:
            self._counts[member] += 1
            if member not in self._sent and member not in self._sources:
                source = {
                    "prompt": prompt,
                    "llm_string": llm_string,
                    "ttl": self.ttl,
                    "embedder": self.embedder,
                }
                self._sources[member] = json.dumps(source)
            return (
                len(self._counts) >= HIT_FLUSH_MEMBERS or time.monotonic() - self._last >= HIT_FLUSH_SECONDS
            )

    def take(self) -> tuple[dict[str, float], dict[str, str]]:
        with self._lock:
            counts, sources = dict(self._counts), self._sources
            self._counts, self._sources, self._last = Counter(), {}, time.monotonic()
            if len(self._sent) > SOURCES_REMEMBERED:
                self._sent.clear()
            self._sent.update(sources)
            return {k: float(v) for k, v in counts.items()}, sources

    def drop(self) -> None:
        with self._lock:
            self._counts.clear()
            self._sources.clear()
            self._sent.clear()


class LLMCache(BaseCache):
    """Use `client.llm_cache(...)`, then `langchain_core.globals.set_llm_cache(cache)`."""

    def __init__(
        self,
        client: Core,
        *,
        name: str = "default",
        ttl: float | None = None,
        write: WriteMode | str = "enqueued",
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        tracked: TrackedReads[list[Generation]] | None = None,
        record_hits: bool = True,
        on_timeout: OnTimeout = "warn",
    ) -> None:
        self.write = write_mode(write, "llm_cache", ("enqueued", "direct"))
        self.client = client
        self.name = check_name(name)
        self.ttl = check_ttl(ttl, "entries")
        self._consistency = Consistency(client, read_your_writes, wait_timeout, on_timeout, "LLM cache")
        self.skipped = SkippedFills("LLM cache")
        self._tracked = tracked
        self._hits = HitBuffer(ttl) if record_hits else None
        self._stores = EntryStores(client)

    # --- plumbing ----------------------------------------------------------------------------
    def _sync_store(self) -> ExactCacheStore:
        return self._stores.sync()

    async def _async_store(self) -> AsyncExactCacheStore:
        return await self._stores.asyncio()

    def _pending_key(self, member: str) -> str:
        return f"cache:{self.name}:{member}"  # = CacheFillPayload.target_key()

    def _payload(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> CacheFillPayload:
        return CacheFillPayload(
            llm_string=llm_string,
            prompt=prompt,
            generations=codec.to_dicts(return_val),
            ttl=self.ttl,
            cache=self.name,
        )

    # --- sync --------------------------------------------------------------------------------
    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        started = time.perf_counter()
        member = member_of(llm_string, prompt)
        self._consistency.settle([self._pending_key(member)])
        key = self.client.keys.cache_entry_of(self.name, member)
        found = self._read(key)
        if self._hits is not None:
            self._hits.lookups.exact(found is not None)
            if self._hits.add(member, llm_string, prompt) if found is not None else self._hits.due():
                self.flush_hits()
        self.client.foreground.note("exact", started)
        return found

    def _read(self, key: str) -> list[Generation] | None:
        tracked = self._tracked
        if tracked is None:
            return self._sync_store().lookup_key(key)
        held = tracked.get(key)
        if held is not MISSING:
            return copies(held)  # type: ignore[arg-type]
        try:
            fetched = tracked.fetch(key, lambda raw: parse_entry(raw, key))
        except RedisUnavailable as e:
            log.warning("LLM cache: tracked read failed (%s); reading without the local cache", e)
            return self._sync_store().lookup_key(key)
        return copies(fetched) if fetched is not None else None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        member = member_of(llm_string, prompt)
        if self._tracked is not None:
            self._tracked.discard(self.client.keys.cache_entry_of(self.name, member))
        if self.write == "direct":
            with self.skipped.guard():
                self._sync_store().write([CacheWrite.of(self.name, llm_string, prompt, return_val, self.ttl)])
            return
        payload = self._payload(prompt, llm_string, return_val)
        with self.skipped.guard():
            handles = self.client.producer.enqueue_many([payload], notify=self._consistency.enabled)
            self._consistency.add(self._pending_key(member), handles)

    def clear(self, **kwargs: Any) -> None:
        """Remove this cache's entries; ``clear(llm_string=...)`` only that model's. Other keys survive."""
        llm_string = clear_scope(kwargs)
        self._consistency.settle(None)
        self._sync_store().clear(self.name, llm_string)
        self._after_clear(llm_string)

    def _after_clear(self, llm_string: str | None) -> None:
        if self._tracked is not None:
            self._tracked.clear_local()
        if self._hits is not None and llm_string is None:
            self._hits.drop()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every fill this object enqueued is applied; raises `WaitTimeout` (the fills
        stay pending) or `JobFailed` (a dead-lettered fill, reported once)."""
        self._consistency.writes.settle(None, self._consistency.timeout if timeout is None else timeout)

    def flush_hits(self) -> None:
        """Send the buffered hit counts now (also done about once a second by lookups)."""
        if self._hits is None:
            return
        counts, sources = self._hits.take()
        try:
            if counts:
                self._sync_store().record_hits(self.name, counts, sources)
            cachestats.record(self.client.redis, self.client.keys, self.name, self._hits.lookups.take())
        except (RedisUnavailable, PermissionDenied) as e:  # counting must never break a lookup
            log.warning("LLM cache: hit counts dropped (%s)", e)

    def close(self) -> None:
        self.flush_hits()
        if self._tracked is not None:
            self._tracked.close()

    # --- asyncio -----------------------------------------------------------------------------
    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        member = member_of(llm_string, prompt)
        await self._consistency.asettle([self._pending_key(member)])
        store = await self._async_store()
        found = await store.lookup_key(self.client.keys.cache_entry_of(self.name, member))
        if self._hits is not None:
            self._hits.lookups.exact(found is not None)
            if self._hits.add(member, llm_string, prompt) if found is not None else self._hits.due():
                counts, sources = self._hits.take()
                try:
                    if counts:
                        await store.record_hits(self.name, counts, sources)
                    await cachestats.arecord(
                        self.client.async_redis, self.client.keys, self.name, self._hits.lookups.take()
                    )
                except (RedisUnavailable, PermissionDenied) as e:
                    log.warning("LLM cache: hit counts dropped (%s)", e)
        return found

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        member = member_of(llm_string, prompt)
        if self._tracked is not None:
            self._tracked.discard(self.client.keys.cache_entry_of(self.name, member))
        with self.skipped.guard():
            if self.write == "direct":
                store = await self._async_store()
                await store.write([CacheWrite.of(self.name, llm_string, prompt, return_val, self.ttl)])
                return
            payload = self._payload(prompt, llm_string, return_val)
            handles = await self.client.aproducer.enqueue_many([payload], notify=self._consistency.enabled)
            await self._consistency.aadd(self._pending_key(member), handles)

    async def aclear(self, **kwargs: Any) -> None:
        llm_string = clear_scope(kwargs)
        await self._consistency.asettle(None)
        await (await self._async_store()).clear(self.name, llm_string)
        self._after_clear(llm_string)


def clear_scope(kwargs: dict[str, Any]) -> str | None:
    unknown = sorted(set(kwargs) - {"llm_string"})
    if unknown:
        raise InvalidArgumentType(f"clear() takes only llm_string=..., not {unknown}")
    llm_string = kwargs.get("llm_string")
    if llm_string is not None and not isinstance(llm_string, str):
        raise InvalidArgumentType(f"llm_string must be a string, not {type(llm_string).__name__}")
    return llm_string

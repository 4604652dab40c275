"""LangChain `BaseCache` that also answers *similar* prompts: sluice's semantic cache.

`lookup` embeds the prompt's text once (with the app's `Embeddings`), runs one vector query
filtered by the model inside the query, and reads the candidates' entries in one more round
trip; `lookup_with_score` says how close the hit was. `update` enqueues a ``cache-fill`` job
that carries the vector the lookup before it computed (remembered briefly, `RecentVectors`), or
one the app computes when no lookup preceded: the worker stores the app's vector and the exact
entry, and never embeds the prompt again, so any `Embeddings` works and app and workers can
never disagree. A *settings* embedder (`embedder=`) is needed only for jobs the workers start
themselves (``cache-warm``, refresh-ahead); it is checked once against the app's embeddings on
several probe texts, and refused when they disagree. Entries live `ttl` seconds; `refresh_on_hit=True` (off by
default) extends an entry's life on every hit. Read-your-writes is scoped by model: a lookup
waits (bounded) for this object's pending fills *of the same llm_string*, since any of them may
be the nearest entry; `read_your_writes=False` turns that off.

Distances are cosine distances (``1 - cos``, 0 = same direction, 2 = opposite) on both
backends; `distance_threshold` is the largest distance served as a hit. A good threshold
belongs to an embedder: measure it with `evaluate` on a labelled sample.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.embeddings import Embeddings

from sluice.embeddings.recent import RecentVectors, compact
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import (
    ConfigError,
    InvalidArgument,
    InvalidArgumentType,
    PermissionDenied,
    RedisUnavailable,
)
from sluice.facade.llm_cache import Consistency, EntryStores, HitBuffer, SkippedFills, clear_scope, member_of
from sluice.facade.policy import OnTimeout, check_ttl
from sluice.jobs.models import CacheFillPayload
from sluice.models.prompts import text_of
from sluice.ops import cachestats
from sluice.queue.plan import check_payload
from sluice.stores import generations as codec
from sluice.stores.exact_cache import AsyncExactCacheStore, ExactCacheStore, check_name
from sluice.stores.semantic_cache import (
    CANDIDATES,
    Candidate,
    Considered,
    Labelled,
    Lookup,
    SemanticHit,
    ThresholdStats,
    best_threshold,
    candidates,
    decide,
    index_name,
    model_filter,
    screen,
    semantic_schema,
    threshold_stats,
    touch_calls,
)
from sluice.stores.verify import KeyTerms, Verdict, Verifier
from sluice.transport.runner import adrive, drive
from sluice.types import KeyT
from sluice.vectors.backend import BackendChoice, VectorQuery
from sluice.vectors.documents import Hit
from sluice.vectors.manager import drop_index
from sluice.vectors.meta import IndexMeta
from sluice.vectors.schema import Algorithm
from sluice.vectors.session import IndexSession, check_dims

if TYPE_CHECKING:
    from sluice.core import Core

__all__ = [
    "Considered",
    "KeyTerms",
    "Labelled",
    "Lookup",
    "SemanticCache",
    "SemanticHit",
    "ThresholdStats",
    "Verdict",
    "Verifier",
    "best_threshold",
    "resolve_embedder",
]

log = logging.getLogger(__name__)
MAX_DISTANCE = 2.0
PROBE = "sluice semantic cache: embedder check"
PROBES = (
    PROBE,
    "How do I reset my password?",
    "Flights from Lisbon to Tokyo in early May, under 900 euros",
    "Le chat dort sur le canapé depuis ce matin.",
    "def mean(xs): return sum(xs) / len(xs)",
)
"""Texts the app's embeddings and a settings embedder must agree on (cosine >= AGREEMENT)."""
AGREEMENT = 0.99


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm if norm else 0.0


class SemanticCache(BaseCache):
    """Use `client.semantic_cache(embeddings, ...)`, then `set_llm_cache(cache)`."""

    def __init__(
        self,
        client: Core,
        embeddings: Embeddings,
        *,
        embedder: str | None = None,
        name: str = "semantic",
        distance_threshold: float = 0.2,
        ttl: float | None = None,
        refresh_on_hit: bool = False,
        backend: BackendChoice = "auto",
        algorithm: Algorithm = "hnsw",
        ef_runtime: int = 100,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        record_hits: bool = True,
        verify_embedder: bool = True,
        on_timeout: OnTimeout = "warn",
        verify: Verifier | bool = True,
    ) -> None:
        if isinstance(distance_threshold, bool) or not isinstance(distance_threshold, (int, float)):
            raise InvalidArgumentType("distance_threshold is a cosine distance (a number between 0 and 2)")
        if not 0.0 <= distance_threshold <= MAX_DISTANCE:
            raise InvalidArgument(
                f"distance_threshold is a cosine distance between 0 and 2, not {distance_threshold}"
            )
        ttl = check_ttl(ttl, "entries")
        self.client = client
        self.embeddings = embeddings
        self.embedder = embedder
        self.name = check_name(name)
        self.index = index_name(name)
        self.distance_threshold = distance_threshold
        self.ttl = ttl
        self.refresh_on_hit = refresh_on_hit
        self.backend: BackendChoice = backend
        self.algorithm: Algorithm = algorithm
        self.ef_runtime = ef_runtime
        self.verify_embedder = verify_embedder
        self.verifier: Verifier | None = KeyTerms() if verify is True else (verify or None)
        self._consistency = Consistency(client, read_your_writes, wait_timeout, on_timeout, "semantic cache")
        self.skipped = SkippedFills("semantic cache")
        self._hits = HitBuffer(ttl, embedder) if record_hits else None
        self._session: IndexSession | None = None
        self._stores = EntryStores(client)
        self._recent = RecentVectors()
        self._checked: str | None = None  # the settings embedder the app's embeddings agreed with

    # --- the index -----------------------------------------------------------------------------
    def _new_session(self, dims: int) -> IndexSession:
        schema = semantic_schema(dims, algorithm=self.algorithm, ef_runtime=self.ef_runtime)
        return IndexSession(
            self.client, self.index, schema=schema, backend=self.backend, embedder=self.embedder
        )

    def _disagreement(
        self, name: str, ours: Sequence[Sequence[float]], theirs: Sequence[Sequence[float]]
    ) -> None:
        bad = [
            text
            for text, a, b in zip(PROBES, ours, theirs, strict=True)
            if len(a) != len(b) or _cosine(a, b) < AGREEMENT
        ]
        if bad:
            shown = (
                f"{len(ours[0])} vs {len(theirs[0])} dimensions"
                if len(ours[0]) != len(theirs[0])
                else f"e.g. for {bad[0]!r}"
            )
            raise ConfigError(
                f"the semantic cache's embeddings ({type(self.embeddings).__name__}) and the settings embedder "
                f"{name!r} disagree on {len(bad)} of {len(PROBES)} probe texts ({shown}); "
                f"{name!r} would embed the prompts of jobs the workers start themselves (cache-warm, "
                "refresh-ahead). Omit embedder= to store only the app's vectors (no settings entry needed), "
                "or name in SLUICE_EMBEDDERS an embedder that gives the app's vectors"
            )
        self._checked = name

    def _to_check(self, meta: IndexMeta | None) -> str | None:
        """The settings embedder to check the app's embeddings against (once), if any."""
        name = self.embedder or (meta.embedder if meta is not None else None)
        if not self.verify_embedder or not name or name == self._checked:
            return None
        if self.embedder is None and name not in self.client.settings.embedders:
            # another process created the index with an embedder these settings lack: its
            # workers warm it; this process stores its own vectors and cannot compare them
            log.info(
                "semantic cache %r: index embedder %r is not in these settings; not checked", self.name, name
            )
            return None
        return name

    def _settings_vectors(self, name: str) -> list[list[float]]:
        """The settings embedder's vectors of the probes: builds it (which may load a model) and
        embeds, blocking; the asyncio path runs this in a worker thread."""
        return EmbedderRegistry(self.client.settings.embedders).get(name).embed_documents(list(PROBES))

    def _check(self, meta: IndexMeta | None) -> None:
        name = self._to_check(meta)
        if name is not None:
            theirs = self._settings_vectors(name)
            self._disagreement(name, self.embeddings.embed_documents(list(PROBES)), theirs)

    async def _acheck(self, meta: IndexMeta | None) -> None:
        name = self._to_check(meta)
        if name is not None:
            # off the event loop: a settings embedder is sync code (its aembed_* may be too)
            theirs = await asyncio.get_running_loop().run_in_executor(None, self._settings_vectors, name)
            self._disagreement(name, await self.embeddings.aembed_documents(list(PROBES)), theirs)

    def _open(self, vector: Sequence[float] | None = None) -> tuple[IndexSession, IndexMeta]:
        session = self._session  # a local: another thread may be opening its own at the same time
        if session is None or session.meta is None:
            self._check(None)  # before the index records the embedder's name
            size = len(vector) if vector is not None else len(self.embeddings.embed_query(PROBE))
            session = self._new_session(size)
            session.open(lambda: size)
            self._check(session.meta)
            self._session = session
        assert session.meta is not None
        return session, session.meta

    async def _aopen(self, vector: Sequence[float] | None = None) -> tuple[IndexSession, IndexMeta]:
        session = self._session
        if session is None or session.meta is None:
            await self._acheck(None)
            size = len(vector) if vector is not None else len(await self.embeddings.aembed_query(PROBE))
            session = self._new_session(size)

            async def known() -> int:
                return size

            await session.aopen(known)
            await self._acheck(session.meta)
            self._session = session
        assert session.meta is not None
        return session, session.meta

    def _sync_store(self) -> ExactCacheStore:
        return self._stores.sync()

    async def _async_store(self) -> AsyncExactCacheStore:
        return await self._stores.asyncio()

    def _query(self, vector: list[float], llm_string: str, threshold: float | None) -> VectorQuery:
        # a range query where a threshold applies; plain KNN when measuring (evaluate)
        # (VSIM refuses EPSILON 0: ask for a hair more; `candidates` applies the exact threshold)
        within = max(threshold, 1e-6) if threshold is not None and threshold < MAX_DISTANCE else None
        return VectorQuery(vector, k=CANDIDATES, filter=model_filter(llm_string), distance_threshold=within)

    def _screen(
        self, text: str, hits: Sequence[Hit], llm_string: str, limit: float
    ) -> tuple[list[Candidate], list[Candidate], dict[str, Considered], list[KeyT]]:
        """This model's candidates, those within `limit` the verifier accepts, the others, and the
        keys of the accepted ones' entries (read next, in one round trip)."""
        cands = candidates(hits, llm_string, None)
        passing, others = screen(text, cands, limit, self.verifier)
        keys = [self.client.keys.cache_entry_of(self.name, c.member) for c in passing]
        return cands, passing, others, keys

    # --- sync ----------------------------------------------------------------------------------
    @overload
    def lookup_with_score(
        self, prompt: str, llm_string: str, *, threshold: float | None = None, explain: Literal[False] = False
    ) -> SemanticHit | None: ...

    @overload
    def lookup_with_score(
        self, prompt: str, llm_string: str, *, threshold: float | None = None, explain: Literal[True]
    ) -> Lookup: ...

    def lookup_with_score(
        self, prompt: str, llm_string: str, *, threshold: float | None = None, explain: bool = False
    ) -> SemanticHit | Lookup | None:
        """The nearest live entry of this model within `threshold` (default: the cache's) that the
        verifier accepts, or None. ``explain=True`` returns a `Lookup`: the hit and every candidate
        considered, nearest first, with what became of it (beyond the threshold, refused and why,
        gone), the nearest ones beyond the threshold included."""
        lookup = self._lookup(prompt, llm_string, threshold, effects=True, explain=explain)
        return lookup if explain else lookup.hit

    def _lookup(
        self, prompt: str, llm_string: str, threshold: float | None, *, effects: bool, explain: bool = False
    ) -> Lookup:
        limit = self.distance_threshold if threshold is None else threshold
        self._consistency.settle([self._pending_key(prompt, llm_string)])
        text = text_of(prompt)
        vector = self.embeddings.embed_query(text)
        started = time.perf_counter()  # the foreground report leaves the embedding out
        session, meta = self._open(vector)
        check_dims(vector, meta, "the semantic cache's embeddings")
        found = session.search(self._query(vector, llm_string, None if explain else limit))
        cands, passing, others, keys = self._screen(text, found, llm_string, limit)
        lookup = decide(cands, passing, self._sync_store().lookup_keys(keys) if keys else [], others)
        hit = lookup.hit
        if effects:
            if hit is None:  # the fill that follows a miss carries this vector
                self._recent.put(text, vector)
            self._count(hit)
            if hit is not None:
                self._after_hit(meta, hit, llm_string)
            elif self._hits is not None and self._hits.due():
                self.flush_hits()
            self.client.foreground.note("semantic", started)
        return lookup

    def _count(self, hit: SemanticHit | None) -> None:
        if self._hits is not None:
            self._hits.lookups.semantic(hit is not None, hit.distance if hit is not None else None)

    def _after_hit(self, meta: IndexMeta, hit: SemanticHit, llm_string: str) -> None:
        member = member_of(llm_string, hit.prompt)
        if self.refresh_on_hit and self.ttl:
            session, _ = self._open()
            drive(self._touch(meta, member), session.runner)
        if self._hits is not None and self._hits.add(member, llm_string, hit.prompt):
            self.flush_hits()

    def _touch(self, meta: IndexMeta, member: str) -> Any:
        assert self.ttl is not None
        replies = yield touch_calls(self.client.keys, self.name, meta, member, int(self.ttl * 1000))
        return replies

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        hit = self._lookup(prompt, llm_string, None, effects=True).hit
        return hit.generations if hit is not None else None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        with self.skipped.guard():
            payload = self._payload(prompt, llm_string, return_val)
            text = text_of(prompt)
            vector = self._recent.get(text) or self.embeddings.embed_query(text)
            _, meta = self._open(vector)  # the worker writes into an index that exists
            check_dims(vector, meta, "the semantic cache's embeddings")
            handles = self.client.producer.enqueue_many(
                [payload.model_copy(update={"vector": compact(vector)})], notify=self._consistency.enabled
            )
            self._consistency.add(self._pending_key(prompt, llm_string), handles)

    def clear(self, **kwargs: Any) -> None:
        """Remove this cache's entries; ``clear(llm_string=...)`` only that model's."""
        llm_string = clear_scope(kwargs)
        self._consistency.settle(None)
        self._sync_store().clear(self.name, llm_string)
        if llm_string is None:  # drop and re-create the index: no vector outlives its entry
            session, _ = self._open()
            session.drop()
            self._open()
        if self._hits is not None and llm_string is None:
            self._hits.drop()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every fill this object enqueued is applied; raises `WaitTimeout` (the fills
        stay pending) or `JobFailed` (a dead-lettered fill, reported once)."""
        self._consistency.writes.settle(None, self._consistency.timeout if timeout is None else timeout)

    def flush_hits(self) -> None:
        """Send the buffered hit counts now (refresh-ahead); a failure only loses counts."""
        if self._hits is not None:
            counts, sources = self._hits.take()
            try:
                if counts:
                    self._sync_store().record_hits(self.name, counts, sources)
                cachestats.record(self.client.redis, self.client.keys, self.name, self._hits.lookups.take())
            except (RedisUnavailable, PermissionDenied) as e:  # counting must never break a lookup
                log.warning("semantic cache: hit counts dropped (%s)", e)

    def evaluate(
        self,
        sample: Sequence[Labelled],
        thresholds: Sequence[float] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8),
    ) -> list[ThresholdStats]:
        """Hit and false-hit rates of each threshold on a labelled sample, against the live cache
        (no refresh, no hit counts); pick one with `best_threshold`."""
        nearest = [self._lookup(s.query, s.llm_string, MAX_DISTANCE, effects=False).hit for s in sample]
        return [threshold_stats(t, sample, nearest) for t in sorted(thresholds)]

    # --- asyncio -------------------------------------------------------------------------------
    @overload
    async def alookup_with_score(
        self, prompt: str, llm_string: str, *, threshold: float | None = None, explain: Literal[False] = False
    ) -> SemanticHit | None: ...

    @overload
    async def alookup_with_score(
        self, prompt: str, llm_string: str, *, threshold: float | None = None, explain: Literal[True]
    ) -> Lookup: ...

    async def alookup_with_score(
        self, prompt: str, llm_string: str, *, threshold: float | None = None, explain: bool = False
    ) -> SemanticHit | Lookup | None:
        lookup = await self._alookup(prompt, llm_string, threshold, explain)
        return lookup if explain else lookup.hit

    async def _alookup(self, prompt: str, llm_string: str, threshold: float | None, explain: bool) -> Lookup:
        limit = self.distance_threshold if threshold is None else threshold
        await self._consistency.asettle([self._pending_key(prompt, llm_string)])
        text = text_of(prompt)
        vector = await self.embeddings.aembed_query(text)
        session, meta = await self._aopen(vector)
        check_dims(vector, meta, "the semantic cache's embeddings")
        found = await session.asearch(self._query(vector, llm_string, None if explain else limit))
        cands, passing, others, keys = self._screen(text, found, llm_string, limit)
        store = await self._async_store()
        lookup = decide(cands, passing, await store.lookup_keys(keys) if keys else [], others)
        hit = lookup.hit
        self._count(hit)
        if hit is None:
            self._recent.put(text, vector)
            return lookup
        member = member_of(llm_string, hit.prompt)
        if self.refresh_on_hit and self.ttl:
            await adrive(self._touch(meta, member), await session.arunner())
        if self._hits is not None and self._hits.add(member, llm_string, hit.prompt):
            counts, sources = self._hits.take()
            try:
                await store.record_hits(self.name, counts, sources)
                await cachestats.arecord(
                    self.client.async_redis, self.client.keys, self.name, self._hits.lookups.take()
                )
            except (RedisUnavailable, PermissionDenied) as e:
                log.warning("semantic cache: hit counts dropped (%s)", e)
        return lookup

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        hit = (await self._alookup(prompt, llm_string, None, False)).hit
        return hit.generations if hit is not None else None

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        with self.skipped.guard():
            payload = self._payload(prompt, llm_string, return_val)
            text = text_of(prompt)
            vector = self._recent.get(text) or await self.embeddings.aembed_query(text)
            _, meta = await self._aopen(vector)
            check_dims(vector, meta, "the semantic cache's embeddings")
            payload = payload.model_copy(update={"vector": compact(vector)})
            handles = await self.client.aproducer.enqueue_many([payload], notify=self._consistency.enabled)
            await self._consistency.aadd(self._pending_key(prompt, llm_string), handles)

    async def aclear(self, **kwargs: Any) -> None:
        llm_string = clear_scope(kwargs)
        await self._consistency.asettle(None)
        await (await self._async_store()).clear(self.name, llm_string)
        if llm_string is None:
            session, _ = await self._aopen()
            runner = await session.arunner()
            await adrive(drop_index(self.client.keys, self.index, await runner.shard_tags()), runner)
            session.meta = None
            await self._aopen()

    # --- plumbing ------------------------------------------------------------------------------
    def _pending_key(self, prompt: str, llm_string: str) -> str:
        # Any entry of the model may answer a lookup: a read waits for this object's pending fills
        # of that model (not only of the same prompt), and for nothing else.
        return f"semantic:{self.name}:{member_of(llm_string, prompt).partition(':')[0]}"

    def _payload(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> CacheFillPayload:
        """The fill without its vector, checked against the limits before anything is embedded."""
        payload = CacheFillPayload(
            llm_string=llm_string,
            prompt=prompt,
            generations=codec.to_dicts(return_val),
            ttl=self.ttl,
            cache=self.name,
            embedder=self.embedder,
        )
        check_payload(payload, self.client.settings.limits)
        return payload


def resolve_embedder(names: Sequence[str], embedder: str | None) -> str | None:
    """The settings embedder named for worker-started jobs (checked to exist), or None: the app's
    embeddings alone, which is all a cache filled by the app needs."""
    if embedder is not None and embedder not in names:
        raise ConfigError(
            f"no embedder named {embedder!r} in settings.embedders (known: {sorted(names)}); add it under "
            "SLUICE_EMBEDDERS, or omit embedder= (needed only to warm the cache from the workers)"
        )
    return embedder

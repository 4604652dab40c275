"""The semantic LLM cache: a vector index over exact cache entries (built on `sluice.vectors`).

An entry is the exact entry ``ns:cache:<c>:<hl>:<hp>`` (its generations, version and TTL, set
atomically by cache_write.lua) plus one document in the vector index ``semcache.<c>`` whose id
is ``<hl>:<hp>``, whose text is the cache prompt, whose vector embeds the prompt's *text*
(`text_of`) and whose tag field ``llm`` is ``<hl>``. A lookup is a KNN / range query filtered by
``llm`` *inside* the query (another model's entries are never candidates), then one read of the
candidates' exact entries: a candidate whose entry expired, was cleared or is corrupted is
skipped, so an expired payload is never returned. Vectors go with their entry: RediSearch
documents get the entry's TTL; vector-set elements (which cannot expire) are swept by workers.
The sweep also takes the vectors of entries removed by ``clear(llm_string=...)``; on RediSearch
those stay until the next fill of the same prompt overwrites them (never returned meanwhile);
a whole-cache clear drops the index.

Distances are cosine distances ``1 - cos(a, b)`` in [0, 2] on both backends (RediSearch reports
them so; Vector Sets' scores are converted), so a threshold means the same thing on both.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import redis.exceptions as rex
from langchain_core.outputs import Generation

from sluice.embeddings.cache import EmbeddingsCache
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError, PermanentJobError, RetryableJobError, StoreCorrupted
from sluice.keys import Keys, digest
from sluice.models.prompts import text_of
from sluice.settings import Settings
from sluice.stores.cache_versions import CacheWrite
from sluice.stores.verify import ACCEPTED, Verifier, judge
from sluice.stores.versions import padded
from sluice.transport.runner import Call
from sluice.transport.translate import ServerErrors
from sluice.vectors.budget import Pacer
from sluice.vectors.documents import VERSION_WIDTH, DocumentError, DocWrite, Hit, check_vector
from sluice.vectors.filters import Filter, Tag
from sluice.vectors.manager import make_backend
from sluice.vectors.meta import IndexMeta
from sluice.vectors.schema import Algorithm, IndexSchema, MetadataField, VectorField
from sluice.vectors.vsets import VectorSetBackend
from sluice.vectors.writer import VectorWriter

INDEX_PREFIX: Final = "semcache."
LLM_FIELD: Final = "llm"
PROMPT_FIELD: Final = "prompt"
CANDIDATES: Final = 4
"""Nearest entries read per lookup: the nearest may have expired or been cleared."""
SWEEP_INTERVAL: Final = 30.0
"""Seconds between sweeps of one cache's vector set by one worker."""
SWEEP_SAMPLE: Final = 64


def index_name(cache: str) -> str:
    if len(cache) > 64 - len(INDEX_PREFIX):
        raise ConfigError(
            f"semantic cache name {cache!r} is too long (at most {64 - len(INDEX_PREFIX)} characters)"
        )
    return INDEX_PREFIX + cache


def semantic_schema(dims: int, *, algorithm: Algorithm = "hnsw", ef_runtime: int = 100) -> IndexSchema:
    """Cosine distance, float32 vectors, a tag field for the model; HNSW by default, FLAT on request."""
    vector = VectorField(dims=dims, algorithm=algorithm, metric="cosine", ef_runtime=ef_runtime)
    return IndexSchema(
        text_field=PROMPT_FIELD, vector=vector, metadata=(MetadataField(name=LLM_FIELD, type="tag"),)
    )


def model_filter(llm_string: str) -> Filter:
    """The filter that keeps one model's entries: evaluated inside the vector query."""
    return Tag(LLM_FIELD) == digest(llm_string)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A vector hit: the entry (`member` = ``<hl>:<hp>``), its cache prompt and its cosine distance."""

    member: str
    prompt: str
    distance: float


def candidates(hits: Sequence[Hit], llm_string: str, threshold: float | None) -> list[Candidate]:
    """Hits of this model within the threshold, nearest first (the model check repeats the filter's)."""
    prefix = digest(llm_string) + ":"
    return [
        Candidate(h.doc_id, h.text, h.distance)
        for h in hits
        if h.doc_id.startswith(prefix) and (threshold is None or h.distance <= threshold)
    ]


@dataclass(frozen=True, slots=True)
class SemanticHit:
    """What a semantic lookup served: the generations, how far the stored prompt was, and which it was."""

    generations: list[Generation]
    distance: float
    prompt: str


# --- choosing the hit: threshold, verifier, live entry (no I/O) ------------------------------------

Outcome = Literal["hit", "refused", "beyond threshold", "gone", "not needed"]


@dataclass(frozen=True, slots=True)
class Considered:
    """One vector candidate of a lookup and what became of it (`reason`: why the verifier refused)."""

    prompt: str
    distance: float
    outcome: Outcome
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Lookup:
    """`lookup_with_score(..., explain=True)`: the hit (or None) and every candidate, nearest first."""

    hit: SemanticHit | None
    considered: tuple[Considered, ...]


def screen(
    query: str, cands: Sequence[Candidate], limit: float, verifier: Verifier | None
) -> tuple[list[Candidate], dict[str, Considered]]:
    """The candidates within `limit` that the verifier accepts (nearest first), and the others."""
    passing: list[Candidate] = []
    others: dict[str, Considered] = {}
    for c in cands:
        if c.distance > limit:
            others[c.member] = Considered(c.prompt, c.distance, "beyond threshold")
            continue
        verdict = judge(verifier, query, text_of(c.prompt)) if verifier is not None else ACCEPTED
        if verdict.ok:
            passing.append(c)
        else:
            others[c.member] = Considered(c.prompt, c.distance, "refused", verdict.reason)
    return passing, others


def decide(
    cands: Sequence[Candidate],
    passing: Sequence[Candidate],
    found: Sequence[list[Generation] | None],
    others: dict[str, Considered],
) -> Lookup:
    """The nearest accepted candidate whose entry is still there is the hit."""
    hit: SemanticHit | None = None
    seen = dict(others)
    for c, generations in zip(passing, found, strict=True):
        if hit is not None:
            seen[c.member] = Considered(c.prompt, c.distance, "not needed")
        elif generations is None:
            seen[c.member] = Considered(c.prompt, c.distance, "gone", "the entry expired or was cleared")
        else:
            hit = SemanticHit(generations, c.distance, c.prompt)
            seen[c.member] = Considered(c.prompt, c.distance, "hit")
    return Lookup(hit, tuple(seen[c.member] for c in cands if c.member in seen))


# --- threshold measurement (no I/O) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Labelled:
    """One labelled lookup: the prompt asked, the model, and the stored prompt it *should* hit (None: none)."""

    query: str
    llm_string: str
    expected: str | None


@dataclass(frozen=True, slots=True)
class ThresholdStats:
    """How one threshold does on a labelled sample.

    `hit_rate` = right answers / lookups that should hit; `false_hit_rate` = wrong answers served
    / all lookups (what users see as a wrong cached answer).
    """

    threshold: float
    hits: int
    false_hits: int
    misses: int
    hit_rate: float
    false_hit_rate: float


def best_threshold(stats: Sequence[ThresholdStats], max_false_hit_rate: float = 0.0) -> ThresholdStats | None:
    """The threshold with the highest hit rate among those within the false-hit budget (largest on ties)."""
    ok = [s for s in stats if s.false_hit_rate <= max_false_hit_rate]
    return max(ok, key=lambda s: (s.hit_rate, s.threshold)) if ok else None


def threshold_stats(
    threshold: float, sample: Sequence[Labelled], nearest: Sequence[SemanticHit | None]
) -> ThresholdStats:
    hits = false_hits = misses = 0
    for s, hit in zip(sample, nearest, strict=True):
        if hit is None or hit.distance > threshold:
            misses += 1
        elif s.expected is not None and text_of(hit.prompt) == text_of(s.expected):
            hits += 1
        else:
            false_hits += 1
    positives = sum(1 for s in sample if s.expected is not None)
    return ThresholdStats(
        threshold, hits, false_hits, misses,
        hit_rate=hits / positives if positives else 0.0,
        false_hit_rate=false_hits / len(sample) if sample else 0.0,
    )  # fmt: skip


# --- refresh on hit, and the worker side ----------------------------------------------------------


def touch_calls(keys: Keys, cache: str, meta: IndexMeta, member: str, ttl_ms: int) -> list[Call]:
    """Refresh an entry's TTL: its exact entry, and its vector document where it is a key of its own."""
    entry = keys.cache_entry_of(cache, member)
    calls = [Call(("PEXPIRE", entry, ttl_ms), route=entry)]
    if meta.backend == "search":
        for generation in meta.writing:
            doc = keys.vector_doc(meta.index, generation, member)
            calls.append(Call(("PEXPIRE", doc, ttl_ms), route=doc))
    return calls


class SemanticWriter(VectorWriter):
    """Worker side: index the prompts of a batch of fills with the app's vectors, embedding only
    prompts the app never embedded (cache-warm, refresh-ahead): one embeddings call per embedder."""

    def __init__(
        self,
        redis: Any,
        settings: Settings,
        *,
        cluster: bool = False,
        registry: EmbedderRegistry | None = None,
        embeddings_cache: EmbeddingsCache | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__(
            redis,
            settings,
            cluster=cluster,
            registry=registry,
            embeddings_cache=embeddings_cache,
            pacer=pacer,
        )
        self._next_sweep: dict[str, float] = {}

    def write(self, writes: Sequence[CacheWrite]) -> None:
        metas = self._metas({w.cache for w in writes})
        vectors = self._embed(writes, metas)
        calls: list[Call] = []
        for w, vector in zip(writes, vectors, strict=True):
            meta = metas[w.cache]
            if w.version is None:
                raise PermanentJobError(
                    "a semantic cache entry needs a job version (it is written by workers)"
                )
            try:
                check_vector(vector, meta.index_schema)
            except DocumentError as e:
                raise PermanentJobError(f"semantic cache {w.cache!r}: {e}") from None
            member = f"{digest(w.llm_string)}:{digest(w.prompt)}"
            doc = DocWrite(
                member, padded(w.version), "upsert", w.prompt, {LLM_FIELD: digest(w.llm_string)}, vector
            )
            backend = make_backend(meta.backend, self.keys, [""])
            for generation in meta.writing:
                calls += backend.write_calls(meta, generation, [doc], self.tombstone_ttl_ms)
            if w.ttl:
                calls += touch_calls(self.keys, w.cache, meta, member, max(1, int(w.ttl * 1000)))[1:]
        # budget-sized pipelines: HNSW inserts run on Redis's one thread, beside the apps' lookups
        replies = self.send(calls)
        _raise_errors(replies)
        for cache, meta in metas.items():
            if time.monotonic() >= self._next_sweep.get(cache, 0.0):
                self._next_sweep[cache] = time.monotonic() + SWEEP_INTERVAL
                self.sweep(cache, meta)

    def sweep(self, cache: str, meta: IndexMeta, sample: int = SWEEP_SAMPLE) -> int:
        """Remove sampled vectors whose entry is gone (expired, cleared); returns how many.

        RediSearch documents expire with their entry; a vector set's elements cannot expire, so
        they are swept the way Redis expires keys: sample, delete the dead, again on later batches.
        Each delete is versioned just above the document it removes, so any later fill applies.
        """
        if meta.backend != "vsets":
            return 0
        sets = [self.keys.vector_set(meta.index, meta.generation, t) for t in meta.shards]
        sampled = self.runner.run([Call(("VRANDMEMBER", k, sample), route=k) for k in sets])
        members = sorted({_text(m) for reply in sampled if isinstance(reply, list) for m in reply})
        if not members:
            return 0
        backend = VectorSetBackend(self.keys)
        docs = [
            self.keys.vector_set_docs(meta.index, meta.generation, backend.shard_of(meta, m)) for m in members
        ]
        entries = [self.keys.cache_entry_of(cache, m) for m in members]
        checks = [Call(("EXISTS", e), route=e) for e in entries]
        checks += [Call(("HGET", d, m), route=d) for d, m in zip(docs, members, strict=True)]
        replies = self.runner.run(checks)
        exists, stored = replies[: len(members)], replies[len(members) :]
        deletes = [
            DocWrite(m, _successor(_text(doc)[:VERSION_WIDTH] if doc else ""), "delete")
            for m, alive, doc in zip(members, exists, stored, strict=True)
            if alive == 0
        ]
        calls = [
            c for g in meta.writing for c in backend.write_calls(meta, g, deletes, self.tombstone_ttl_ms)
        ]
        _raise_errors(self.runner.run(calls))
        return len(deletes)

    def _metas(self, caches: set[str]) -> dict[str, IndexMeta]:
        names = sorted(caches)
        keys = [self.keys.vector_meta(index_name(c)) for c in names]
        out: dict[str, IndexMeta] = {}
        for cache, key, raw in zip(
            names, keys, self.runner.run([Call(("GET", k), route=k) for k in keys]), strict=True
        ):
            if isinstance(raw, rex.ResponseError):
                raise StoreCorrupted(f"{key}: {raw}; delete that key")
            if not raw:
                raise PermanentJobError(
                    f"semantic cache {cache!r} has no vector index (it was dropped?); the app's "
                    "client.semantic_cache(...) creates it on first use"
                )
            out[cache] = IndexMeta.decode(raw, key)
        return out

    def _embed(self, writes: Sequence[CacheWrite], metas: dict[str, IndexMeta]) -> list[list[float]]:
        """Vectors in write order: the app's where the job carries one; the others embedded here,
        one embeddings call per settings embedder for the batch's new texts."""
        by_embedder: dict[str, list[int]] = defaultdict(list)
        out: list[list[float]] = [[] for _ in writes]
        for i, w in enumerate(writes):
            indexed_with = metas[w.cache].embedder
            if w.embedder and indexed_with and w.embedder != indexed_with:
                raise PermanentJobError(
                    f"semantic cache {w.cache!r} is indexed with embedder {indexed_with!r}, not {w.embedder!r}; "
                    "vectors of two embedders cannot share an index"
                )
            if w.vector is not None:
                out[i] = [float(x) for x in w.vector]
            elif not indexed_with or not w.embedder:
                raise PermanentJobError(
                    f"semantic cache {w.cache!r} holds the app's vectors (it was created without a settings "
                    "embedder), so a worker cannot embed into it. To warm it, name a settings embedder that "
                    "gives the app's vectors: client.semantic_cache(embeddings, embedder=NAME), NAME defined in "
                    "SLUICE_EMBEDDERS, on a new cache name or after cache.clear() (which re-creates the index)"
                )
            else:
                by_embedder[w.embedder].append(i)
        for name, positions in by_embedder.items():
            try:
                embedder = self.registry.get(name)
                fingerprint = self.registry.fingerprint(name)
            except ConfigError as e:
                raise PermanentJobError(str(e)) from None
            texts = [text_of(writes[i].prompt) for i in positions]
            try:
                vectors = self.embeddings.embed(fingerprint, embedder, texts)
            except Exception as e:  # the embedder's own errors: a model or network hiccup is worth a retry
                raise RetryableJobError(f"embedder {name!r} failed: {type(e).__name__}: {e}") from e
            for i, vector in zip(positions, vectors, strict=True):
                out[i] = vector
        return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _successor(version: str) -> str:
    """The smallest version above `version` (the lowest version if there is none)."""
    if len(version) != VERSION_WIDTH or "-" not in version:
        return padded("0-1")
    ms, seq = version.split("-")
    return padded(f"{int(ms)}-{int(seq) + 1}")


def _raise_errors(replies: Sequence[Any]) -> None:
    for reply in replies:
        if isinstance(reply, rex.ResponseError):
            if ServerErrors.matches(reply, ServerErrors.WRONGTYPE):
                raise StoreCorrupted(f"a semantic cache key has the wrong Redis type ({reply}); delete it")
            raise RetryableJobError(f"semantic cache write failed: {reply}")

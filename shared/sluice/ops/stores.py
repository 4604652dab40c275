"""What the stores hold, for operators: caches, vector indexes, conversations (bounded reads only).

Every number comes from a counter, an index or a fixed number of commands: ``FT._LIST``,
``FT.INFO``, ``ZCARD``/``ZCOUNT``/``ZREVRANGE`` with a limit, ``MEMORY USAGE`` of a few keys, ``INFO
memory``, the lookup counters of `sluice.ops.cachestats`, and at most `PENDING_SAMPLE` entries per
index stream. Never ``KEYS``, never a ``SCAN``: a number that has no counter (how many exact
cache entries there are) is reported as unavailable (None), not counted.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import redis.exceptions as rex

from sluice.errors import JobDecodeError, PermissionDenied, SluiceError
from sluice.jobs import codec
from sluice.keys import Keys
from sluice.ops import cachestats
from sluice.stores.semantic_cache import INDEX_PREFIX
from sluice.transport.runner import Call, Runner, drive
from sluice.transport.translate import translate_errors
from sluice.vectors.manager import index_info, read_meta
from sluice.vectors.meta import IndexMeta

RECENT_SESSIONS: Final = 10
PENDING_SAMPLE: Final = 256
"""Queued index jobs decoded per partition stream to count them per index; beyond, a lower bound."""
LOOKUP_MINUTES: Final = 60
_MB: Final = 1024 * 1024
_SEARCH_MEMORY: Final = (
    "inverted_sz_mb", "vector_index_sz_mb", "offset_vectors_sz_mb", "doc_table_size_mb",
    "sortable_values_size_mb", "key_table_size_mb", "tag_overhead_sz_mb", "text_overhead_sz_mb",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IndexSummary:
    name: str
    backend: str | None = None
    dims: int | None = None
    metric: str | None = None
    embedder: str | None = None
    generation: int | None = None
    migrating: bool = False
    documents: int | None = None
    memory_bytes: int | None = None  # index structures (RediSearch) or the vector sets and their docs
    pending_jobs: int | None = None
    pending_exact: bool = True  # False: more queued jobs than were examined; pending_jobs is a lower bound
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CacheSummary:
    name: str
    entries: int | None  # semantic entries (its index's documents); exact entries have no counter
    hot_entries: int  # entries with recorded hits (refresh-ahead candidates)
    memory_bytes: int | None
    semantic: IndexSummary | None
    lookups: cachestats.LookupStats


@dataclass(frozen=True, slots=True)
class SessionActivity:
    session_id: str
    last_ms: int
    messages: int


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    sessions: int
    active_last_hour: int | None
    active_last_day: int | None
    recent: list[SessionActivity]


@dataclass(frozen=True, slots=True)
class StoresSummary:
    at: float
    caches: list[CacheSummary]
    indexes: list[IndexSummary]
    conversations: ConversationSummary
    used_memory: int | None
    max_memory: int | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _t(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _pairs(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {_t(k): v for k, v in reply.items()}
    return {_t(k): v for k, v in zip(reply[::2], reply[1::2], strict=False)}


def _float(v: Any) -> float:
    try:
        return float(_t(v))
    except ValueError:  # RediSearch prints "nan" or "-nan" for empty sizes
        return 0.0


# --- vector indexes --------------------------------------------------------------------------


def listed_indexes(redis: Any, keys: Keys) -> list[str]:
    """Index names of this namespace that RediSearch lists (``FT._LIST``); [] without RediSearch."""
    pattern = re.compile(rf"^{re.escape(keys.namespace)}:vidx:([A-Za-z0-9_.-]{{1,64}}):g\d+(:\{{.*\}})?$")
    try:
        with translate_errors("list RediSearch indexes"):
            names = redis.execute_command("FT._LIST")
    except PermissionDenied:
        return []
    except SluiceError as e:
        if "unknown command" in str(e).lower():
            return []
        raise
    found = {m[1] for m in (pattern.match(_t(n)) for n in names or []) if m}
    return sorted(found)


def _memory(runner: Runner, keys: Keys, meta: IndexMeta) -> int | None:
    """Bytes of the index structures: FT.INFO sizes, or MEMORY USAGE of the vector sets and doc hashes."""
    if meta.backend == "search":
        aliases = [keys.vector_alias(meta.index, t) for t in runner.shard_tags()]
        replies = runner.run([Call(("FT.INFO", a), route=a) for a in aliases])
        total = 0.0
        for reply in replies:
            if isinstance(reply, rex.ResponseError):
                return None
            info = _pairs(reply)
            total += sum(_float(info.get(name, 0)) for name in _SEARCH_MEMORY)
        return int(total * _MB)
    names = [keys.vector_set(meta.index, meta.generation, t) for t in meta.shards]
    names += [keys.vector_set_docs(meta.index, meta.generation, t) for t in meta.shards]
    replies = runner.run([Call(("MEMORY", "USAGE", k), route=k) for k in names])
    return sum(int(r) for r in replies if isinstance(r, int))


def pending_index_jobs(redis: Any, keys: Keys, sample: int = PENDING_SAMPLE) -> tuple[Counter[str], bool]:
    """Queued index jobs per index name, from the first `sample` entries of each partition.

    Returns the counts and whether they are exact (every queued entry was examined).
    """
    counts: Counter[str] = Counter()
    exact = True
    with translate_errors("read queued index jobs"):
        for stream in keys.streams("index"):
            if not redis.xlen(stream):
                continue
            entries = redis.xrange(stream, count=sample)
            if len(entries) >= sample:
                exact = False
            for eid, fields in entries:
                try:
                    payload = codec.decode(stream, _t(eid), fields).envelope.payload
                except JobDecodeError:
                    continue
                counts[getattr(payload, "index", "?")] += 1
    return counts, exact


def index_summary(runner: Runner, keys: Keys, name: str, pending: Counter[str], exact: bool) -> IndexSummary:
    try:
        info = drive(index_info(keys, name, runner.shard_tags()), runner)
        meta = drive(read_meta(keys, name), runner)
        if info is None or meta is None:
            return IndexSummary(name, error="no such index (no metadata key)")
        vector = meta.index_schema.vector
        return IndexSummary(
            name, meta.backend, vector.dims, vector.metric, meta.embedder, meta.generation,
            set(meta.writing) != {meta.generation}, int(info["documents"]), _memory(runner, keys, meta),
            pending.get(name, 0), exact,
        )  # fmt: skip
    except SluiceError as e:
        return IndexSummary(name, error=str(e)[:300])


# --- caches and conversations ----------------------------------------------------------------


def cache_summary(redis: Any, keys: Keys, name: str, semantic: IndexSummary | None) -> CacheSummary:
    with translate_errors("read cache statistics"):
        hot = int(redis.zcard(keys.cache_hits(name)))
    lookups = cachestats.read(redis, keys, name, LOOKUP_MINUTES)
    entries = semantic.documents if semantic is not None and semantic.error is None else None
    memory = semantic.memory_bytes if semantic is not None else None
    return CacheSummary(name, entries, hot, memory, semantic, lookups)


def conversations(redis: Any, keys: Keys, recent: int = RECENT_SESSIONS) -> ConversationSummary:
    now_ms = int(time.time() * 1000)
    index = keys.history_sessions()
    with translate_errors("read conversation sessions"):
        pipe = redis.pipeline(transaction=False)
        pipe.zcard(index)
        pipe.zcount(index, now_ms - 3_600_000, "+inf")
        pipe.zcount(index, now_ms - 86_400_000, "+inf")
        pipe.zrange(index, 0, recent - 1, desc=True, withscores=True)
        total, hour, day, latest = pipe.execute(raise_on_error=False)
        for needed in (total, latest):
            if isinstance(needed, Exception):
                raise needed
        sessions = [(_t(member), int(score)) for member, score in latest]
        pipe = redis.pipeline(transaction=False)
        for session, _ in sessions:
            pipe.zcard(keys.history(session))
        sizes = pipe.execute(raise_on_error=False) if sessions else []
    activity = [
        SessionActivity(s, at, n if isinstance(n, int) else 0)
        for (s, at), n in zip(sessions, sizes, strict=True)
    ]
    return ConversationSummary(int(total), _optional(hour), _optional(day), activity)


def _optional(reply: Any) -> int | None:
    """A count the user may lack the right for (ZCOUNT is not in every ops ACL): None then."""
    return None if isinstance(reply, Exception) else int(reply)


def _server_memory(redis: Any) -> tuple[int | None, int | None]:
    try:
        with translate_errors("read INFO memory"):
            info = redis.info("memory")
    except SluiceError:
        return None, None
    if isinstance(info, dict) and "used_memory" not in info:  # a Cluster client: one dict per node
        nodes = [v for v in info.values() if isinstance(v, dict)]
        used = sum(int(n.get("used_memory", 0)) for n in nodes)
        cap = sum(int(n.get("maxmemory", 0)) for n in nodes)
        return used or None, cap or None
    return int(info.get("used_memory", 0)) or None, int(info.get("maxmemory", 0)) or None


def collect(
    redis: Any,
    keys: Keys,
    *,
    caches: Iterable[str] = ("default",),
    indexes: Iterable[str] = (),
    cluster: bool = False,
) -> StoresSummary:
    """Caches (the named ones plus every semantic cache RediSearch lists), indexes, conversations."""
    runner = Runner(redis, cluster=cluster)
    names = sorted({*indexes, *listed_indexes(redis, keys)})
    pending, exact = pending_index_jobs(redis, keys)
    summaries = {n: index_summary(runner, keys, n, pending, exact) for n in names}
    cache_names = list(
        dict.fromkeys([*caches, *(n[len(INDEX_PREFIX) :] for n in names if n.startswith(INDEX_PREFIX))])
    )
    cache_list = [cache_summary(redis, keys, c, summaries.get(INDEX_PREFIX + c)) for c in cache_names]
    plain = [s for n, s in summaries.items() if not n.startswith(INDEX_PREFIX)]
    used, cap = _server_memory(redis)
    notes = ["exact cache entries have no counter and are not counted (that would need a SCAN)"]
    if not exact:
        notes.append(f"queued index jobs: only the first {PENDING_SAMPLE} per partition were examined")
    return StoresSummary(time.time(), cache_list, plain, conversations(redis, keys), used, cap, notes)

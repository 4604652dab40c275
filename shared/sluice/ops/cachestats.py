"""Cache lookup counters: hits, misses and the semantic nearest-distance histogram, per minute.

A cache facade counts lookups in memory (`LookupCounts`, thread-safe) and flushes them with
`record` when it flushes its hit counts (about once a second): one pipeline of ``HINCRBY`` on
``ns:cache-meta:<c>:lookups:<minute>``, kept two hours. The dashboard reads the last minutes
with `read` (a fixed number of ``HGETALL``), so a hit rate never needs a scan.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sluice.keys import Keys
from sluice.transport.translate import translate_errors

KEEP_SECONDS: Final = 7200
BUCKET_WIDTH: Final = 0.05
BUCKETS: Final = 11
"""Cosine distance buckets of width 0.05 from 0 to 0.5, then one for everything farther."""


def bucket_of(distance: float) -> int:
    return min(max(int(distance / BUCKET_WIDTH), 0), BUCKETS - 1)


def bucket_labels() -> list[str]:
    edges = [f"{i * BUCKET_WIDTH:.2f}" for i in range(BUCKETS)]
    return [f"{a}-{b}" for a, b in itertools.pairwise(edges)] + [f">={edges[-1]}"]


class LookupCounts:
    """In-memory counts of one cache's lookups, taken and flushed together."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def exact(self, hit: bool) -> None:
        with self._lock:
            self._counts["hit" if hit else "miss"] += 1

    def semantic(self, hit: bool, nearest: float | None) -> None:
        """`nearest`: the cosine distance of the nearest entry (None when the cache had none)."""
        with self._lock:
            self._counts["sem_hit" if hit else "sem_miss"] += 1
            if nearest is not None:
                self._counts[f"d{bucket_of(nearest)}"] += 1

    def take(self) -> dict[str, int]:
        with self._lock:
            out, self._counts = dict(self._counts), Counter()
            return out


def _queue(pipe: Any, keys: Keys, cache: str, counts: dict[str, int]) -> None:
    key = keys.cache_lookups(cache, int(time.time() // 60))
    for name, n in counts.items():
        pipe.hincrby(key, name, n)
    pipe.expire(key, KEEP_SECONDS)


def record(redis: Any, keys: Keys, cache: str, counts: dict[str, int]) -> None:
    """Add counts to this minute's hash (one pipeline); nothing to do for empty counts."""
    if counts:
        pipe = redis.pipeline(transaction=False)
        _queue(pipe, keys, cache, counts)
        with translate_errors("record cache lookups"):
            pipe.execute()


async def arecord(redis: Any, keys: Keys, cache: str, counts: dict[str, int]) -> None:
    """`record` on a redis.asyncio client."""
    if counts:
        pipe = redis.pipeline(transaction=False)
        _queue(pipe, keys, cache, counts)
        with translate_errors("record cache lookups"):
            await pipe.execute()


@dataclass(frozen=True, slots=True)
class LookupStats:
    """Lookups of one cache over the last `minutes` (oldest first per minute)."""

    minutes: int
    hits: int = 0
    misses: int = 0
    semantic_hits: int = 0
    semantic_misses: int = 0
    distances: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    per_minute: list[int] = field(default_factory=list)  # lookups (exact + semantic) per minute

    @property
    def recorded(self) -> bool:
        return bool(self.hits or self.misses or self.semantic_hits or self.semantic_misses)

    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def semantic_hit_rate(self) -> float | None:
        total = self.semantic_hits + self.semantic_misses
        return self.semantic_hits / total if total else None


def _num(fields: dict[Any, Any], name: str) -> int:
    raw = fields.get(name.encode(), fields.get(name, 0))
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


def parse(replies: Sequence[dict[Any, Any]]) -> LookupStats:
    """HGETALL replies of consecutive minutes -> totals."""
    names = ("hit", "miss", "sem_hit", "sem_miss")
    totals = dict.fromkeys(names, 0)
    distances = [0] * BUCKETS
    per_minute = []
    for fields in replies:
        counts = {n: _num(fields, n) for n in names}
        for n in names:
            totals[n] += counts[n]
        per_minute.append(sum(counts.values()))
        for b in range(BUCKETS):
            distances[b] += _num(fields, f"d{b}")
    return LookupStats(
        len(replies),
        totals["hit"],
        totals["miss"],
        totals["sem_hit"],
        totals["sem_miss"],
        distances,
        per_minute,
    )


def read(redis: Any, keys: Keys, cache: str, minutes: int = 60) -> LookupStats:
    """The last `minutes` minutes of one cache's counters: `minutes` HGETALLs in one pipeline."""
    now = int(time.time() // 60)
    pipe = redis.pipeline(transaction=False)
    for m in range(now - minutes + 1, now + 1):
        pipe.hgetall(keys.cache_lookups(cache, m))
    with translate_errors("read cache lookups"):
        return parse(pipe.execute())

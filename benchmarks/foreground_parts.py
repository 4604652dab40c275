"""The foreground suite's pieces: variants, the timed lookups, the phases and the server's view.

A round times one exact-cache `lookup` (hit), one vector query (k = 10 on a fixed index of the
variant's backend, so idle and busy query the same data) and a raw redis-py GET (the floor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks import cachedata as cd
from benchmarks.timing import Samples

KINDS = ("exact", "vector", "raw-get")
KIND_LABELS = {
    "exact": "exact `lookup` (hit)",
    "vector": "vector query k=10",
    "raw-get": "raw redis-py GET (floor)",
}
SLOW_US = 1_000
DIMS = 384
CHECK_EVERY = 50  # lookup rounds between (untimed) backlog checks


@dataclass(frozen=True)
class Variant:
    """The document index's backend and the workers' governor."""

    backend: str = "search"  # RediSearch HNSW hash, or Vector Sets
    governed: bool = True
    duty_cycle: float = 0.5
    write_budget_ms: float = 0.5  # worker.write_budget_ms
    nice: int = 0
    note: str = ""

    def governor(self) -> dict[str, Any]:
        return {"enabled": self.governed, "duty_cycle": self.duty_cycle}


def _variants() -> dict[str, Variant]:
    out = {}
    for backend, label in (("search", "RediSearch HNSW (hash)"), ("vsets", "Vector Sets")):
        out[f"{backend}-off"] = Variant(
            backend,
            governed=False,
            write_budget_ms=2.0,
            note=f"{label}, governor off, 2 ms pipelines (the reference)",
        )
        for duty in (75, 50, 25, 10):
            out[f"{backend}-{duty}"] = Variant(
                backend,
                duty_cycle=duty / 100,
                note=f"{label}, duty cycle {duty}%, 0.5 ms pipelines, adaptive",
            )
    out["search-25-nice"] = Variant(
        "search", duty_cycle=0.25, nice=19, note="RediSearch, duty cycle 25%, worker processes at nice 19"
    )
    return out


VARIANTS = _variants()


@dataclass
class Phase:
    samples: dict[str, Samples] = field(default_factory=dict)
    seconds: float = 0.0
    windows: int = 0  # idle: the windows timed (those with nothing left to index)
    indexed: int = 0
    slow: list[tuple[float, str]] = field(default_factory=list)  # (µs, command) over SLOW_US
    server: dict[str, Any] = field(default_factory=dict)  # commandstats of the busy phase


def phase(name: str) -> Phase:
    return Phase(samples={k: Samples(f"foreground {name}", k, rounds=[[]]) for k in KINDS})


class Lookups:
    """One lookup of each kind per round, timed; the same keys and query vectors in every phase."""

    def __init__(
        self, client: Any, raw: Any, query_store: Any, query_vectors: list[list[float]], n: int
    ) -> None:
        names = cd.entities(n, seed=cd.SEED + 3)
        self.prompts = [cd.prompt(i, names) for i in range(n)]
        self.exact = client.llm_cache()
        self.keys = [client.keys.cache_entry("default", cd.LLM_STRING, p) for p in self.prompts]
        self.store = query_store
        self.vectors = query_vectors
        self.raw = raw
        self.client = client

    def fill(self) -> None:
        direct = self.client.llm_cache(write="direct")
        for i, p in enumerate(self.prompts):
            direct.update(p, cd.LLM_STRING, cd.generations(i))

    def round(self, i: int, into: Phase) -> None:
        k = i % len(self.prompts)
        clock = time.perf_counter_ns
        t0 = clock()
        self.exact.lookup(self.prompts[k], cd.LLM_STRING)
        t1 = clock()
        self.store.similarity_search_by_vector(self.vectors[i % len(self.vectors)], k=10)
        t2 = clock()
        self.raw.get(self.keys[k])
        t3 = clock()
        for kind, us in zip(KINDS, ((t1 - t0) / 1000, (t2 - t1) / 1000, (t3 - t2) / 1000), strict=True):
            into.samples[kind].rounds[0].append(us)


def backlog(raw: Any, streams: list[str]) -> int:
    pipe = raw.pipeline(transaction=False)
    for s in streams:
        pipe.xlen(s)
    return int(sum(pipe.execute()))


def slowlog(raw: Any) -> list[tuple[float, str]]:
    out = []
    for entry in raw.slowlog_get(1_000):
        cmd = entry.get("command", b"")
        text = cmd.decode(errors="replace") if isinstance(cmd, bytes) else str(cmd)
        out.append((float(entry["duration"]), " ".join(text.split()[:2])))
    return sorted(out, reverse=True)


def commandstats(raw: Any) -> dict[str, Any]:
    """Calls, mean and total server µs of the commands that took the most server time."""
    stats = raw.info("commandstats")
    top = sorted(stats.items(), key=lambda kv: -kv[1]["usec"])[:6]
    return {
        k.removeprefix("cmdstat_"): {
            "calls": v["calls"],
            "usec_per_call": v["usec_per_call"],
            "usec": v["usec"],
        }
        for k, v in top
    }


def server_busy_ms(raw: Any) -> float:
    return sum(float(v["usec"]) for v in raw.info("commandstats").values()) / 1000

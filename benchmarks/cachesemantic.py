"""The semantic case of the cache suite: fill three semantic caches, then look up a labelled sample.

Sizes grow in place (10k, then 90k more for 100k): each system is filled the way its users fill
it. sluice: `Client.enqueue` of cache-fill jobs naming the settings embedder, applied by the
worker processes (which embed and write; timed from the first enqueue to the last job applied).
Peers: their own `update` per entry, synchronously, with the vectors precomputed (so their fill
time excludes embedding). Lookups: every system answers the same labelled queries through its
LangChain-style `lookup`; which entry it served is read from the answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import redis as redis_py

from benchmarks import cachedata as cd
from benchmarks.cachesystems import (
    LABELS,
    NAMESPACE,
    RedisvlCache,
    Workers,
    client_for,
    drain,
    langchain_redis_semantic,
    missing_peer,
    wait_for_workers,
)
from benchmarks.common import Check, Report, fmt, markdown_table
from benchmarks.timing import Samples, ratio, rounds

OURS = "sluice-semantic"
PEERS = ("langchain-redis-semantic", "redisvl")
FILL_TIMEOUT = 3_600.0


def _fill_sluice(client: Any, cache: Any, names: list[str], first: int, last: int, chunk: int) -> float:
    from sluice.jobs.models import CacheFillPayload
    from sluice.stores import generations as codec

    t0 = time.monotonic()
    for start in range(first, last, chunk):
        client.enqueue([
            CacheFillPayload(
                llm_string=cd.LLM_STRING, prompt=cd.prompt(i, names), generations=codec.to_dicts(cd.generations(i)),
                cache=cache.name, embedder=cache.embedder,
            )
            for i in range(start, min(start + chunk, last))
        ])  # fmt: skip
    return drain(client, FILL_TIMEOUT) - t0


def _fill_peers(
    peers: dict[str, Any], embeddings: Any, names: list[str], first: int, last: int, chunk: int
) -> dict[str, float]:
    """Seconds each peer spent in its own `update` calls (vectors prepared beforehand, untimed)."""
    spent = dict.fromkeys(peers, 0.0)
    for start in range(first, last, chunk):
        stop = min(start + chunk, last)
        prompts = [cd.prompt(i, names) for i in range(start, stop)]
        gens = [cd.generations(i) for i in range(start, stop)]
        embeddings.prepare(prompts)
        for name, peer in peers.items():
            t0 = time.monotonic()
            for i, p in enumerate(prompts):
                peer.update(p, cd.LLM_STRING, gens[i])
            spent[name] += time.monotonic() - t0
        embeddings.forget(prompts)
    return spent


def _lookup(cache: Any, texts: list[str]) -> Callable[[int], Any]:
    def lookup(k: int) -> Any:
        return cache.lookup(texts[k], cd.LLM_STRING)

    return lookup


def run(url: str, opts: Any, report: Report, log: Any, embeddings: Any, embed_us: float) -> dict[str, Any]:
    redis_py.Redis.from_url(url).flushall()
    sizes = sorted(opts.semantic_sizes)
    names = cd.entities(sizes[-1] + opts.sample)
    llm = cd.LLM_STRING
    client = client_for(url)
    peers: dict[str, Any] = {}
    for name in PEERS:
        why = missing_peer(name)
        if name not in opts.systems:
            continue
        if why:
            report.notes.append(why)
        elif name == "redisvl":
            peers[name] = RedisvlCache.build(url, embeddings, opts.distance_threshold)
        else:
            peers[name] = langchain_redis_semantic(url, embeddings, opts.distance_threshold)
    results: list[dict[str, Any]] = []
    measurements: list[dict[str, Any]] = []
    with Workers(url, NAMESPACE, ["cache-fill"], opts.workers):
        wait_for_workers(client, opts.workers)
        # the settings embedder "hashing" (the same vectors): the workers embed the enqueued fills.
        # No verifier: this suite compares lookups at one threshold with the peers, which have none;
        # `--only semantic` measures the verifier on a labelled set of real paraphrases and near-misses
        ours = client.semantic_cache(
            embeddings, embedder="hashing", distance_threshold=opts.distance_threshold, verify=False
        )
        ours.lookup("open the index", llm)
        filled = 0
        for size in sizes:
            fills: dict[str, float] = {}
            log(f"#   semantic: filling {filled:,} -> {size:,} entries ...")
            if OURS in opts.systems:
                fills[OURS] = _fill_sluice(client, ours, names, filled, size, opts.fill_chunk)
                log(f"#   {OURS}: {size - filled:,} entries applied by the workers in {fills[OURS]:.1f} s")
            fills.update(_fill_peers(peers, embeddings, names, filled, size, opts.fill_chunk))
            for name in peers:
                log(f"#   {name}: {size - filled:,} entries written in {fills[name]:.1f} s")
            added, filled = size - filled, size
            sample = cd.labelled_sample(size, opts.sample, names)
            embeddings.prepare([q.text for q in sample], lists=True)
            texts = [q.text for q in sample]
            systems = {name: _lookup(cache, texts) for name, cache in [(OURS, ours), *peers.items()]}
            if OURS not in opts.systems:
                del systems[OURS]
            misses_before = embeddings.misses
            samples = rounds(f"semantic {size:,}", systems, range(len(sample)), opts.repeat, log)
            if embeddings.misses != misses_before:
                report.notes.append(
                    f"semantic {size:,}: {embeddings.misses - misses_before} lookups embedded"
                )
            entry = _summarize(report, size, added, samples, sample, fills)
            results.append(entry)
            measurements += [s.as_dict() | {"size": size} for s in samples.values()]
    client.close()
    report.notes.append(
        f"Semantic: {opts.sample} labelled lookups per size (half paraphrases of stored prompts, a quarter "
        "unseen entities, a quarter other questions about stored entities), threshold "
        f"{opts.distance_threshold} (cosine distance) for every system, one model (llm_string) in every "
        "cache. sluice: RediSearch HNSW (M 16, EF_RUNTIME 100) with the model as a tag filter inside the "
        "query; langchain-redis `RedisSemanticCache` and redisvl `SemanticCache`: their defaults (FLAT); "
        "redisvl with the model as a tag filter too. Hit rate = right entries / lookups that should hit; "
        "false-hit rate = wrong entries served / all lookups."
    )
    return {"sizes": results, "measurements": measurements}


def _summarize(
    report: Report,
    size: int,
    added: int,
    samples: dict[str, Samples],
    sample: list[cd.Query],
    fills: dict[str, float],
) -> dict[str, Any]:
    rows = []
    quality: dict[str, cd.Quality] = {}
    for name, s in samples.items():
        if s.ok:
            scored = quality[name] = cd.quality(sample, [cd.entry_of(r) for r in s.results])
            s.extra.update(
                hit_rate=scored.hit_rate, false_hit_rate=scored.false_hit_rate, fill_seconds=fills.get(name)
            )
        base = samples.get(OURS)
        q = quality.get(name)
        rows.append([
            LABELS[name], fmt(size), fmt(len(s.all)), f"**{fmt(s.p50, 1)}**", fmt(s.p99, 1),
            fmt(ratio(s.p50, base.p50), 2) if base and base.ok else "—",
            f"{q.hit_rate:.0%}" if q else "—", f"{q.false_hit_rate:.1%}" if q else "—",
            fmt(fills.get(name, math.nan), 1), fmt(ratio(added, fills.get(name, math.nan))),
            s.error or "ok",
        ])  # fmt: skip
    header = [
        "system", "entries", "lookups", "p50 µs", "p99 µs", "÷ sluice",
        "hit rate", "false-hit rate", f"fill s (+{added:,})", "fill entries/s", "status",
    ]  # fmt: skip
    report.tables.append(
        f"**semantic lookup at {size:,} entries (embedding excluded)**\n\n" + markdown_table(header, rows)
    )
    ours = samples.get(OURS)
    for name in PEERS:
        peer = samples.get(name)
        if ours and ours.ok and peer and peer.ok:
            r = ratio(peer.p50, ours.p50)
            report.checks.append(Check(f"semantic {size:,}: {name} / sluice (p50)", r, ">= 3", r >= 3))
            a, b = quality[OURS], quality[name]
            no_worse = a.hit_rate >= b.hit_rate and a.false_hit_rate <= b.false_hit_rate
            report.checks.append(
                Check(
                    f"semantic {size:,}: sluice hit rate - {name}'s (false hits {a.false_hit_rate:.1%} vs "
                    f"{b.false_hit_rate:.1%})",
                    a.hit_rate - b.hit_rate, ">= 0, false hits no higher", no_worse,
                )
            )  # fmt: skip
    return {
        "size": size,
        "fill_seconds": fills,
        "quality": {k: asdict(v) for k, v in quality.items()},
        "p50_us": {k: s.p50 for k, s in samples.items()},
        "p99_us": {k: s.p99 for k, s in samples.items()},
    }

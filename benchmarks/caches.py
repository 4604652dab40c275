"""Cache suite: sluice's LLM caches vs raw redis-py, langchain-redis, langchain-community and redisvl.

One server, one run, the same prompts, answers and embedder instance for every system:
- ``exact``: a hit of the exact cache (`lookup`), vs a hand-rolled GET + decode of the very value
  sluice stores, vs langchain-redis `RedisCache` and langchain-community `RedisCache`; plus
  sluice with its in-process cache (``local_cache=N``), hot.
- ``update``: what `update` costs the app: sluice enqueues (the workers write), the peers write
  synchronously; exact and semantic caches. Timed with no worker running, then once more while
  2 worker processes apply the fills on the same cores.
- ``semantic``: lookups of a labelled paraphrase sample at each size (embedding excluded: the
  query vectors are precomputed, and the embedder's own time is reported beside), hit and
  false-hit rates; sluice is filled through its workers, and the fill is timed too.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis as redis_py

from benchmarks import cachedata as cd
from benchmarks import cachesemantic
from benchmarks.cachesystems import (
    LABELS,
    NAMESPACE,
    RedisvlCache,
    Workers,
    client_for,
    drain,
    langchain_community_exact,
    langchain_redis_exact,
    langchain_redis_semantic,
    missing_peer,
    raw_entry_decoder,
    wait_for_workers,
)
from benchmarks.common import Check, Report, fmt, markdown_table, median
from benchmarks.timing import Samples, ratio, rounds, time_calls

EXACT_PEERS = ("langchain-redis", "langchain-community")
SEMANTIC_PEERS = ("langchain-redis-semantic", "redisvl")
FILL_TIMEOUT = 600.0


@dataclass
class Options:
    n: int = 2_000  # exact: distinct cached prompts, each looked up once per round
    repeat: int = 3  # rounds per case; systems take turns every 50 calls (order rotated each round)
    updates: int = 1_000  # update case: calls per system per round
    semantic_sizes: tuple[int, ...] = (10_000, 100_000)  # entries in each semantic cache
    sample: int = 400  # labelled lookups per semantic size (half should hit)
    distance_threshold: float = 0.15  # cosine distance, the same for every semantic cache
    workers: int = 2  # sluice worker processes
    fill_chunk: int = 2_000  # payloads per `Client.enqueue` when filling sluice's semantic cache
    producers: int = 64  # writes case: concurrent producers
    per: int = 30  # writes case: updates per producer and round
    cases: tuple[str, ...] = ("exact", "update", "writes", "semantic")
    systems: tuple[str, ...] = (
        "sluice", "sluice-local", "sluice-sync", "raw-get", "raw", "raw-set", "langchain-redis",
        "langchain-community", "sluice-semantic", "langchain-redis-semantic", "redisvl",
    )  # fmt: skip

    @classmethod
    def quick(cls) -> Options:
        return cls(n=300, repeat=1, updates=200, semantic_sizes=(2_000,), sample=200, per=5)


def _wanted(opts: Options, names: tuple[str, ...], report: Report) -> list[str]:
    out = []
    for name in names:
        if name not in opts.systems:
            continue
        why = missing_peer(name)
        if why:
            report.notes.append(why) if why not in report.notes else None
        else:
            out.append(name)
    return out


# --- exact lookups --------------------------------------------------------------------------------
def case_exact(url: str, opts: Options, report: Report, log: Any) -> dict[str, Samples]:
    from sluice.stores.exact_cache import VERSION_WIDTH

    redis_py.Redis.from_url(url).flushall()
    names = cd.entities(opts.n)
    prompts = [cd.prompt(i, names) for i in range(opts.n)]
    llm = cd.LLM_STRING
    client = client_for(url)
    filler = client.llm_cache(write="direct")
    for i, p in enumerate(prompts):
        filler.update(p, llm, cd.generations(i))
    cache, local = client.llm_cache(), client.llm_cache(local_cache=2 * opts.n)
    raw = redis_py.Redis.from_url(url)
    keys = [client.keys.cache_entry("default", llm, p) for p in prompts]
    decode = raw_entry_decoder(VERSION_WIDTH)
    candidates: dict[str, Any] = {
        "sluice": lambda i: cache.lookup(prompts[i], llm),
        "sluice-local": lambda i: local.lookup(prompts[i], llm),
        "raw-get": lambda i: raw.get(keys[i]),
        "raw": lambda i: decode(raw.get(keys[i])),
    }
    for name, build in (
        ("langchain-redis", langchain_redis_exact),
        ("langchain-community", langchain_community_exact),
    ):
        if name in _wanted(opts, EXACT_PEERS, report):
            peer = build(url)
            for i, p in enumerate(prompts):
                peer.update(p, llm, cd.generations(i))
            candidates[name] = lambda i, peer=peer: peer.lookup(prompts[i], llm)
    systems = {k: v for k, v in candidates.items() if k in opts.systems}
    for i in range(opts.n):  # the in-process cache is measured hot: every entry read once before
        local.lookup(prompts[i], llm)
    out = rounds("exact", systems, range(opts.n), opts.repeat, log)
    for name, s in out.items():
        if name != "raw-get" and s.ok and [cd.entry_of(r) for r in s.results] != list(range(opts.n)):
            s.error = "served a wrong entry or a miss for a cached prompt"
    local.close()
    cache.close()
    client.close()
    return out


# --- update ---------------------------------------------------------------------------------------
def case_update(url: str, opts: Options, report: Report, log: Any, embeddings: Any) -> dict[str, Samples]:
    """Every system timed with no worker running (the app's own cost, no CPU taken by workers on
    this small machine); then the workers start and apply the backlog (timed); then sluice once
    more while its 2 workers apply each fill at once, on the same cores as the app."""
    from sluice.stores import generations as codec

    redis_py.Redis.from_url(url).flushall()
    llm = cd.LLM_STRING
    names = cd.entities(opts.updates, seed=cd.SEED + 1)
    prompts = [cd.prompt(i, names) for i in range(opts.updates)]
    gens = [cd.generations(i) for i in range(opts.updates)]
    embeddings.prepare(prompts, lists=True)
    client = client_for(url)
    background, sync = client.llm_cache(), client.llm_cache(name="sync", write="direct")
    semantic = client.semantic_cache(embeddings, name="updates", distance_threshold=opts.distance_threshold)
    semantic.lookup(prompts[0], llm)  # opens (creates) the index outside the timing
    raw = redis_py.Redis.from_url(url)
    candidates: dict[str, Any] = {
        "sluice": lambda i: background.update(prompts[i], llm, gens[i]),
        "sluice-sync": lambda i: sync.update(prompts[i], llm, gens[i]),
        "raw-set": lambda i: raw.set(f"bench:raw:{i}", codec.encode(gens[i])),
        "sluice-semantic": lambda i: semantic.update(prompts[i], llm, gens[i]),
    }
    builders: dict[str, Callable[[], Any]] = {
        "langchain-redis": lambda: langchain_redis_exact(url),
        "langchain-community": lambda: langchain_community_exact(url),
        "langchain-redis-semantic": lambda: langchain_redis_semantic(
            url, embeddings, opts.distance_threshold
        ),
        "redisvl": lambda: RedisvlCache.build(url, embeddings, opts.distance_threshold),
    }
    for name in _wanted(opts, EXACT_PEERS + SEMANTIC_PEERS, report):
        peer = builders[name]()
        candidates[name] = lambda i, peer=peer: peer.update(prompts[i], llm, gens[i])
    out = rounds(
        "update",
        {k: v for k, v in candidates.items() if k in opts.systems},
        range(opts.updates),
        opts.repeat,
        log,
    )
    busy = {f"{k}-busy": candidates[k] for k in ("sluice", "sluice-semantic") if k in opts.systems}
    with Workers(url, NAMESPACE, ["cache-fill"], opts.workers):
        wait_for_workers(client, opts.workers)
        t0 = time.monotonic()
        backlog = drain(client, FILL_TIMEOUT) - t0
        queued = 2 * opts.updates * opts.repeat
        log(f"#   update: the workers applied the {queued:,} queued fills in {backlog:.2f} s")
        out.update(rounds("update", busy, range(opts.updates), 1, log))
        t0 = time.monotonic()
        background.flush()
        semantic.flush()
        applied = drain(client, FILL_TIMEOUT) - t0
    for name in busy:
        out[name].extra["applied_after_s"] = applied
    for name in ("sluice", "sluice-semantic"):
        if name in out:
            out[name].extra["backlog_applied_s"] = backlog
    log(f"#   update: the last fills were applied {applied:.2f} s after the last call")
    client.close()
    return out


# --- the report -----------------------------------------------------------------------------------
def _rows(samples: dict[str, Samples], base: str | None, base_label: str) -> list[list[str]]:
    rows = []
    for name, s in samples.items():
        b = samples.get(base) if base else None
        rows.append([
            LABELS[name], fmt(len(s.all)), s.round_medians(), f"**{fmt(s.p50, 1)}**", fmt(s.p99, 1),
            fmt(ratio(s.p50, b.p50), 2) if b and b.ok else "—", s.error or "ok",
        ])  # fmt: skip
    return rows


HEADER = ["system", "calls", "p50 µs per round", "p50 µs", "p99 µs"]


def summarize_exact(report: Report, s: dict[str, Samples]) -> None:
    report.tables.append(
        "**exact lookup, hit**\n\n"
        + markdown_table([*HEADER, "÷ raw GET + decode", "status"], _rows(s, "raw", "raw"))
    )
    p50 = {k: v.p50 for k, v in s.items() if v.ok}
    if "sluice" in p50 and "raw" in p50:
        r = ratio(p50["sluice"], p50["raw"])
        report.checks.append(Check("exact hit: sluice / raw GET + decode (p50)", r, "<= 1.2", r <= 1.2))
    if "sluice" in p50 and "langchain-redis" in p50:
        r = ratio(p50["langchain-redis"], p50["sluice"])
        report.checks.append(Check("exact hit: langchain-redis / sluice (p50)", r, ">= 2", r >= 2))
    if "sluice" in p50 and "langchain-community" in p50:
        r = ratio(p50["langchain-community"], p50["sluice"])
        report.checks.append(
            Check("exact hit: langchain-community / sluice (p50)", r, "> 1 (no target)", r > 1)
        )
    if "sluice-local" in p50 and "raw-get" in p50:
        r = ratio(p50["raw-get"], p50["sluice-local"])
        report.checks.append(Check("exact hit: raw GET / sluice local_cache hot (p50)", r, ">= 20", r >= 20))


def summarize_update(report: Report, s: dict[str, Samples], embed_us: float) -> None:
    report.tables.append(
        "**update (cost seen by the app)**\n\n"
        + markdown_table([*HEADER, "÷ sluice (background)", "status"], _rows(s, "sluice", "sluice"))
    )
    p50 = {k: v.p50 for k, v in s.items() if v.ok}
    for peer, ours in [(p, "sluice") for p in EXACT_PEERS] + [(p, "sluice-semantic") for p in SEMANTIC_PEERS]:
        if peer in p50 and ours in p50:
            r = ratio(p50[peer], p50[ours])
            report.checks.append(Check(f"update: {peer} / {ours} (p50)", r, ">= 5", r >= 5))
            if ours == "sluice-semantic" and not math.isnan(embed_us):
                r2 = ratio(p50[peer] + embed_us, p50[ours])
                report.checks.append(
                    Check(f"update: {peer} incl. its app-side embedding / {ours} (p50)", r2, ">= 5", r2 >= 5)
                )


def run(url: str, opts: Options, log: Any = None) -> Report:
    from sluice.embeddings.hashing import HashingEmbeddings

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    report = Report("caches")
    embeddings = cd.MemoEmbeddings(HashingEmbeddings())  # the one instance every system uses
    probe = [cd.prompt(i, cd.entities(200, seed=cd.SEED + 2)) for i in range(200)]
    embed_us = median(time_calls(embeddings.inner.embed_query, probe)[0])
    data: dict[str, Any] = {"options": asdict(opts), "embed_query_us": embed_us, "measurements": []}
    if "exact" in opts.cases:
        log("# caches/exact ...")
        s = case_exact(url, opts, report, log)
        summarize_exact(report, s)
        data["measurements"] += [v.as_dict() for v in s.values()]
    if "update" in opts.cases:
        log("# caches/update ...")
        s = case_update(url, opts, report, log, embeddings)
        summarize_update(report, s, embed_us)
        data["measurements"] += [v.as_dict() for v in s.values()]
    if "writes" in opts.cases:
        from benchmarks.caches_writes import cache_cases

        data["writes"] = cache_cases(url, opts, report, log)
    if "semantic" in opts.cases:
        log("# caches/semantic ...")
        data["semantic"] = cachesemantic.run(url, opts, report, log, embeddings, embed_us)
        data["measurements"] += data["semantic"]["measurements"]
    report.notes += [
        f"Latencies are per call, measured in this one Python process (perf_counter_ns) against the same "
        f"embedded server; {opts.repeat} round(s) per case, systems taking "
        "turns every 50 calls (order rotated per round); "
        "p50/p99 pool every round. Shared 2-core machine: compare ratios within one run.",
        "raw GET + decode reads the very value sluice stores and builds the LangChain generations with "
        "the same allow-listed decoder (`sluice.stores.generations.decode`); sluice adds key hashing, the "
        "read-your-writes check and hit counting (flushed about once a second) on top.",
        f"Embedder: sluice's `HashingEmbeddings` (256 dims), one instance for every system; one "
        f"`embed_query` costs **{fmt(embed_us, 1)} µs** here and is excluded from every semantic lookup "
        "and update timing (vectors precomputed), which flatters the peers' synchronous updates: they "
        "embed in the app, sluice's workers embed in the background.",
        "Every answer served is checked: it must be the entry asked for (exact) or is scored against "
        "the labelled sample (semantic). langchain-community's `RedisCache.clear()` runs FLUSHDB and is "
        "never called here.",
    ]
    report.data = data
    return report

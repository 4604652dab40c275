"""Foreground suite (DESIGN rule 7): the app's lookup latency while workers index at full speed.

Per variant (a worker or index setting), on one server: fill an exact and a semantic cache, start
2 sluice worker processes, and time lookups idle (workers running, nothing to do); then enqueue
a few thousand ``index`` jobs through `client.vectorstore(...).add_texts` (the hashing embedder,
named, so the workers embed) into an HNSW index, and time the same lookups while the workers
index them, until the backlog is gone. Reported: p50/p99 idle and busy per lookup kind, and p99
busy / idle (target <= 2). A raw redis-py GET is timed alongside as the floor: what any client
sees from a busy server on this machine. The server's slow log (commands over 1 ms) during the
busy phase says whether single write commands block Redis's main thread.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis as redis_py

from benchmarks import cachedata as cd
from benchmarks.cachesystems import NAMESPACE, Workers, client_for, drain, wait_for_workers
from benchmarks.common import Check, Report, fmt, markdown_table
from benchmarks.timing import Samples, ratio

KINDS = ("exact", "semantic", "raw-get")
KIND_LABELS = {
    "exact": "exact `lookup` (hit)",
    "semantic": "semantic `lookup` (embedding excluded)",
    "raw-get": "raw redis-py GET (floor)",
}
SLOW_US = 1_000
DIMS = 256  # the settings embedder "hashing": HashingEmbeddings() defaults
CHECK_EVERY = 50  # lookup rounds between (untimed) backlog checks


@dataclass(frozen=True)
class Variant:
    """What the workers and the document index are configured with."""

    backend: str = "search"  # the document index's and the semantic cache's vector backend
    write_budget_ms: float = 50.0  # worker.write_budget_ms
    ef_construction: int = 200  # HNSW build effort of the document index
    algorithm: str = "hnsw"  # of the document index
    app_embeds: bool = False  # the app sends vectors (the workers do not embed)
    nice: int = 0  # the worker processes' CPU priority (os.nice): > 0 yields to the app and Redis
    pin: bool = False  # Redis and the app on one CPU, the workers on the other(s)
    note: str = ""


VARIANTS = {
    "default": Variant(note="defaults: RediSearch HNSW (M 16, EF_CONSTRUCTION 200), write budget 50 ms"),
    "budget-5ms": Variant(write_budget_ms=5.0, note="worker.write_budget_ms = 5"),
    "budget-1ms": Variant(
        write_budget_ms=1.0, note="worker.write_budget_ms = 1 (pipelines of 8 writes, the minimum)"
    ),
    "ef-64": Variant(ef_construction=64, note="document index EF_CONSTRUCTION 64"),
    "flat": Variant(algorithm="flat", note="document index FLAT (a cheap insert): is HNSW the cost?"),
    "app-embeds": Variant(
        app_embeds=True, note="the app embeds, the workers only write: is worker CPU the cost?"
    ),
    "nice": Variant(nice=19, note="worker processes at nice 19 (the OS runs Redis and the app first)"),
    "nice+budget-1ms": Variant(nice=19, write_budget_ms=1.0, note="nice 19 and worker.write_budget_ms = 1"),
    "pinned+budget-1ms": Variant(
        pin=True,
        write_budget_ms=1.0,
        note="Redis and the app pinned to CPU 0, workers to the others; budget 1 ms",
    ),
    "vsets": Variant(backend="vsets", note="Vector Sets backend (VADD in the versioned Lua write)"),
}


@dataclass
class Options:
    documents: int = 20_000  # documents indexed in the busy phase
    docs_per_job: int = 5  # -> documents / docs_per_job index jobs
    cached: int = 500  # entries in each cache, looked up in turn
    idle_rounds: int = 3_000  # lookup rounds (one of each kind) in the idle phase, over all cycles
    cycles: int = 3  # idle window + busy window, alternated, so both see the same outside load
    max_busy_rounds: int = 50_000
    workers: int = 2
    distance_threshold: float = 0.15
    variants: tuple[str, ...] = ("default", "budget-1ms", "nice", "nice+budget-1ms", "flat", "vsets")
    repeat: int = 1  # accepted for the runner's --repeat; one busy phase per variant
    systems: tuple[str, ...] = ("sluice",)  # accepted for the runner's --systems

    @classmethod
    def quick(cls) -> Options:
        return cls(documents=2_000, cached=200, idle_rounds=300, cycles=1, variants=("default",))


@dataclass
class Phase:
    samples: dict[str, Samples] = field(default_factory=dict)
    seconds: float = 0.0
    indexed: int = 0
    slow: list[tuple[float, str]] = field(default_factory=list)  # (µs, command) over SLOW_US
    server: dict[str, Any] = field(default_factory=dict)  # commandstats of the busy phase


def _doc(i: int, names: list[str]) -> str:
    return f"{names[i]}: notes on item {i}. " + cd.prompt(i, names) + " " + cd.answer_text(i)[10:120]


class Lookups:
    """One lookup of each kind per round, timed; the same prompts in every phase."""

    def __init__(self, client: Any, raw: Any, embeddings: Any, opts: Options, variant: Variant) -> None:
        names = cd.entities(opts.cached, seed=cd.SEED + 3)
        self.prompts = [cd.prompt(i, names) for i in range(opts.cached)]
        self.queries = [cd.prompt(i, names, paraphrase=True) for i in range(opts.cached)]
        embeddings.prepare(self.prompts + self.queries, lists=True)
        self.exact = client.llm_cache()
        self.semantic = client.semantic_cache(  # "hashing": the workers embed the enqueued fills
            embeddings,
            embedder="hashing",
            backend=variant.backend,
            distance_threshold=opts.distance_threshold,
        )
        self.keys = [client.keys.cache_entry("default", cd.LLM_STRING, p) for p in self.prompts]
        self.raw = raw
        self.client = client

    def fill(self) -> None:
        from sluice.jobs.models import CacheFillPayload
        from sluice.stores import generations as codec

        sync = self.client.llm_cache(write="direct")
        self.semantic.lookup("open the index", cd.LLM_STRING)
        payloads = []
        for i, p in enumerate(self.prompts):
            sync.update(p, cd.LLM_STRING, cd.generations(i))
            payloads.append(
                CacheFillPayload(
                    llm_string=cd.LLM_STRING,
                    prompt=p,
                    generations=codec.to_dicts(cd.generations(i)),
                    cache=self.semantic.name,
                    embedder=self.semantic.embedder,
                )
            )
        self.client.enqueue(payloads)

    def round(self, i: int, phase: Phase) -> None:
        k = i % len(self.prompts)
        clock = time.perf_counter_ns
        t0 = clock()
        self.exact.lookup(self.prompts[k], cd.LLM_STRING)
        t1 = clock()
        self.semantic.lookup(self.queries[k], cd.LLM_STRING)
        t2 = clock()
        self.raw.get(self.keys[k])
        t3 = clock()
        for kind, us in zip(KINDS, ((t1 - t0) / 1000, (t2 - t1) / 1000, (t3 - t2) / 1000), strict=True):
            phase.samples[kind].rounds[0].append(us)


def _phase(name: str) -> Phase:
    return Phase(samples={k: Samples(f"foreground {name}", k, rounds=[[]]) for k in KINDS})


def _backlog(raw: Any, streams: list[str]) -> int:
    pipe = raw.pipeline(transaction=False)
    for s in streams:
        pipe.xlen(s)
    return int(sum(pipe.execute()))


def _slowlog(raw: Any) -> list[tuple[float, str]]:
    out = []
    for entry in raw.slowlog_get(1_000):
        cmd = entry.get("command", b"")
        text = cmd.decode(errors="replace") if isinstance(cmd, bytes) else str(cmd)
        out.append((float(entry["duration"]), " ".join(text.split()[:2])))
    return sorted(out, reverse=True)


def _commandstats(raw: Any) -> dict[str, Any]:
    """Calls and mean server µs of the commands that ran most often (writes are EVALSHA)."""
    stats = raw.info("commandstats")
    top = sorted(stats.items(), key=lambda kv: -kv[1]["calls"])[:8]
    return {
        k.removeprefix("cmdstat_"): {"calls": v["calls"], "usec_per_call": v["usec_per_call"]} for k, v in top
    }


def run_variant(url: str, opts: Options, name: str, embeddings: Any, log: Any) -> tuple[Phase, Phase]:
    """`opts.cycles` x (idle window, then a busy window of documents / cycles), so that both see
    the same outside load on a shared machine; samples pooled per phase."""
    variant = VARIANTS[name]
    raw = redis_py.Redis.from_url(url)
    raw.flushall()
    client = client_for(url)
    lookups = Lookups(client, raw, embeddings, opts, variant)
    names = cd.entities(opts.documents, seed=cd.SEED + 4)
    texts = [_doc(i, names) for i in range(opts.documents)]
    idle, busy = _phase("idle"), _phase("busy")
    streams = [str(s) for s in client.keys.streams("index")]
    pinned = Pinning(raw) if variant.pin else None
    workers = Workers(
        url, NAMESPACE, ["cache-fill", "index"], opts.workers, nice=variant.nice,
        cpus=pinned.worker_cpus if pinned else None, write_budget_ms=variant.write_budget_ms,
    )  # fmt: skip
    try:
        with workers:
            wait_for_workers(client, opts.workers)
            lookups.fill()
            drain(client, 600)
            store = _store(client, variant, opts)
            for i in range(opts.cached):  # warm every path once, untimed
                lookups.round(i, _phase("warm"))
            raw.config_set("slowlog-max-len", 1_000)
            raw.config_resetstat()
            per_cycle = -(-len(texts) // opts.cycles)
            for cycle in range(opts.cycles):
                t0 = time.monotonic()
                for i in range(opts.idle_rounds // opts.cycles):
                    lookups.round(i, idle)
                idle.seconds += time.monotonic() - t0
                part = range(cycle * per_cycle, min((cycle + 1) * per_cycle, len(texts)))
                _busy(
                    raw,
                    streams,
                    store,
                    lookups,
                    busy,
                    [texts[i] for i in part],
                    [f"d{i}" for i in part],
                    opts,
                )
            busy.server = _commandstats(raw)
            busy.slow.sort(reverse=True)
            drain(client, 600)
    finally:
        if pinned:
            pinned.restore()
    rate = busy.indexed / max(busy.seconds, 1e-9)
    log(f"#   foreground/{name}: idle {_line(idle)}")
    log(f"#   foreground/{name}: busy {_line(busy)}; {rate:,.0f} docs/s")
    log(f"#   server: {busy.server}; slowest: {busy.slow[:5]} ({len(busy.slow)} over {SLOW_US} µs)")
    client.close()
    return idle, busy


def _busy(
    raw: Any, streams: list[str], store: Any, lookups: Lookups, busy: Phase, texts: list[str], ids: list[str],
    opts: Options,
) -> None:  # fmt: skip
    """Enqueue `texts`, then time lookups until the workers have indexed them all."""
    for start in range(0, len(texts), 2_000):
        store.add_texts(texts[start : start + 2_000], ids=ids[start : start + 2_000])
    raw.config_set("slowlog-log-slower-than", SLOW_US)
    raw.slowlog_reset()
    left = before = _backlog(raw, streams)
    t0 = time.monotonic()
    i = 0
    while (left or not i) and i < opts.max_busy_rounds:  # at least one round
        lookups.round(i, busy)
        i += 1
        if i % CHECK_EVERY == 0:
            left = _backlog(raw, streams)
    busy.seconds += time.monotonic() - t0
    busy.indexed += (before - left) * opts.docs_per_job
    busy.slow += _slowlog(raw)
    raw.config_set("slowlog-log-slower-than", 10_000)


class Pinning:
    """Redis and this (the app) process on CPU 0, the workers on the others; undone by `restore`.

    Only for a server this machine runs (the runner's embedded one): its pid comes from INFO.
    """

    def __init__(self, raw: Any) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise RuntimeError("pinning needs at least 2 CPUs")
        self.all = set(cpus)
        self.server_pid = int(raw.info("server")["process_id"])
        self.worker_cpus = tuple(cpus[1:])
        os.sched_setaffinity(self.server_pid, {cpus[0]})
        os.sched_setaffinity(0, {cpus[0]})

    def restore(self) -> None:
        os.sched_setaffinity(self.server_pid, self.all)
        os.sched_setaffinity(0, self.all)


def _store(client: Any, variant: Variant, opts: Options) -> Any:
    from sluice.vectors.schema import IndexSchema

    schema = IndexSchema.for_dims(DIMS, ef_construction=variant.ef_construction, algorithm=variant.algorithm)
    embeddings: Any = "hashing"
    if variant.app_embeds:
        from sluice.embeddings.hashing import HashingEmbeddings

        embeddings = HashingEmbeddings()
    return client.vectorstore(
        "fg-docs", embeddings, schema=schema, backend=variant.backend, batch_size=opts.docs_per_job,
        read_your_writes=False,
    )  # fmt: skip


def _line(phase: Phase) -> str:
    return ", ".join(f"{k} p50 {fmt(s.p50, 0)} p99 {fmt(s.p99, 0)} µs" for k, s in phase.samples.items())


def run(url: str, opts: Options, log: Any = None) -> Report:
    from sluice.embeddings.hashing import HashingEmbeddings

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    report = Report("foreground")
    embeddings = cd.MemoEmbeddings(HashingEmbeddings())
    rows, measurements = [], []
    for name in opts.variants:
        log(f"# foreground/{name} ...")
        try:
            idle, busy = run_variant(url, opts, name, embeddings, log)
        except Exception as e:  # one failing variant must not lose the others' numbers
            measurements.append({"variant": name, "ok": False, "error": f"{type(e).__name__}: {e}"[:500]})
            rows.append([name, "—", "—", "—", "—", "—", "—", "—", "—", "—", f"{type(e).__name__}: {e}"[:200]])
            continue
        rate = busy.indexed / busy.seconds if busy.seconds else float("nan")
        slow = f"{len(busy.slow)}" + (f" (max {busy.slow[0][0] / 1000:.1f} ms)" if busy.slow else "")
        write_us = fmt(busy.server.get("evalsha", {}).get("usec_per_call", float("nan")), 0)
        for kind in KINDS:
            i, b = idle.samples[kind], busy.samples[kind]
            r = ratio(b.p99, i.p99)
            rows.append([
                name, KIND_LABELS[kind], fmt(len(b.all)), fmt(i.p50, 0), fmt(i.p99, 0), fmt(b.p50, 0),
                f"**{fmt(b.p99, 0)}**", f"**{fmt(r, 2)}**", fmt(rate), *((write_us, slow) if kind == "exact" else ("", "")),
            ])  # fmt: skip
            if kind != "raw-get":
                report.checks.append(Check(f"{name}: {kind} lookup p99 busy / idle", r, "<= 2", r <= 2))
            measurements.append({
                "variant": name, "kind": kind, "ok": b.ok and i.ok, "idle": i.as_dict(), "busy": b.as_dict(),
                "p99_ratio": r, "docs_per_s": rate, "busy_seconds": busy.seconds,
            })  # fmt: skip
        measurements[-1].update(slowlog=busy.slow[:50], server=busy.server)
    header = [
        "variant", "lookup", "busy lookups", "idle p50 µs", "idle p99 µs", "busy p50 µs", "busy p99 µs",
        "p99 busy ÷ idle", "docs indexed/s", "server µs per write (mean)", "server commands > 1 ms",
    ]  # fmt: skip
    report.tables.append(markdown_table(header, rows))
    report.notes += [f"`{n}`: {VARIANTS[n].note}" for n in opts.variants]
    report.notes.append(
        f"{opts.workers} worker processes; {opts.documents:,} documents in {opts.documents // opts.docs_per_job:,} "
        f"index jobs; {opts.cached} entries in each cache; idle = workers running with nothing to do "
        f"({opts.idle_rounds:,} rounds); busy = from the end of the enqueue until the index backlog is empty. "
        "All on one 2-core machine: the app, Redis and both workers share the cores."
    )
    report.data = {"options": asdict(opts), "measurements": measurements}
    return report

"""Checkpoints suite: sluice's LangGraph checkpointer and store vs langgraph-checkpoint-redis 0.5.2,
on one server, in one run.

Cases (each system gets the same workload, the same server, the same client process):
- ``put`` / ``put_writes``: what LangGraph's calls cost the app, timed per call, over chains of
  checkpoints (each step adds a chat message to the state). sluice enqueues one job per call (a
  worker process applies it meanwhile); `RedisSaver` writes its JSON documents and indexes in the call.
- ``get_tuple``: the latest checkpoint of a thread with its pending writes, once everything is applied.
- ``agent``: a 10-step `StateGraph` run (a put and its writes per step), then `get_state` (for
  sluice: the read waits until the workers applied the run).
- ``store put``: a put of an item with an indexed text; sluice with the embedder named (the workers
  embed), sluice with an `Embeddings` instance (the app embeds), `RedisStore` (embeds in `put`).
- ``store search``: a query with a filter matching 10% of the items, limit 10: latency, recall
  against an exact search of the filtered items, and how often fewer than `limit` came back.

Needs the ``langgraph`` and ``bench`` extras (``pip install -e '.[langgraph,bench]'``).
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from langchain_core.messages import HumanMessage

from benchmarks import checkpoint_systems as cs
from benchmarks.common import Check, Report, fmt, markdown_table, percentile


def _default_embedder() -> str:
    from sluice.embeddings.minilm import available

    return "minilm" if available() else "hashing"


@dataclass
class Options:
    threads: int = 40  # checkpoint chains
    steps: int = 10  # checkpoints per chain: threads x steps puts, as many put_writes
    reads: int = 400  # get_tuple calls
    agent_runs: int = 20
    agent_steps: int = 10
    items: int = 1000  # store items
    groups: int = 10  # the filter matches one group: 1/groups of the items
    queries: int = 100
    limit: int = 10
    embedder: str = field(default_factory=_default_embedder)
    # accepted because the runner may set them
    n: int = 0
    repeat: int = 1
    latency_seconds: float = 0.0
    systems: tuple[str, ...] = ("sluice", cs.PEER)

    @classmethod
    def quick(cls) -> Options:
        return cls(threads=4, steps=5, reads=40, agent_runs=3, items=200, queries=20, embedder="hashing")


@dataclass
class Timed:
    case: str
    system: str
    samples_ms: list[float] = field(default_factory=list, repr=False)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples_ms)

    def p(self, q: float) -> float:
        return percentile(self.samples_ms, q)

    @property
    def mean(self) -> float:
        return sum(self.samples_ms) / len(self.samples_ms) if self.samples_ms else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "system": self.system,
            "n": len(self.samples_ms),
            "p50_ms": self.p(50),
            "p99_ms": self.p(99),
            "mean_ms": self.mean,
            "error": self.error,
            "ok": self.ok,
            **self.extra,
        }


def timed(fn: Callable[[], Any], samples: list[float]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    samples.append((time.perf_counter() - t0) * 1000)
    return out


class Suite:
    def __init__(self, url: str, opts: Options, log: Callable[[str], None]) -> None:
        self.url, self.opts, self.log = url, opts, log
        self.results: list[Timed] = []

    def record(self, case: str, system: str, body: Callable[[Timed], None]) -> Timed:
        """Run one system's case with the garbage collector paused; an error is kept, not raised."""
        t = Timed(case, system)
        gc.collect()
        gc.disable()
        try:
            body(t)
        except Exception as e:  # one failing system must not lose the others' numbers
            t.error = f"{type(e).__name__}: {e}"[:1000]
        finally:
            gc.enable()
        self.results.append(t)
        self.log(f"#   {case} {system}: p50 {fmt(t.p(50), 3)} ms mean {fmt(t.mean, 3)} ms {t.error or ''}")
        return t

    # --- checkpointer ------------------------------------------------------------------------------
    def checkpointer(self, name: str, system: Any) -> None:
        opts, saver = self.opts, system.saver
        chains = [cs.chain(saver, cs.unique_thread(f"b{i}"), opts.steps) for i in range(opts.threads)]
        writes_t = Timed("put_writes", name)

        def puts(t: Timed) -> None:
            for chain in chains:
                for step, p in enumerate(chain):
                    saved = timed(
                        lambda p=p: saver.put(p.config(), p.checkpoint, p.metadata, p.versions), t.samples_ms
                    )
                    w = cs.writes_of(p.thread, step)
                    timed(
                        lambda s=saved, w=w, n=step: saver.put_writes(s, w, task_id=f"task-{n}"),
                        writes_t.samples_ms,
                    )

        with system.paused():
            self.record("put", name, puts)
        self.results.append(writes_t)
        threads = [c[0].thread for c in chains]
        started = time.perf_counter()
        system.settle_threads(threads)
        settle_s = time.perf_counter() - started

        def reads(t: Timed) -> None:
            wrong = 0
            for i in range(opts.reads):
                chain = chains[i % len(chains)]
                config = {"configurable": {"thread_id": chain[0].thread, "checkpoint_ns": ""}}
                got = timed(lambda c=config: saver.get_tuple(c), t.samples_ms)
                if (
                    got is None
                    or got.checkpoint["id"] != chain[-1].checkpoint["id"]
                    or len(got.pending_writes) != 2
                ):
                    wrong += 1
            t.extra["wrong"] = wrong
            if wrong:
                t.error = f"{wrong} reads did not return the latest checkpoint and its 2 writes"

        self.record("get_tuple", name, reads).extra["settle_s"] = settle_s

    def agent(self, name: str, system: Any) -> None:
        graph = cs.agent(system.saver, self.opts.agent_steps)
        invoke_t = Timed("agent invoke", name)

        def runs(t: Timed) -> None:
            for _ in range(self.opts.agent_runs):
                config = {"configurable": {"thread_id": cs.unique_thread("agent")}}
                t0 = time.perf_counter()
                graph.invoke({"messages": [HumanMessage("plan my week in the Alps")]}, config)
                invoke_t.samples_ms.append((time.perf_counter() - t0) * 1000)
                state = graph.get_state(config)
                t.samples_ms.append((time.perf_counter() - t0) * 1000)
                if len(state.values["messages"]) != self.opts.agent_steps + 1:
                    t.error = f"state held {len(state.values['messages'])} messages"

        self.record("agent run + get_state", name, runs)
        self.results.append(invoke_t)

    # --- store -------------------------------------------------------------------------------------
    def store(self, systems: dict[str, Any]) -> None:
        opts = self.opts
        embeddings = cs.embeddings_of(opts.embedder)
        dims = cs.EMBEDDERS[opts.embedder][1]
        data = cs.items(opts.items, opts.groups)
        stores: dict[str, tuple[Any, tuple[str, ...]]] = {}
        owners: dict[str, Any] = {}
        if "sluice" in systems:
            stores["sluice (workers embed)"] = (systems["sluice"].store(dims, opts.embedder), ("workers",))
            stores["sluice (app embeds)"] = (systems["sluice"].store(dims, embeddings), ("app",))
            owners["sluice (workers embed)"] = owners["sluice (app embeds)"] = systems["sluice"]
        if cs.PEER in systems:
            stores[cs.PEER] = (systems[cs.PEER].store(dims, embeddings), ("peer",))
            owners[cs.PEER] = systems[cs.PEER]
        embeddings.embed_documents([data[0][1]["text"]])  # load the model before anything is timed
        for label, (store, ns) in stores.items():
            owner = owners[label]

            def puts(t: Timed, store: Any = store, ns: tuple[str, ...] = ns, system: Any = owner) -> None:
                with system.paused():
                    for key, value in data:
                        timed(lambda k=key, v=value: store.put(ns, k, v), t.samples_ms)
                started = time.perf_counter()
                if store.get(ns, data[-1][0]) is None:  # waits for the namespace's pending writes
                    raise RuntimeError("the last item is not there")
                t.extra["indexed_after_s"] = time.perf_counter() - started

            self.record("store put", label, puts)
        self.search_both(stores, data, embeddings)

    def search_both(
        self, stores: dict[str, Any], data: Sequence[tuple[str, dict[str, Any]]], embeddings: Any
    ) -> None:
        """The filtered search as the app calls it (the query embedded in the call), then with the
        query vectors computed beforehand (the search alone)."""
        self.search(stores, data, embeddings, "store search (10% filter)")
        for store, _ in stores.values():
            store.embeddings = cs.Remembered(store.embeddings)
            store.embeddings.embed_documents(cs.queries(self.opts.queries))  # untimed
        self.search(stores, data, embeddings, "store search, query pre-embedded")

    def search(
        self, stores: dict[str, Any], data: Sequence[tuple[str, dict[str, Any]]], embeddings: Any, case: str
    ) -> None:
        opts = self.opts
        texts = cs.queries(opts.queries)
        truth = exact_top(embeddings, data, texts, opts.limit)
        for label in (s for s in stores if s != "sluice (app embeds)"):
            store, ns = stores[label]

            def searches(t: Timed, store: Any = store, ns: tuple[str, ...] = ns) -> None:
                recalls, fewer = [], 0
                for q, want in zip(texts, truth, strict=True):
                    got = timed(
                        lambda q=q: store.search(ns, query=q, filter={"group": 0}, limit=opts.limit),
                        t.samples_ms,
                    )
                    keys = {i.key for i in got}
                    fewer += len(got) < opts.limit
                    recalls.append(len(keys & set(want)) / len(want))
                t.extra["recall"] = sum(recalls) / len(recalls)
                t.extra["fewer_than_limit"] = fewer
                t.extra["queries"] = len(texts)

            self.record(case, label, searches)


def exact_top(
    embeddings: Any, data: Sequence[tuple[str, dict[str, Any]]], queries: Sequence[str], k: int
) -> list[list[str]]:
    """For each query, the keys of the `k` items of group 0 nearest by cosine (exact, in numpy)."""
    kept = [(key, v["text"]) for key, v in data if v["group"] == 0]
    docs = np.asarray(embeddings.embed_documents([t for _, t in kept]), dtype=np.float64)
    qs = np.asarray(embeddings.embed_documents(list(queries)), dtype=np.float64)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True) + 1e-12
    qs /= np.linalg.norm(qs, axis=1, keepdims=True) + 1e-12
    order = np.argsort(-(qs @ docs.T), axis=1)[:, :k]
    return [[kept[j][0] for j in row] for row in order]


def run(url: str, opts: Options, log: Any = None) -> Report:
    import redis as redis_py

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    log(f"# checkpoints: {', '.join(opts.systems)} side by side (embedder {opts.embedder}) ...")
    redis_py.Redis.from_url(url).flushall()
    suite = Suite(url, opts, log)
    systems: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in opts.systems:
        try:
            systems[name] = cs.FACTORIES[name](url, opts.embedder)
        except Exception as e:  # a missing peer is that system's error
            errors[name] = f"{type(e).__name__}: {e}"[:500]
    try:
        for name, system in systems.items():
            suite.checkpointer(name, system)
        for name, system in systems.items():
            suite.agent(name, system)
        suite.store(systems)
    finally:
        for system in systems.values():
            system.close()
    for name, error in errors.items():
        suite.results.append(Timed("setup", name, error=error))
    return summarize(suite.results, opts)


LABELS = {"sluice": "sluice", cs.PEER: "langgraph-checkpoint-redis 0.5.2"}


def summarize(results: list[Timed], opts: Options) -> Report:
    report = Report("checkpoints")
    by = {(t.case, t.system): t for t in results}
    rows = []
    for t in results:
        extra = ""
        if "recall" in t.extra:
            extra = f"recall@{opts.limit} {t.extra['recall']:.2f}; fewer than {opts.limit}: {t.extra['fewer_than_limit']}/{t.extra['queries']}"
        elif "indexed_after_s" in t.extra:
            extra = f"all readable {fmt(t.extra['indexed_after_s'], 2)} s after the last put"
        rows.append(
            [
                t.case,
                LABELS.get(t.system, t.system),
                str(len(t.samples_ms)),
                fmt(t.p(50), 3),
                fmt(t.mean, 3),
                fmt(t.p(99), 3),
                extra,
                t.error or "ok",
            ]
        )
    report.tables.append(
        markdown_table(["case", "system", "calls", "p50 ms", "mean ms", "p99 ms", "", "status"], rows)
    )

    def ratio(case: str, num: str, den: str) -> float:
        a, b = by.get((case, num)), by.get((case, den))
        if not (a and b and a.ok and b.ok):
            return math.nan
        return a.p(50) / b.p(50)

    for case in ("put", "put_writes"):
        r = ratio(case, cs.PEER, "sluice")
        if not math.isnan(r):
            report.checks.append(Check(f"{case}: theirs p50 / sluice p50 (app-side cost)", r, ">= 3", r >= 3))
    r = ratio("get_tuple", "sluice", cs.PEER)
    if not math.isnan(r):
        report.checks.append(Check("get_tuple: sluice p50 / theirs p50", r, "<= 1.2", r <= 1.2))
    for case in ("agent run + get_state", "agent invoke"):
        r = ratio(case, cs.PEER, "sluice")
        if not math.isnan(r):
            report.checks.append(
                Check(f"{case} (10 steps): theirs p50 / sluice p50", r, "informational", True)
            )
    r = ratio("store put", "sluice (app embeds)", "sluice (workers embed)")
    if not math.isnan(r):
        report.checks.append(
            Check(f"store put ({opts.embedder}): app embeds p50 / workers embed p50", r, "report", True)
        )
    r = ratio("store put", cs.PEER, "sluice (workers embed)")
    if not math.isnan(r):
        report.checks.append(Check("store put: theirs p50 / sluice (workers embed) p50", r, "report", True))
    r = ratio("store search, query pre-embedded", "sluice (workers embed)", cs.PEER)
    if not math.isnan(r):
        report.checks.append(Check("store search alone: sluice p50 / theirs p50", r, "report", True))
    theirs = by.get(("store search (10% filter)", cs.PEER))
    ours = by.get(("store search (10% filter)", "sluice (workers embed)"))
    if ours and ours.ok:
        report.checks.append(
            Check("store search: sluice recall", ours.extra["recall"], ">= 0.9", ours.extra["recall"] >= 0.9)
        )
        short = ours.extra["fewer_than_limit"]
        report.checks.append(
            Check("store search: sluice searches returning fewer than limit", short, "0", short == 0)
        )
    if theirs and theirs.ok:
        report.checks.append(
            Check(
                "store search: theirs returning fewer than limit (share)",
                theirs.extra["fewer_than_limit"] / theirs.extra["queries"],
                "report",
                True,
            )
        )
    report.notes += [
        f"put/put_writes: {opts.threads} threads x {opts.steps} checkpoints, each adding a ~100-200 byte chat "
        "message to the state, timed in the app; sluice's defaults (read_your_writes on: the job is tracked "
        "for readers in every process; a worker process applies it meanwhile), RedisSaver's defaults.",
        f"get_tuple: {opts.reads} reads of the latest checkpoint with its 2 pending writes, after every write was applied.",
        f"agent: a {opts.agent_steps}-step StateGraph (one node looping), durability left at LangGraph's default; "
        "`agent invoke` is the run alone, `agent run + get_state` also reads the state back (sluice's read "
        "waits for the run's writes to be applied).",
        f"store: {opts.items} items with one indexed text field, embedder `{opts.embedder}` "
        f"({cs.EMBEDDERS[opts.embedder][1]} dims) for every system; search: {opts.queries} queries, filter "
        f"matching 1/{opts.groups} of the items, limit {opts.limit}; recall against an exact cosine search of "
        "the filtered items; `query pre-embedded` times the same searches with every query vector computed "
        "beforehand (the search alone). RedisStore filters after its nearest-neighbour search. Namespaces are one level "
        "deep: on this server RedisStore 0.5.2's `get` finds nothing under a two-level namespace such as "
        "('bench', 'peer') (its search does).",
        "Timed app-side costs (put, put_writes, store put) run with sluice's worker process stopped "
        "(SIGSTOP, resumed right after: it applies the jobs then, and `get_tuple`/`agent`/`search` run with it "
        "live): on a small machine it would otherwise take the app's CPU, which in production it does not share.",
        f"One run on a shared machine (load average {os.getloadavg()[0]:.1f} at the end, "
        f"{os.cpu_count()} CPUs): compare ratios of one run.",
    ]
    report.data = {"options": asdict(opts), "measurements": [t.as_dict() for t in results]}
    return report

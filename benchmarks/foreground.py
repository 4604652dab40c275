"""Foreground suite (DESIGN rule 7): the app's lookup p99 while 2 workers index at full speed,
against the ingest rate the governor leaves them.

Per variant (a vector backend and a governor setting), on one server: fill an exact cache and a
fixed query index, start 2 sluice worker processes, and time lookups idle (workers running,
nothing to do); then enqueue 20,000 documents of 384 dims (the app embeds: ``ClusteredEmbeddings``,
so the workers only write) through `client.vectorstore(...).add_texts`, and time the same lookups
while the workers index them, until the backlog is gone. Idle and busy windows alternate
(`cycles`), so both see the same outside load on a shared machine. Reported per variant and
lookup kind: p99 idle and busy and their ratio (target <= 2), documents indexed per second and
that rate as a share of the same backend's ungoverned variant in this run (target >= 0.5), the
share of wall time the workers paid the governor for, and its backoffs.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis as redis_py

from benchmarks.cachesystems import NAMESPACE, Workers, client_for, drain, wait_for_workers
from benchmarks.common import Check, Report, fmt, markdown_table
from benchmarks.foreground_parts import (
    CHECK_EVERY,
    DIMS,
    KIND_LABELS,
    KINDS,
    SLOW_US,
    VARIANTS,
    Lookups,
    Phase,
    backlog,
    commandstats,
    phase,
    server_busy_ms,
    slowlog,
)  # fmt: skip
from benchmarks.timing import ratio


@dataclass
class Options:
    documents: int = 20_000  # documents indexed in the busy phases
    docs_per_job: int = 5  # -> documents / docs_per_job index jobs
    cached: int = 500  # entries in the exact cache, looked up in turn
    query_docs: int = 2_000  # documents of the fixed index the vector queries read
    idle_rounds: int = 3_000  # lookup rounds (one of each kind) in the idle windows, over all cycles
    cycles: int = 3  # idle window + busy window, alternated
    max_busy_rounds: int = 100_000
    max_busy_seconds: float = 60.0  # per cycle: a throttled variant reports the rate it reached by then
    workers: int = 2
    variants: tuple[str, ...] = (
        "search-off", "search-75", "search-50", "search-25", "vsets-off", "vsets-75", "vsets-50", "vsets-25",
    )  # fmt: skip
    repeat: int = 1  # accepted for the runner's --repeat; one busy phase per variant
    systems: tuple[str, ...] = ("sluice",)  # accepted for the runner's --systems

    @classmethod
    def quick(cls) -> Options:
        return cls(
            documents=1_500,
            cached=100,
            query_docs=300,
            idle_rounds=300,
            cycles=1,
            variants=("search-off", "search-50"),
        )


@dataclass
class Run:
    idle: Phase
    busy: Phase
    paid_ms: float  # server-ms the workers paid the governor during the busy windows
    governor: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.busy.indexed / self.busy.seconds if self.busy.seconds else float("nan")


def run_variant(url: str, opts: Options, name: str, log: Any) -> Run:
    from benchmarks.vectordata import ClusteredEmbeddings, doc_text, query_text
    from sluice.ops import governor
    from sluice.vectors.schema import IndexSchema

    variant = VARIANTS[name]
    raw = redis_py.Redis.from_url(url)
    raw.flushall()
    client = client_for(url)
    embeddings = ClusteredEmbeddings(dims=DIMS)
    schema = IndexSchema.for_dims(DIMS)

    def store(index: str) -> Any:
        return client.vectorstore(
            index, embeddings, schema=schema, backend=variant.backend, batch_size=opts.docs_per_job,
            read_your_writes=False,
        )  # fmt: skip

    queries, documents = store("fg-query"), store("fg-docs")
    vectors = embeddings.embed_documents([query_text(j) for j in range(200)])
    lookups = Lookups(client, raw, queries, vectors, opts.cached)
    texts = [doc_text(i) for i in range(opts.query_docs, opts.query_docs + opts.documents)]
    idle, busy = phase("idle"), phase("busy")
    streams = [str(s) for s in client.keys.streams("index")]
    workers = Workers(
        url, NAMESPACE, ["index"], opts.workers, nice=variant.nice, write_budget_ms=variant.write_budget_ms,
        governor=variant.governor(),
    )  # fmt: skip
    paid = 0.0
    with workers:
        wait_for_workers(client, opts.workers)
        lookups.fill()
        queries.add_texts(
            [doc_text(i) for i in range(opts.query_docs)], ids=[f"q{i}" for i in range(opts.query_docs)]
        )
        documents.add_texts(texts[:10], ids=[f"d{i}" for i in range(10)])  # create the index, untimed
        drain(client, 600)
        for i in range(opts.cached):  # warm every path once, untimed
            lookups.round(i, phase("warm"))
        raw.config_set("slowlog-max-len", 1_000)
        raw.config_resetstat()
        busy_server_ms = 0.0
        per_cycle = -(-(len(texts) - 10) // opts.cycles)
        for cycle in range(opts.cycles):
            # idle means nothing to index: a throttled variant's busy window can end (after
            # max_busy_seconds) with documents left, and then the next idle window is not timed
            if not backlog(raw, streams):
                t0 = time.monotonic()
                for i in range(opts.idle_rounds // opts.cycles):
                    lookups.round(i, idle)
                idle.seconds += time.monotonic() - t0
                idle.windows += 1
            part = range(10 + cycle * per_cycle, min(10 + (cycle + 1) * per_cycle, len(texts)))
            before, server0 = governor.read(raw, client.keys).spent_ms, server_busy_ms(raw)
            _busy(
                raw,
                streams,
                documents,
                lookups,
                busy,
                [texts[i] for i in part],
                [f"d{i}" for i in part],
                opts,
            )
            paid += governor.read(raw, client.keys).spent_ms - before
            busy_server_ms += server_busy_ms(raw) - server0
        busy.server = {
            "commands": commandstats(raw),
            "server_busy_share": busy_server_ms / 1000 / busy.seconds,
        }
        busy.slow.sort(reverse=True)
        state = governor.read(raw, client.keys)
        drain(client, 600)
    run = Run(idle, busy, paid, asdict(state))
    log(f"#   foreground/{name}: idle ({idle.windows} of {opts.cycles} windows had no backlog) {_line(idle)}")
    log(
        f"#   foreground/{name}: busy {_line(busy)}; {run.rate:,.0f} docs/s; paid {paid / 1000 / busy.seconds:.0%}"
    )
    log(
        f"#   server: {busy.server}; governor {state}; slowest: {busy.slow[:5]} ({len(busy.slow)} over {SLOW_US} µs)"
    )
    client.close()
    raw.close()
    return run


def _busy(
    raw: Any, streams: list[str], store: Any, lookups: Lookups, busy: Phase, texts: list[str], ids: list[str],
    opts: Options,
) -> None:  # fmt: skip
    """Enqueue `texts`, then time lookups until the workers have indexed them all."""
    for start in range(0, len(texts), 2_000):
        store.add_texts(texts[start : start + 2_000], ids=ids[start : start + 2_000])
    raw.config_set("slowlog-log-slower-than", SLOW_US)
    raw.slowlog_reset()
    left = before = backlog(raw, streams)
    t0 = time.monotonic()
    i = 0
    give_up = t0 + opts.max_busy_seconds
    while (left or not i) and i < opts.max_busy_rounds and time.monotonic() < give_up:  # at least one round
        lookups.round(i, busy)
        i += 1
        if i % CHECK_EVERY == 0:
            left = backlog(raw, streams)
    busy.seconds += time.monotonic() - t0
    busy.indexed += (before - left) * opts.docs_per_job
    busy.slow += slowlog(raw)
    raw.config_set("slowlog-log-slower-than", 10_000)


def _line(p: Phase) -> str:
    return ", ".join(f"{k} p50 {fmt(s.p50, 0)} p99 {fmt(s.p99, 0)} µs" for k, s in p.samples.items())


def run(url: str, opts: Options, log: Any = None) -> Report:
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    report = Report("foreground")
    runs: dict[str, Run] = {}
    errors: dict[str, str] = {}
    for name in opts.variants:
        log(f"# foreground/{name} ...")
        try:
            runs[name] = run_variant(url, opts, name, log)
        except Exception as e:  # one failing variant must not lose the others' numbers
            errors[name] = f"{type(e).__name__}: {e}"[:300]
    rows, measurements = [], []
    for name in opts.variants:
        if name in errors:
            measurements.append({"variant": name, "ok": False, "error": errors[name]})
            rows.append([name, "—", "—", "—", "—", "—", "—", "—", "—", errors[name][:200]])
            continue
        r, variant = runs[name], VARIANTS[name]
        ref = runs.get(f"{variant.backend}-off")
        share = r.rate / ref.rate if ref and ref.rate else float("nan")
        paid_share = r.paid_ms / 1000 / r.busy.seconds if r.busy.seconds else float("nan")
        for kind in KINDS:
            i, b = r.idle.samples[kind], r.busy.samples[kind]
            x = ratio(b.p99, i.p99)
            first = kind == KINDS[0]
            rows.append([
                name, KIND_LABELS[kind], fmt(i.p99, 0), fmt(b.p99, 0), f"**{fmt(x, 2)}**",
                fmt(r.rate) if first else "", f"**{fmt(share, 2)}**" if first else "",
                fmt(paid_share * 100, 0) + "%" if first and variant.governed else "",
                str(r.governor["backoffs"]) if first and variant.governed else "", "",
            ])  # fmt: skip
            if variant.governed and kind != "raw-get":
                report.checks.append(Check(f"{name}: {kind} p99 busy / idle", x, "<= 2", x <= 2))
            measurements.append({
                "variant": name, "backend": variant.backend, "governed": variant.governed,
                "duty_cycle": variant.duty_cycle if variant.governed else None, "kind": kind,
                "ok": b.ok and i.ok, "idle": i.as_dict(), "busy": b.as_dict(), "p99_ratio": x,
                "docs_per_s": r.rate, "ingest_share": share, "paid_share": paid_share, "busy_seconds": r.busy.seconds,
            })  # fmt: skip
        if variant.governed:
            report.checks.append(Check(f"{name}: ingest rate / ungoverned", share, ">= 0.5", share >= 0.5))
        measurements[-1].update(slowlog=r.busy.slow[:30], server=r.busy.server, governor=r.governor)
    header = [
        "variant", "lookup", "idle p99 µs", "busy p99 µs", "p99 busy ÷ idle", "docs indexed/s",
        "ingest ÷ ungoverned", "workers' duty (paid)", "backoffs", "error",
    ]  # fmt: skip
    report.tables.append(markdown_table(header, rows))
    report.notes += [f"`{n}`: {VARIANTS[n].note}" for n in opts.variants]
    report.notes.append(
        f"{opts.workers} worker processes; {opts.documents:,} documents of {DIMS} dims in "
        f"{opts.documents // opts.docs_per_job:,} index jobs (the app embeds); vector queries on a fixed "
        f"{opts.query_docs:,}-document index of the same backend; idle = workers running with nothing to do "
        f"({opts.idle_rounds // opts.cycles:,} rounds per window, timed only in windows with an empty backlog); busy = from the end of the enqueue until the backlog is empty. "
        "All on one 2-core machine: the app, Redis and both workers share the cores."
    )
    report.data = {"options": asdict(opts), "measurements": measurements}
    return report

"""Runtime suite: sluice vs Celery 5 vs a raw XREADGROUP/XACK loop, on one server, in one run.

Cases (each system gets the same jobs, the same server and 2 worker processes):
- ``noop``: N jobs whose handler does nothing but count; end to end = first enqueue -> last counted.
- ``hash``: the same, each job HSETs a few fields (the shape of a cache fill).
- ``latency``: one job per enqueue call at a steady rate; enqueue -> applied p50/p99.

Completion is counted the same way everywhere: after a job's effect the worker increments
``bench:done`` (sluice and raw: INCRBY per batch; Celery: INCR per task), and the driver polls it.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis as redis_py
from pydantic import SecretStr

from benchmarks import peers, raw, workload
from benchmarks.common import Check, Report, fmt, markdown_table, median, percentile
from sluice.jobs.codec import Job
from sluice.jobs.models import CacheFillPayload

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"
WARMUP = 50
KIND = "cache-fill"

SYSTEM_LABELS = {
    "sluice": "sluice",
    "sluice-cachefill": "sluice, real cache-fill handler",
    "raw": "raw XREADGROUP/XACK",
    "celery": "Celery 5 (prefork -c2)",
}


@dataclass
class Options:
    n: int = 20_000  # jobs per throughput case
    latency_rate: float = 1000.0  # jobs/s offered in the latency case
    latency_seconds: float = 10.0
    repeat: int = 3  # rounds per case, systems interleaved (order rotated each round)
    celery_rounds: int = 1  # Celery is ~50-100x slower: it runs in the first round(s) only
    workers: int = 2  # worker processes (Celery: prefork pool size)
    batch_size: int = 256  # XREADGROUP COUNT, the same for sluice and the raw loop
    block_ms: int = 100
    enqueue_chunk: int = 2_000  # payloads per sluice `enqueue` call (500 per partition script call)
    xadd_chunk: int = 500  # XADDs per pipeline round trip in the raw feeder
    cases: tuple[str, ...] = ("noop", "hash", "latency")
    systems: tuple[str, ...] = ("sluice", "raw", "celery")
    real_cache_fill: bool = True  # also run the hash case through sluice's own CacheFillHandler

    @classmethod
    def quick(cls) -> Options:
        return cls(n=3_000, latency_seconds=3.0, repeat=1)

    @property
    def latency_jobs(self) -> int:
        return max(1, int(self.latency_rate * self.latency_seconds))

    def timeout(self, n: int) -> float:
        return max(60.0, n / 40)  # Celery at ~50 jobs/s on a loaded box still finishes


# --- the sluice side -----------------------------------------------------------------------------
def bench_settings(url: str, opts: Options) -> Any:
    from sluice.settings import RedisSettings, Settings, WorkerSettings

    return Settings(
        namespace=NAMESPACE,
        redis=RedisSettings(url=SecretStr(url)),
        worker=WorkerSettings(batch_size=opts.batch_size, block_ms=opts.block_ms, kinds=[KIND]),
    )


class BenchHandler:
    """cache-fill handler of the benchmark: count only, HSET, record latency, or the real one."""

    kind = KIND

    def __init__(self, url: str, mode: str, settings: Any) -> None:
        self.r = redis_py.Redis.from_url(url)
        self.mode = mode
        self.latencies: list[float] = []
        self.inner: Any = None
        if mode == "cachefill":
            from sluice.connection.factory import connect
            from sluice_workers.handlers.cache import CacheFillHandler

            self.inner = CacheFillHandler.build(connect(settings.redis), settings, cluster=False)

    def handle(self, jobs: Sequence[Job]) -> dict[Any, BaseException]:
        now = time.time()
        failures: dict[Any, BaseException] = {}
        pipe = self.r.pipeline(transaction=False)
        if self.mode == "latency":
            self.latencies.extend(
                now - j.envelope.created
                for j in jobs
                if not workload.is_warmup(j.envelope.payload.prompt)  # type: ignore[union-attr]
            )
        elif self.mode == "hash":
            for j in jobs:
                p = j.envelope.payload
                assert isinstance(p, CacheFillPayload)
                body = {"llm_string": p.llm_string, "prompt": p.prompt, "generations": p.generations}
                pipe.hset(workload.hash_key(p.prompt), mapping=workload.hash_fields(body, j.entry_id))
        elif self.mode == "cachefill":
            failures = dict(self.inner.handle(jobs))
        pipe.incrby(workload.DONE, len(jobs) - len(failures))
        pipe.execute()
        return failures


def sluice_worker(url: str, mode: str, index: int, stop: Any, opts: Options) -> None:
    """Spawned worker process: `run_process` with the benchmark handler."""
    from sluice_workers.runtime.process import run_process

    settings = bench_settings(url, opts)
    handler = BenchHandler(url, mode, settings)
    run_process(settings, index, stop, handlers={KIND: handler})
    if handler.latencies:
        workload.push_latencies(handler.r, handler.latencies)


def payloads(first: int, n: int) -> list[CacheFillPayload]:
    return [CacheFillPayload(**workload.job(i)) for i in range(first, first + n)]


def _stop(procs: list[Any], stop: Any) -> None:
    stop.set()
    for p in procs:
        p.join(30)
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(10)


def run_sluice(url: str, case: str, opts: Options, mode: str | None = None) -> dict[str, Any]:
    from sluice.facade.client import Client

    mode = mode or case
    r = redis_py.Redis.from_url(url)
    r.flushall()
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=sluice_worker, args=(url, mode, i, stop, opts)) for i in range(opts.workers)]
    for p in procs:
        p.start()
    client = Client.from_url(url, namespace=NAMESPACE)
    out: dict[str, Any] = {}
    try:
        client.enqueue(payloads(-WARMUP, WARMUP))
        if workload.wait_count(r, WARMUP, 120, 0.01)[0] < WARMUP:
            raise RuntimeError("sluice workers did not start")
        r.delete(workload.DONE)
        n = opts.latency_jobs if case == "latency" else opts.n
        jobs = payloads(0, n)
        t0 = time.monotonic()
        if case == "latency":
            for i, job in enumerate(jobs):
                delay = t0 + i / opts.latency_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                client.enqueue([job])
        else:
            for i in range(0, n, opts.enqueue_chunk):
                client.enqueue(jobs[i : i + opts.enqueue_chunk])
        t_enq = time.monotonic()
        count, t1 = workload.wait_count(r, n, opts.timeout(n))
        out = {"n": n, "completed": count, "seconds": t1 - t0, "enqueue_seconds": t_enq - t0}
        # verify: nothing left pending or in the streams (XACKDEL / XACK+XDEL after the effect)
        deadline = time.monotonic() + 10
        while (totals := client.status().totals())["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        out["left_pending"] = totals["pending"]
    finally:
        _stop(procs, stop)
        client.close()
    if case == "latency":
        out["latencies"] = workload.read_latencies(r)
    r.close()
    return out


# --- the raw loop --------------------------------------------------------------------------------
def run_raw(url: str, case: str, opts: Options) -> dict[str, Any]:
    r = redis_py.Redis.from_url(url)
    r.flushall()
    raw.setup(r)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = [
        ctx.Process(target=raw.worker, args=(url, case, f"raw-{i}", stop, opts.batch_size, opts.block_ms))
        for i in range(opts.workers)
    ]
    for p in procs:
        p.start()
    out: dict[str, Any] = {}
    try:
        raw.feed(r, -WARMUP, WARMUP, opts.xadd_chunk)
        if workload.wait_count(r, WARMUP, 120, 0.01)[0] < WARMUP:
            raise RuntimeError("raw workers did not start")
        r.delete(workload.DONE)
        n = opts.latency_jobs if case == "latency" else opts.n
        t0 = time.monotonic()
        if case == "latency":
            for i in range(n):
                delay = t0 + i / opts.latency_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                raw.add_one(r, i)
        else:
            raw.feed(r, 0, n, opts.xadd_chunk)
        t_enq = time.monotonic()
        count, t1 = workload.wait_count(r, n, opts.timeout(n))
        out = {"n": n, "completed": count, "seconds": t1 - t0, "enqueue_seconds": t_enq - t0}
        deadline = time.monotonic() + 10
        while (left := raw.pending(r)) and time.monotonic() < deadline:
            time.sleep(0.05)
        out["left_pending"] = left
    finally:
        _stop(procs, stop)
    if case == "latency":
        out["latencies"] = workload.read_latencies(r)
    r.close()
    return out


# --- Celery (in its own Python when this one lacks it) -------------------------------------------
def run_celery(url: str, case: str, opts: Options, python: str) -> dict[str, Any]:
    r = redis_py.Redis.from_url(url)
    r.flushall()
    r.close()
    n = opts.latency_jobs if case == "latency" else opts.n
    cmd = [
        python, "-m", "benchmarks.celery_peer.drive", "--url", url, "--case", case, "--n", str(n),
        "--rate", str(opts.latency_rate), "--concurrency", str(opts.workers),
        "--timeout", str(opts.timeout(n)),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=opts.timeout(n) + 180
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"celery driver failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    out: dict[str, Any] = json.loads(lines[-1])
    out["left_pending"] = 0 if out.get("completed") == n else None
    return out


# --- orchestration -------------------------------------------------------------------------------
@dataclass
class Measurement:
    case: str
    system: str
    round: int
    n: int = 0
    completed: int = 0
    seconds: float = math.nan
    enqueue_seconds: float = math.nan
    rate: float = math.nan  # completed jobs / second, end to end
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    offered_rate: float = math.nan  # latency case: jobs enqueued per second actually achieved
    left_pending: int | None = None
    error: str | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.completed == self.n and self.n > 0


def measure(
    url: str, case: str, system: str, rnd: int, opts: Options, celery_python: str | None
) -> Measurement:
    m = Measurement(case=case, system=system, round=rnd)
    try:
        if system == "sluice":
            out = run_sluice(url, case, opts)
        elif system == "sluice-cachefill":
            out = run_sluice(url, case, opts, mode="cachefill")
        elif system == "raw":
            out = run_raw(url, case, opts)
        elif system == "celery":
            if celery_python is None:
                raise RuntimeError("Celery unavailable (see notes)")
            out = run_celery(url, case, opts, celery_python)
        else:
            raise ValueError(system)
    except Exception as e:  # one failing system must not lose the others' numbers
        m.error = f"{type(e).__name__}: {e}"[:2000]
        return m
    m.n, m.completed = int(out["n"]), int(out["completed"])
    m.seconds, m.enqueue_seconds = float(out["seconds"]), float(out["enqueue_seconds"])
    m.rate = m.completed / m.seconds if m.seconds > 0 else math.nan
    m.left_pending = out.get("left_pending")
    if case == "latency":
        lat = [v * 1000 for v in out.get("latencies", [])]
        m.latencies_ms = lat
        m.p50_ms, m.p90_ms = percentile(lat, 50), percentile(lat, 90)
        m.p99_ms, m.max_ms = percentile(lat, 99), max(lat) if lat else math.nan
        m.offered_rate = m.n / m.enqueue_seconds if m.enqueue_seconds > 0 else math.nan
    if not m.ok and m.error is None:
        m.error = f"only {m.completed}/{m.n} jobs completed within the timeout"
    return m


def systems_for(case: str, opts: Options) -> list[str]:
    systems = list(opts.systems)
    if case == "hash" and opts.real_cache_fill and "sluice" in systems:
        systems.insert(systems.index("sluice") + 1, "sluice-cachefill")
    return systems


def run(url: str, opts: Options, log: Any = None) -> Report:
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    report = Report("runtime")
    celery_python: str | None = None
    if "celery" in opts.systems:
        try:
            celery_python = peers.python_with("celery", "redis")
        except peers.PeerUnavailable as e:
            report.notes.append(f"Celery skipped: {e}")
    results: list[Measurement] = []
    for case in opts.cases:
        systems = systems_for(case, opts)
        for rnd in range(opts.repeat):
            order = systems[rnd % len(systems) :] + systems[: rnd % len(systems)]
            for system in order:
                if system == "celery" and rnd >= opts.celery_rounds:
                    continue
                log(f"# runtime/{case} round {rnd + 1}/{opts.repeat}: {system} ...")
                m = measure(url, case, system, rnd, opts, celery_python)
                extra = f"p50 {fmt(m.p50_ms, 2)} ms p99 {fmt(m.p99_ms, 2)} ms" if case == "latency" else ""
                log(f"#   {fmt(m.rate)} jobs/s {extra} {m.error or ''}")
                results.append(m)
    _summarize(report, results, opts)
    return report


def _by(results: list[Measurement], case: str, system: str) -> list[Measurement]:
    return [m for m in results if m.case == case and m.system == system]


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _summarize(report: Report, results: list[Measurement], opts: Options) -> None:
    summary: dict[str, dict[str, dict[str, float]]] = {}
    rows = []
    for case in [c for c in opts.cases if c != "latency"]:
        systems = systems_for(case, opts)
        rates = {s: median([m.rate for m in _by(results, case, s) if m.ok]) for s in systems}
        summary[case] = {}
        for s in systems:
            ms = _by(results, case, s)
            errors = sorted({m.error for m in ms if m.error})
            summary[case][s] = {"rate": rates[s], "rounds": len(ms), "ok_rounds": sum(m.ok for m in ms)}
            rows.append(
                [
                    case,
                    SYSTEM_LABELS[s],
                    fmt(ms[0].n if ms else math.nan),
                    " / ".join(fmt(m.rate) for m in ms) if len(ms) > 1 else "",
                    f"**{fmt(rates[s])}**",
                    fmt(median([m.n / m.enqueue_seconds for m in ms if m.ok and m.enqueue_seconds > 0])),
                    fmt(_ratio(rates[s], rates.get("raw", math.nan)), 2),
                    fmt(_ratio(rates[s], rates.get("celery", math.nan)), 1),
                    "; ".join(errors) or "ok",
                ]
            )
        for s in (x for x in systems if x.startswith("sluice")):
            vs_raw, vs_celery = (
                _ratio(rates[s], rates.get("raw", math.nan)),
                _ratio(rates[s], rates.get("celery", math.nan)),
            )
            if not math.isnan(vs_raw):
                report.checks.append(
                    Check(f"{case}: {SYSTEM_LABELS[s]} / raw loop", vs_raw, ">= 0.50", vs_raw >= 0.5)
                )
            if not math.isnan(vs_celery):
                report.checks.append(
                    Check(f"{case}: {SYSTEM_LABELS[s]} / Celery", vs_celery, ">= 45", vs_celery >= 45)
                )
    if rows:
        header = [
            "case",
            "system",
            "jobs",
            "jobs/s per round",
            "jobs/s (median)",
            "enqueue-only jobs/s",
            "÷ raw",
            "÷ Celery",
            "status",
        ]
        report.tables.append(markdown_table(header, rows))
    if "latency" in opts.cases:
        lrows = []
        summary["latency"] = {}
        for s in systems_for("latency", opts):
            ms = [m for m in _by(results, "latency", s) if m.ok]
            p50, p99 = median([m.p50_ms for m in ms]), median([m.p99_ms for m in ms])
            offered = median([m.offered_rate for m in ms])
            summary["latency"][s] = {"p50_ms": p50, "p99_ms": p99, "offered_rate": offered}
            errors = sorted({m.error for m in _by(results, "latency", s) if m.error})
            lrows.append(
                [
                    SYSTEM_LABELS[s],
                    fmt(opts.latency_jobs),
                    f"{fmt(opts.latency_rate)} / {fmt(offered)}",
                    fmt(p50, 2),
                    fmt(median([m.p90_ms for m in ms]), 2),
                    fmt(p99, 2),
                    fmt(median([m.max_ms for m in ms]), 1),
                    "; ".join(errors) or "ok",
                ]
            )
            if s == "sluice" and ms:
                report.checks.append(Check("latency: sluice p50 ms", p50, "<= 3 ms", p50 <= 3))
                report.checks.append(Check("latency: sluice p99 ms", p99, "<= 25 ms", p99 <= 25))
        header = [
            "latency (enqueue → applied)",
            "jobs",
            "offered / achieved jobs/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "status",
        ]
        report.tables.append(markdown_table(header, lrows))
    report.notes += [
        f"{opts.workers} worker processes per system; {opts.repeat} round(s) per case with the systems "
        f"interleaved (order rotated), Celery in the first {opts.celery_rounds} only; medians reported. "
        f"sluice and raw read COUNT {opts.batch_size}; "
        f"sluice enqueues {opts.enqueue_chunk} jobs per `enqueue` call, raw pipelines {opts.xadd_chunk} XADDs, "
        "Celery calls `apply_async` per task (it has no bulk publish).",
        "Completions are counted by each worker incrementing `bench:done` after the job's effect "
        "(sluice/raw: INCRBY per batch, Celery: INCR per task); end to end = first enqueue → counter reaches N, "
        "workers already running and warmed up. sluice rows also check nothing is left pending afterwards.",
        "The latency case offers one job per enqueue call paced by the clock; latency = handler time - enqueue "
        "time (sluice: `envelope.created`). A system that cannot sustain the rate shows a growing backlog "
        "in its percentiles.",
        "Shared machine: treat absolute numbers as noisy and compare the ratios of one run.",
    ]
    report.data = {
        "options": asdict(opts),
        "summary": summary,
        "measurements": [
            {k: v for k, v in asdict(m).items() if k != "latencies_ms"} | {"ok": m.ok} for m in results
        ],
        "latency_samples_ms": {
            s: [round(v, 3) for m in _by(results, "latency", s) for v in m.latencies_ms]
            for s in systems_for("latency", opts)
        }
        if "latency" in opts.cases
        else {},
    }

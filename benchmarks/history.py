"""History suite: sluice's chat history vs langchain-redis and redisvl, on one server, in one run.

Cases (each system gets the same messages, the same server, the same client process):
- ``append``: what one chat turn costs the app: ``add_messages([human, ai])`` per call, timed per
  call. sluice enqueues one job (a worker process applies it meanwhile, off the app's path);
  langchain-redis ``RedisChatMessageHistory`` writes JSON documents; redisvl ``MessageHistory``
  writes hashes (both indexed by RediSearch in the request path).
- ``read``: reading a 100-message session back: sluice ``history.messages`` (one ``ZRANGE``,
  decoded into LangChain messages), langchain-redis ``.messages`` (``FT.SEARCH`` sorted by time),
  redisvl ``.messages`` (``FT.SEARCH``, plain dicts). ``raw ZRANGE`` (the 100 stored members,
  undecoded) is the floor.

Peers need RediSearch and RedisJSON: the runner's embedded Redis 8.2 loads them from the
``server`` extra. Install the peers with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import redis as redis_py

from benchmarks.common import Check, Report, fmt, markdown_table, median, percentile
from benchmarks.history_systems import FACTORIES, RawZrange, System, turn

SYSTEM_LABELS = {
    "sluice": "sluice chat_history (default: enqueue in the call)",
    "sluice-buffered": "sluice chat_history, write='buffered'",
    "langchain-redis": "langchain-redis RedisChatMessageHistory",
    "redisvl": "redisvl MessageHistory",
    "raw": "raw ZRANGE (floor, undecoded)",
}
PEERS = ("langchain-redis", "redisvl")


@dataclass
class Options:
    n: int = 400  # timed appends (turns of 2 messages) per system and round
    reads: int = 300  # timed reads of the 100-message session per system and round
    session_messages: int = 100
    sessions: int = 10  # appends go round-robin over this many sessions
    warmup: int = 30
    repeat: int = 3
    latency_seconds: float = 0.0  # unused; accepted because the runner may set it
    systems: tuple[str, ...] = ("sluice", "sluice-buffered", "langchain-redis", "redisvl", "raw")
    single: int = 1_000  # timed one-message appends per system and round (vs raw XADD)
    producers: int = 64  # concurrent producers in the group-commit case
    per: int = 30  # appends per producer and round in the group-commit case
    writes: bool = True  # run the single-append and group-commit cases

    @classmethod
    def quick(cls) -> Options:
        return cls(n=100, reads=60, warmup=10, repeat=1, single=200, per=5)


@dataclass
class Measurement:
    case: str
    system: str
    round: int
    n: int = 0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    error: str | None = None
    samples_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.n > 0

    def fill(self, samples: list[float]) -> None:
        self.samples_ms = [s * 1000 for s in samples]
        self.n = len(samples)
        self.p50_ms, self.p90_ms = percentile(self.samples_ms, 50), percentile(self.samples_ms, 90)
        self.p99_ms = percentile(self.samples_ms, 99)
        self.mean_ms = sum(self.samples_ms) / len(self.samples_ms) if self.samples_ms else math.nan


APPENDERS = ("sluice", "sluice-buffered", "langchain-redis", "redisvl")
READERS = ("sluice", "langchain-redis", "redisvl", "raw")


class Round:
    """One round: every system on a freshly flushed server, measured one after another.

    Each system's calls run as one block (warm-up, then the timed calls) with the garbage
    collector paused, as `timeit` does; the order of systems rotates from round to round. Calls
    are not interleaved: right after a peer's `FT.SEARCH` the next call pays a few milliseconds
    on a busy machine, which would blur every system into the slowest. A system that fails is
    recorded with its error and left out of the rest of the round.
    """

    def __init__(self, url: str, rnd: int, opts: Options) -> None:
        self.url, self.rnd, self.opts = url, rnd, opts
        self.systems: dict[str, System] = {}
        self.errors: dict[str, str] = {}
        self.samples: dict[tuple[str, str], list[float]] = {}

    def _guard(self, name: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, result), or (False, None) with the system's error recorded."""
        try:
            return True, fn()
        except Exception as e:  # one failing system must not lose the others' numbers
            self.errors.setdefault(name, f"{type(e).__name__}: {e}"[:1000])
            return False, None

    def _live(self, names: Sequence[str]) -> list[str]:
        live = [n for n in names if n not in self.errors and n in self.systems]
        k = self.rnd % len(live) if live else 0
        return live[k:] + live[:k]

    def _block(self, case: str, name: str, calls: int, call: Callable[[int], Any]) -> None:
        """`warmup` untimed calls, then `calls` timed ones, with the garbage collector paused."""
        samples: list[float] = []

        def timed() -> None:
            for i in range(self.opts.warmup):
                call(i)
            gc.collect()
            gc.disable()
            try:
                for i in range(calls):
                    t0 = time.perf_counter()
                    call(self.opts.warmup + i)
                    samples.append(time.perf_counter() - t0)
            finally:
                gc.enable()

        if self._guard(name, timed)[0]:
            self.samples[(case, name)] = samples

    def run(self) -> list[Measurement]:
        redis_py.Redis.from_url(self.url).flushall()
        wanted = [s for s in self.opts.systems if s != "raw"]
        for name in wanted:
            ok, made = self._guard(name, partial(FACTORIES[name], self.url))
            if ok:
                self.systems[name] = made
        if "raw" in self.opts.systems and "sluice" in self.systems:
            self.systems["raw"] = RawZrange(self.url)
        try:
            self._measure()
        finally:
            for system in self.systems.values():
                system.close()
        return self._measurements()

    def _measure(self) -> None:
        opts, sessions = self.opts, [f"s{i}" for i in range(self.opts.sessions)]
        for name in self._live(APPENDERS):
            system = self.systems[name]
            self._block(
                "append", name, opts.n, lambda i, s=system: s.append(sessions[i % len(sessions)], turn(i))
            )
        # the session read: 100 messages (50 turns) per system that reads
        readers = self._live(READERS)
        for name in (n for n in readers if n != "raw"):
            system = self.systems[name]
            fill = [turn(i) for i in range(opts.session_messages // 2)]
            self._guard(name, lambda s=system, f=fill: [s.append("reader", t) for t in f])
            self._guard(name, system.settle)
        for name in self._live(readers):
            ok, got = self._guard(name, partial(self.systems[name].read, "reader"))
            if ok and len(got) != opts.session_messages:
                self.errors[name] = f"read {len(got)} messages, expected {opts.session_messages}"
        for name in self._live(readers):
            self._block("read", name, opts.reads, lambda i, s=self.systems[name]: s.read("reader"))

    def _measurements(self) -> list[Measurement]:
        out = []
        for case, names in (("append", APPENDERS), ("read", READERS)):
            for name in (n for n in names if n in self.opts.systems):
                m = Measurement(case, name, self.rnd, error=self.errors.get(name))
                samples = self.samples.get((case, name), [])
                if samples:
                    m.fill(samples)
                out.append(m)
        return out


def run(url: str, opts: Options, log: Any = None) -> Report:
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    report = Report("history")
    results: list[Measurement] = []
    for rnd in range(opts.repeat):
        log(f"# history round {rnd + 1}/{opts.repeat}: {', '.join(opts.systems)} side by side ...")
        for m in Round(url, rnd, opts).run():
            log(
                f"#   {m.case} {m.system}: p50 {fmt(m.p50_ms, 3)} ms mean {fmt(m.mean_ms, 3)} ms {m.error or ''}"
            )
            results.append(m)
    _summarize(report, results, opts)
    if opts.writes:
        from benchmarks.history_writes import history_cases

        report.data["writes"] = history_cases(url, opts, report, log)
    return report


def _median_of(results: list[Measurement], case: str, system: str, attr: str) -> float:
    return median([getattr(m, attr) for m in results if m.case == case and m.system == system and m.ok])


def _summarize(report: Report, results: list[Measurement], opts: Options) -> None:
    summary: dict[str, dict[str, dict[str, float]]] = {}
    rows = []
    for case in ("append", "read"):
        summary[case] = {}
        systems = [s for s in SYSTEM_LABELS if any(m.case == case and m.system == s for m in results)]
        base = _median_of(results, case, "sluice", "p50_ms")
        for s in systems:
            p50, mean = _median_of(results, case, s, "p50_ms"), _median_of(results, case, s, "mean_ms")
            p99 = _median_of(results, case, s, "p99_ms")
            ratio = p50 / base if base and not math.isnan(base) else math.nan
            summary[case][s] = {"p50_ms": p50, "p99_ms": p99, "mean_ms": mean, "ratio_vs_sluice": ratio}
            errors = sorted({m.error for m in results if m.case == case and m.system == s and m.error})
            rows.append(
                [
                    case,
                    SYSTEM_LABELS[s],
                    fmt(p50, 3),
                    fmt(mean, 3),
                    fmt(p99, 3),
                    fmt(ratio, 1),
                    "; ".join(errors) or "ok",
                ]
            )
        for peer in (p for p in PEERS if p in systems):
            peer_p50 = _median_of(results, case, peer, "p50_ms")
            for mine in ("sluice", "sluice-buffered") if case == "append" else ("sluice",):
                ours = _median_of(results, case, mine, "p50_ms")
                ratio = peer_p50 / ours if ours and not math.isnan(ours) else math.nan
                if not math.isnan(ratio):
                    target = 3.0 if case == "append" else 5.0
                    label = f"{case}: {peer} p50 / {mine} p50"
                    report.checks.append(Check(label, ratio, f">= {target:g}", ratio >= target))
    report.tables.append(
        markdown_table(["case", "system", "p50 ms", "mean ms", "p99 ms", "x sluice (p50)", "status"], rows)
    )
    report.notes += [
        f"append = one `add_messages([human, ai])` call (a chat turn), timed in the app, {opts.n} per round "
        f"over {opts.sessions} sessions; sluice enqueues one job (one script call; a worker process applies "
        "it meanwhile), sluice write='buffered' hands the job to a background sender thread (batched "
        "enqueue), the peers write and index in the request path.",
        f"read = all {opts.session_messages} messages of one session, {opts.reads} reads per round; sluice and "
        "langchain-redis return LangChain messages, redisvl returns its own dicts, raw ZRANGE is the undecoded floor.",
        f"{opts.repeat} round(s); in each, every system runs as a block (warm-up, then the timed calls, "
        "garbage collector paused as in timeit), the order rotated per round; medians of the rounds reported; "
        "ratios are peer ÷ sluice "
        "(how many times faster sluice is). Shared machine: compare ratios of one run.",
        "Fidelity is not timed here: langchain-redis drops tool calls and message ids, redisvl keeps role and "
        "content only; sluice round-trips every field (tests/integration/test_history.py).",
    ]
    report.data = {
        "options": asdict(opts),
        "summary": summary,
        "measurements": [
            {k: v for k, v in asdict(m).items() if k != "samples_ms"} | {"ok": m.ok} for m in results
        ],
    }

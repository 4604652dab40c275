"""Per-call latency samples of the cache suites: timing loops, rounds with rotated order, summaries."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import fmt, median, percentile

BLOCK = 50  # calls per system per turn in `rounds`


@dataclass
class Samples:
    """The latencies (µs) of one system in one case, per round, plus what the calls returned."""

    case: str
    system: str
    rounds: list[list[float]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)  # of the first round
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def all(self) -> list[float]:
        return [v for r in self.rounds for v in r]

    @property
    def p50(self) -> float:
        return percentile(self.all, 50)

    @property
    def p99(self) -> float:
        return percentile(self.all, 99)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.all)

    def round_medians(self) -> str:
        return " / ".join(fmt(median(r), 1) for r in self.rounds) if len(self.rounds) > 1 else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "system": self.system,
            "calls": len(self.all),
            "p50_us": self.p50,
            "p90_us": percentile(self.all, 90),
            "p99_us": self.p99,
            "round_p50_us": [median(r) for r in self.rounds],
            "error": self.error,
            "ok": self.ok,
            **self.extra,
        }


def time_calls(fn: Callable[[Any], Any], args: Iterable[Any]) -> tuple[list[float], list[Any]]:
    """Call `fn` on each argument; (latencies in µs, results)."""
    clock = time.perf_counter_ns
    latencies: list[float] = []
    results: list[Any] = []
    for a in args:
        t0 = clock()
        out = fn(a)
        latencies.append((clock() - t0) / 1000)
        results.append(out)
    return latencies, results


def rounds(
    case: str,
    systems: dict[str, Callable[[Any], Any]],
    args: Sequence[Any],
    repeat: int,
    log: Callable[[str], None],
) -> dict[str, Samples]:
    """Every system over the same arguments, `repeat` rounds. Systems take turns in blocks of
    `BLOCK` calls (the order rotated each round): short enough that a burst of outside load on a
    shared machine hits every system alike, long enough that each runs with warm CPU caches, as
    it would in an app. A system that raises is reported with its error and does not stop the
    others."""
    out = {name: Samples(case, name) for name in systems}
    names = list(systems)
    clock = time.perf_counter_ns
    for rnd in range(repeat):
        shift = rnd % max(1, len(names))
        order = [n for n in names[shift:] + names[:shift] if out[n].error is None]
        latencies: dict[str, list[float]] = {n: [] for n in order}
        results: dict[str, list[Any]] = {n: [] for n in order}
        for start in range(0, len(args), BLOCK):
            block = args[start : start + BLOCK]
            for name in order:
                fn, lat, res = systems[name], latencies[name], results[name]
                try:
                    for a in block if out[name].error is None else ():
                        t0 = clock()
                        res.append(fn(a))
                        lat.append((clock() - t0) / 1000)
                except Exception as e:  # one failing system must not lose the others' numbers
                    out[name].error = f"{type(e).__name__}: {e}"[:500]
        for name in order:
            s = out[name]
            if s.error is None:
                s.rounds.append(latencies[name])
                if rnd == 0:
                    s.results = results[name]
                log(f"#   {case} round {rnd + 1}/{repeat} {name}: p50 {fmt(median(latencies[name]), 1)} µs")
    return out


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan

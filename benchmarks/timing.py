"""Per-call latency samples of the cache suites: timing loops, rounds with rotated order, summaries."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import fmt, median, percentile


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
    """Every system over the same arguments, `repeat` rounds, order rotated each round; a system
    that raises is reported with its error and does not stop the others."""
    out = {name: Samples(case, name) for name in systems}
    names = list(systems)
    for rnd in range(repeat):
        shift = rnd % max(1, len(names))
        for name in names[shift:] + names[:shift]:
            s = out[name]
            if s.error is not None:
                continue
            try:
                latencies, results = time_calls(systems[name], args)
            except Exception as e:  # one failing system must not lose the others' numbers
                s.error = f"{type(e).__name__}: {e}"[:500]
                continue
            s.rounds.append(latencies)
            if rnd == 0:
                s.results = results
            log(f"#   {case} round {rnd + 1}/{repeat} {name}: p50 {fmt(median(latencies), 1)} µs")
    return out


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan

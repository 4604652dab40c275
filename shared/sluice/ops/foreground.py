"""The apps' side of the workers' governor: lookup latency, timed in the facades and published.

Each client keeps the durations of its lookups per kind (``exact``, ``semantic``, ``vector``) in
memory and, about every `governor.report_interval` seconds, sends one `governor_report.lua` call:
the worst kind's p99 and its ratio to that kind's *idle* p99 — the p99 of windows in which no
worker paid for server time (the script's reply says so). Workers halve their shared rate while
the ratio is above `governor.foreground_ratio` (`sluice_workers.runtime.governor`).

The report rides on a lookup (about one in several hundred at a few hundred lookups per
second); a failing report is dropped with a warning, never raised into the lookup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.errors import SluiceError
from sluice.keys import Keys
from sluice.scripts import Scripts
from sluice.settings import GovernorSettings

log = logging.getLogger(__name__)

IDLE_WEIGHT = 0.3  # EWMA weight of a new idle window's p99
MAX_SAMPLES = 20_000  # per kind and window; beyond it the window is reported early


@dataclass(frozen=True, slots=True)
class Report:
    """What one window measured: the worst kind (by ratio to its idle p99, or by p99 if none known)."""

    kind: str
    p99_us: float
    idle_us: float  # 0: not learned yet
    window_ms: float
    p99s: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.p99_us / self.idle_us if self.idle_us else 0.0


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class ForegroundReporter:
    """Lookup durations of one client, published for the governor (see the module docstring)."""

    def __init__(self, settings: GovernorSettings, keys: Keys, redis: Callable[[], Any]) -> None:
        self.settings = settings
        self.enabled = settings.report_foreground
        self.key = keys.governor()
        self._redis = redis
        self._scripts: Scripts | None = None
        self._lock = threading.Lock()
        self._samples: dict[str, list[float]] = {}
        self._count = 0
        self._since = time.perf_counter()
        self.idle: dict[str, float] = {}  # kind -> idle p99, µs
        self.last: Report | None = None

    def note(self, kind: str, started: float) -> None:
        """Record a lookup that began at `started` (`time.perf_counter()`); report if one is due."""
        if not self.enabled:
            return
        now = time.perf_counter()
        with self._lock:
            self._samples.setdefault(kind, []).append((now - started) * 1e6)
            self._count += 1
            due = now - self._since >= self.settings.report_interval or self._count >= MAX_SAMPLES
        if due:
            self.report()

    def take(self) -> Report | None:
        """The window's report (None when no kind had enough lookups); starts the next window."""
        with self._lock:
            samples, self._samples, self._count = self._samples, {}, 0
            window_ms = (time.perf_counter() - self._since) * 1000
            self._since = time.perf_counter()
        least = self.settings.report_min_lookups
        p99s = {kind: p99(values) for kind, values in samples.items() if len(values) >= least}
        if not p99s:
            return None
        ratios = {k: v / self.idle[k] for k, v in p99s.items() if self.idle.get(k)}
        worst = max(ratios, key=lambda k: ratios[k]) if ratios else max(p99s, key=lambda k: p99s[k])
        return Report(worst, p99s[worst], self.idle.get(worst, 0.0), window_ms, p99s)

    def learn(self, report: Report, ms_since_paid: float) -> None:
        """Fold the window into the idle p99s: fully if no worker paid during it, else only downwards
        (a busy window faster than the idle estimate proves the estimate too high)."""
        idle = ms_since_paid < 0 or ms_since_paid > report.window_ms
        for kind, value in report.p99s.items():
            known = self.idle.get(kind)
            if known is None:
                if idle:
                    self.idle[kind] = value
            elif idle:
                self.idle[kind] = (1 - IDLE_WEIGHT) * known + IDLE_WEIGHT * value
            elif value < known:
                self.idle[kind] = value

    def report(self) -> None:
        """Send the window's report now (one script call); errors are logged and dropped."""
        report = self.take()
        if report is None:
            return
        if self._scripts is None:
            self._scripts = Scripts(self._redis())
        try:
            reply = self._scripts["governor_report"](keys=[self.key], args=self._args(report))
        except (SluiceError, OSError) as e:
            log.warning("foreground latency report dropped (%s)", e)
            return
        except Exception as e:  # a redis-py error: the report is statistics, never the lookup's failure
            log.warning("foreground latency report dropped (%s: %s)", type(e).__name__, e)
            return
        self.last = report
        self.learn(report, float(reply))

    def _args(self, report: Report) -> list[Any]:
        interval_ms = int(self.settings.report_interval * 1000)
        return [
            f"{report.ratio:.4f}",
            f"{report.p99_us:.1f}",
            f"{report.idle_us:.1f}",
            report.kind,
            interval_ms,
        ]

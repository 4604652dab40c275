"""Batch latency per job kind from the workers' Prometheus endpoints (optional).

Workers started with ``--metrics-port`` export the histogram ``sluice_batch_seconds{kind}``. The
dashboard reads the endpoints it is given (`DashboardSettings.metrics_urls`) at most every
`MIN_INTERVAL` seconds, turns the cumulative counters into per-minute increments in memory, and
from those draws the mean batch time per minute and a p95 over the last minutes. Without
endpoints the page says latency is not available.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from sluice.connection.secrecy import redact_url

log = logging.getLogger(__name__)

METRIC = "sluice_batch_seconds"
MIN_INTERVAL = 5.0
KEEP_MINUTES = 120


@dataclass(slots=True)
class _Cumulative:
    count: float = 0.0
    total: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


def fetch(url: str, timeout: float = 2.0) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"metrics URL {redact_url(url)!r} must start with http:// or https://")
    with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - scheme checked above
        return bytes(reply.read(4 * 1024 * 1024)).decode(errors="replace")


def parse(text: str) -> dict[str, _Cumulative]:
    """`sluice_batch_seconds` per kind: count, sum and buckets (cumulative, as exported)."""
    out: dict[str, _Cumulative] = defaultdict(_Cumulative)
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for s in family.samples:
            kind = str(s.labels.get("kind", "?"))
            if s.name.endswith("_count"):
                out[kind].count = float(s.value)
            elif s.name.endswith("_sum"):
                out[kind].total = float(s.value)
            elif s.name.endswith("_bucket"):
                out[kind].buckets[float(s.labels["le"])] = float(s.value)
    return dict(out)


def _delta(now: _Cumulative, before: _Cumulative | None) -> _Cumulative:
    # first sight, or the worker restarted: count everything since its start in this minute
    # (right for the mean, a little early for the chart; better than a blank first page)
    if before is None or now.count < before.count:
        return now
    return _Cumulative(
        now.count - before.count,
        now.total - before.total,
        {le: v - before.buckets.get(le, 0.0) for le, v in now.buckets.items()},
    )


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (Prometheus' histogram_quantile, coarse)."""
    edges = sorted(buckets)
    if not edges or buckets[edges[-1]] <= 0:
        return None
    rank = q * buckets[edges[-1]]
    for le in edges:
        if buckets[le] >= rank:
            return le if math.isfinite(le) else edges[-2] if len(edges) > 1 else None
    return None


class LatencyHistory:
    """Per-minute batch-time increments, per kind, summed over every endpoint."""

    def __init__(self, urls: Sequence[str], read: Callable[[str], str] = fetch) -> None:
        self.urls = list(urls)
        self._read = read
        self._last: dict[tuple[str, str], _Cumulative] = {}
        self._minutes: dict[int, dict[str, _Cumulative]] = {}
        self._scraped = 0.0
        self._lock = threading.Lock()
        self.errors: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    def scrape(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            if not self.urls or now - self._scraped < MIN_INTERVAL:
                return
            self._scraped = now
            minute = int(now // 60)
            for url in self.urls:
                try:
                    kinds = parse(self._read(url))
                except Exception as e:  # an endpoint that is down must not break the page
                    self.errors[redact_url(url)] = str(e)[:200]
                    continue
                self.errors.pop(redact_url(url), None)
                for kind, cumulative in kinds.items():
                    d = _delta(cumulative, self._last.get((url, kind)))
                    self._last[(url, kind)] = cumulative
                    self._add(minute, kind, d)
            for old in [m for m in self._minutes if m < minute - KEEP_MINUTES]:
                del self._minutes[old]

    def _add(self, minute: int, kind: str, d: _Cumulative) -> None:
        acc = self._minutes.setdefault(minute, {}).setdefault(kind, _Cumulative())
        acc.count += d.count
        acc.total += d.total
        for le, v in d.buckets.items():
            acc.buckets[le] = acc.buckets.get(le, 0.0) + v

    def mean_per_minute(
        self, kinds: Sequence[str], minutes: int, now: float | None = None
    ) -> dict[str, list[float | None]]:
        """Mean seconds per batch, per kind, for each of the last `minutes` minutes (None: no batch)."""
        end = int((time.time() if now is None else now) // 60)
        out: dict[str, list[float | None]] = {}
        with self._lock:
            for kind in kinds:
                row: list[float | None] = []
                for m in range(end - minutes + 1, end + 1):
                    acc = self._minutes.get(m, {}).get(kind)
                    row.append(acc.total / acc.count if acc and acc.count > 0 else None)
                out[kind] = row
        return out

    def p95(self, kind: str, minutes: int = 5, now: float | None = None) -> float | None:
        end = int((time.time() if now is None else now) // 60)
        merged: dict[float, float] = {}
        with self._lock:
            for m in range(end - minutes + 1, end + 1):
                acc = self._minutes.get(m, {}).get(kind)
                for le, v in (acc.buckets if acc else {}).items():
                    merged[le] = merged.get(le, 0.0) + v
        return quantile(merged, 0.95)

    def summary(self, kinds: Sequence[str], minutes: int = 5) -> dict[str, dict[str, Any]]:
        series = self.mean_per_minute(kinds, minutes)
        out = {}
        for kind in kinds:
            known = [v for v in series[kind] if v is not None]
            out[kind] = {"mean": sum(known) / len(known) if known else None, "p95": self.p95(kind, minutes)}
        return out

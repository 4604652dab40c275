"""Everything one page shows, read in one go from the functions `sluice status` uses.

`Source` holds the connection and what to read; `Source.take()` returns a `Snapshot`: the
status (`sluice.ops.status.collect`, the numbers `sluice status --json` prints), a longer
throughput series (`sluice.ops.status.throughput`), the newest dead letters
(`sluice.ops.deadletters.DeadLetters`), the store summaries (`sluice.ops.stores.collect`) and,
when workers export metrics, batch latency. Rendering is the templates' business.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any

from sluice.keys import Keys
from sluice.ops import cachestats, stores
from sluice.ops.deadletters import DeadLetter, DeadLetters
from sluice.ops.status import Status, StreamStatus, collect, throughput
from sluice.queue.producer import Producer
from sluice.settings import Settings
from sluice.types import JOB_KINDS
from sluice_workers.dashboard import charts
from sluice_workers.dashboard.latency import LatencyHistory

CHART_MINUTES = 15
DEAD_LETTERS_SHOWN = 25


@dataclass(frozen=True, slots=True)
class KindRow:
    """One job kind: its partitions and their sums."""

    kind: str
    streams: list[StreamStatus]
    backlog: int
    pending: int
    lag: int | None
    consumers: int
    applied_last_minutes: int
    latency_mean: float | None = None
    latency_p95: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    status: Status
    kinds: list[KindRow]
    throughput_chart: charts.Chart
    latency_chart: charts.Chart | None
    latency_errors: dict[str, str]
    dead_letters: list[DeadLetter]
    stores: stores.StoresSummary
    distance_charts: dict[str, charts.Chart]
    distance_labels: list[str]
    at: float = field(default_factory=time.time)
    minutes: int = CHART_MINUTES

    def consumers(self) -> list[dict[str, Any]]:
        """Every consumer of every stream, most idle first (a stuck consumer stands out)."""
        rows = [
            {
                "stream": s.stream,
                "kind": s.kind,
                "partition": s.partition,
                "name": c.name,
                "pending": c.pending,
                "idle_ms": c.idle_ms,
            }
            for s in self.status.streams
            for c in s.consumers
        ]
        return sorted(rows, key=lambda r: -int(r["idle_ms"]))


def minute_labels(minutes: int, now: float | None = None) -> list[str]:
    end = int((time.time() if now is None else now) // 60)
    return [time.strftime("%H:%M", time.localtime(m * 60)) for m in range(end - minutes + 1, end + 1)]


def _lag(streams: list[StreamStatus]) -> int | None:
    lags = [s.lag for s in streams if s.lag is not None]
    return sum(lags) if lags else None


def local_metrics_urls(workers: list[dict[str, Any]]) -> list[str]:
    """Metrics endpoints that workers on this host announce in their heartbeats."""
    host = socket.gethostname()
    ports = sorted(
        {int(w["metrics_port"]) for w in workers if w.get("host") == host and w.get("metrics_port")}
    )
    return [f"http://127.0.0.1:{p}/metrics" for p in ports]


class Source:
    """What the dashboard reads, from where (built once per app)."""

    def __init__(self, redis: Any, settings: Settings, *, cluster: bool = False) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.namespace, settings.queue.partitions)
        self.group = settings.queue.group
        self.cluster = cluster
        self.dead = DeadLetters(redis, self.keys, Producer(redis, settings, cluster=cluster))
        self.latency = LatencyHistory(settings.dashboard.metrics_urls)

    def status(self) -> Status:
        return collect(self.redis, self.keys, self.group)

    def take(self) -> Snapshot:
        status = self.status()
        if not self.settings.dashboard.metrics_urls:  # find the metrics of workers on this host
            self.latency.urls = local_metrics_urls(status.workers)
        rates = throughput(self.redis, self.keys, CHART_MINUTES)
        labels = minute_labels(CHART_MINUTES)
        self.latency.scrape()
        latency = self.latency.summary(list(JOB_KINDS)) if self.latency.enabled else {}
        kinds = []
        for kind in JOB_KINDS:
            streams = [s for s in status.streams if s.kind == kind]
            kinds.append(
                KindRow(
                    kind,
                    streams,
                    sum(s.length for s in streams),
                    sum(s.pending for s in streams),
                    _lag(streams),
                    sum(len(s.consumers) for s in streams),
                    sum(status.throughput.get(kind, [])),
                    latency.get(kind, {}).get("mean"),
                    latency.get(kind, {}).get("p95"),
                )
            )
        latency_chart = None
        if self.latency.enabled:
            series = self.latency.mean_per_minute(list(JOB_KINDS), CHART_MINUTES)
            ms = {k: [None if v is None else v * 1000 for v in vs] for k, vs in series.items()}
            latency_chart = charts.lines(ms, labels, unit=" ms")
        summary = stores.collect(
            self.redis,
            self.keys,
            caches=self.settings.dashboard.caches,
            indexes=self.settings.dashboard.indexes,
            cluster=self.cluster,
        )
        bucket_labels = cachestats.bucket_labels()
        distance_charts = {
            c.name: charts.stacked_bars(
                {"lookups": c.lookups.distances}, bucket_labels, width=360, height=120
            )
            for c in summary.caches
            if any(c.lookups.distances)
        }
        return Snapshot(
            status,
            kinds,
            charts.stacked_bars({k: rates[k] for k in JOB_KINDS}, labels),
            latency_chart,
            dict(self.latency.errors),
            self.dead.recent(DEAD_LETTERS_SHOWN),
            summary,
            distance_charts,
            bucket_labels,
        )

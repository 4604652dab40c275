"""Prometheus metrics of one worker process (a registry per process, not a global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

METRIC_NAMES = (
    "sluice_jobs_processed_total",
    "sluice_jobs_retried_total",
    "sluice_jobs_dead_lettered_total",
    "sluice_batch_seconds",
    "sluice_stream_lag",
    "sluice_stream_pending",
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.processed = Counter("sluice_jobs_processed", "Jobs applied", ["kind"], registry=self.registry)
        self.retried = Counter(
            "sluice_jobs_retried", "Jobs scheduled for retry", ["kind"], registry=self.registry
        )
        self.dead = Counter(
            "sluice_jobs_dead_lettered",
            "Jobs sent to the dead-letter stream",
            ["kind"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "sluice_batch_seconds",
            "Seconds to handle one batch, acknowledgement included",
            ["kind"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.lag = Gauge(
            "sluice_stream_lag", "Entries not yet delivered to the group", ["stream"], registry=self.registry
        )
        self.pending = Gauge(
            "sluice_stream_pending",
            "Entries delivered but not acknowledged",
            ["stream"],
            registry=self.registry,
        )

    def serve(self, port: int) -> None:
        start_http_server(port, addr="0.0.0.0", registry=self.registry)  # noqa: S104 - scraped in-cluster

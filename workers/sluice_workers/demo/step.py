"""One line of the demo's summary table: a step, its jobs or reads, and their latencies."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Step:
    name: str
    jobs: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    note: str = ""

    def row(self) -> str:
        lat = self.latencies_ms
        if not self.jobs and lat:  # a read step: count reads, time spent reading
            self.jobs, self.seconds = len(lat), sum(lat) / 1000
        p50 = f"{statistics.median(lat):.2f}" if lat else "-"
        p99 = f"{sorted(lat)[max(0, int(len(lat) * 0.99) - 1)]:.2f}" if lat else "-"
        return (
            f"| {self.name:<38} | {self.jobs:>6} | {self.seconds:>7.2f} | {p50:>8} | {p99:>8} | {self.note}"
        )

"""What every benchmark suite returns, and how the runner renders it (no sluice imports here)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def fmt(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Check:
    """A ratio or figure compared with the issue's target (informational: machines are noisy)."""

    label: str
    value: float
    target: str
    met: bool

    def line(self) -> str:
        mark = "meets" if self.met else "MISSES"
        return f"- {self.label}: **{fmt(self.value, 2)}** (target {self.target}: {mark})"


@dataclass
class Report:
    suite: str
    tables: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        parts = [f"## {self.suite}", *self.tables]
        if self.checks:
            parts.append("\n".join(c.line() for c in self.checks))
        if self.notes:
            parts.append("\n".join(f"- {n}" for n in self.notes))
        return "\n\n".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "checks": [c.__dict__ for c in self.checks],
            "notes": self.notes,
            "data": self.data,
            "markdown": self.markdown(),
        }

"""Write pipelines sized to a time budget, so background indexing does not starve lookups.

Redis runs commands on one thread and executes much of a pipeline before serving anyone else;
an HNSW insert costs a few hundred microseconds there. A worker that sends hundreds of inserts
in one pipeline therefore delays every app lookup behind it. `WriteBudget` measures how long its
pipelines take and sizes the next one to take about `budget_ms` (`worker.write_budget_ms`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class WriteBudget:
    """Adaptive pipeline size: `chunk` calls per pipeline, re-estimated after each one."""

    def __init__(self, budget_ms: float, *, first: int = 16, least: int = 1, most: int = 2_000) -> None:
        self.budget_ms = budget_ms
        self.least = least
        self.most = most
        self.chunk = max(least, min(most, first))

    def observe(self, n: int, elapsed_ms: float) -> None:
        """Fold one pipeline's timing into the next size (halfway towards the budget's size)."""
        per_call = max(elapsed_ms / max(n, 1), 1e-3)
        target = int(self.budget_ms / per_call)
        self.chunk = max(self.least, min(self.most, (self.chunk + target) // 2))

    def run(self, send: Callable[[Sequence[T]], list[Any]], calls: Sequence[T]) -> list[Any]:
        """Send `calls` in budget-sized pipelines; the replies in order."""
        replies: list[Any] = []
        start = 0
        while start < len(calls):
            part = calls[start : start + self.chunk]
            began = time.perf_counter()
            replies += send(part)
            self.observe(len(part), (time.perf_counter() - began) * 1000)
            start += len(part)
        return replies

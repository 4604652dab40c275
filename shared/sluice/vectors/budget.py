"""Write pipelines sized to a time budget, so background indexing does not starve lookups.

Redis runs commands on one thread and executes much of a pipeline before serving anyone else;
an HNSW insert costs a few hundred microseconds there. A worker that sends hundreds of inserts
in one pipeline therefore delays every app lookup behind it. `WriteBudget` measures the server
time its pipelines take (with a pacer, the server's CPU clock read before and after the pipeline;
without one, or on a Cluster, the round trip less an empty call's) and sizes the next one to
take about `budget_ms` (`worker.write_budget_ms`).

A `Pacer` (the workers' governor, `sluice_workers.runtime.governor`) also bounds how much of the
wall time the pipelines of every worker together take: `admit` before each pipeline (it may
wait), `pay` what the pipeline measured, `settle` at the end of a batch; and while the apps'
lookups suffer it shrinks the pipelines (`scale`): a lookup waits behind one pipeline at most,
so its length, more than the duty cycle, sets the lookups' p99.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Pacer(Protocol):
    """Shares Redis's main thread between the workers and the apps (see the module docstring)."""

    @property
    def overhead_ms(self) -> float:
        """The round trip of a call that costs the server nothing (network and client time)."""

    def marks(self) -> tuple[Any, Any] | None:
        """Two calls to send around a pipeline whose replies `server_ms` turns into its server
        time; None where the round trip must do (a Cluster: the pipeline spans nodes)."""

    def server_ms(self, before: Any, after: Any) -> float | None:
        """The server time between the replies of the two marks (None if they make no sense)."""

    @property
    def scale(self) -> float:
        """The share of `budget_ms` a pipeline may take now (1: all; less while the apps' lookups suffer)."""

    def admit(self, expected_ms: float) -> None:
        """Return when the next pipeline (expected to take `expected_ms` of server time) may run."""

    def pay(self, server_ms: float) -> None:
        """Record the server time a pipeline took (sent with the next `admit` or `settle`)."""

    def settle(self) -> None:
        """Send what is owed now (end of a batch)."""


class WriteBudget:
    """Adaptive pipeline size: `chunk` calls per pipeline, re-estimated after each one."""

    def __init__(
        self,
        budget_ms: float,
        *,
        pacer: Pacer | None = None,
        first: int = 16,
        least: int = 1,
        most: int = 2_000,
    ) -> None:
        self.budget_ms = budget_ms
        self.pacer = pacer
        self.least = least
        self.most = most
        self.chunk = max(least, min(most, first))
        self.per_call_ms = budget_ms / self.chunk  # the last pipeline's server time per call

    def observe(self, n: int, elapsed_ms: float, scale: float = 1.0) -> None:
        """Fold one pipeline's timing into the next size (halfway towards the budget's size)."""
        per_call = self.per_call_ms = max(elapsed_ms / max(n, 1), 1e-3)
        target = int(self.budget_ms * scale / per_call)
        self.chunk = max(self.least, min(self.most, (self.chunk + target) // 2))

    def run(self, send: Callable[[Sequence[T]], list[Any]], calls: Sequence[T]) -> list[Any]:
        """Send `calls` in budget-sized pipelines; the replies in order."""
        replies: list[Any] = []
        pacer = self.pacer
        start = 0
        while start < len(calls):
            part = calls[start : start + self.chunk]
            marks = None
            if pacer is not None:
                pacer.admit(len(part) * self.per_call_ms)
                marks = pacer.marks()
            began = time.perf_counter()
            if marks is None:
                replies += send(part)
            else:
                got = send([marks[0], *part, marks[1]])
                replies += got[1:-1]
            elapsed = (time.perf_counter() - began) * 1000
            if pacer is not None:
                measured = pacer.server_ms(got[0], got[-1]) if marks is not None else None
                elapsed = max(elapsed - pacer.overhead_ms, 0.0) if measured is None else measured
                pacer.pay(elapsed)
            self.observe(len(part), elapsed, pacer.scale if pacer is not None else 1.0)
            start += len(part)
        if pacer is not None and calls:
            pacer.settle()
        return replies

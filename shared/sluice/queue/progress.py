"""Following many jobs to applied or dead-lettered, for progress bars of *applied* work
(`sluice index load`, `sluice warm`, `sluice migrate`, the demo, a migration's backfill)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sluice.keys import Keys
from sluice.queue.waiting import states_plan
from sluice.transport.runner import Runner, drive, is_cluster
from sluice.types import EntryId, StreamEntryRef

POLL = 0.1


class Applied:
    """Jobs (each weighing some units: documents, messages, prompts) on their way to applied or
    dead-lettered, read from the consumer group state as `wait()` reads it: no polling of data."""

    def __init__(self, redis: Any, keys: Keys, group: str) -> None:
        self.runner = Runner(redis, cluster=is_cluster(redis))
        self.keys, self.group = keys, group
        self.left: dict[StreamEntryRef, int] = {}
        self.total_units = 0
        self.applied_units = 0
        self.failed: dict[StreamEntryRef, str] = {}
        self.failed_units = 0

    def add(self, handles: Sequence[StreamEntryRef], units: Sequence[int] | None = None) -> None:
        for handle, n in zip(handles, units if units is not None else [1] * len(handles), strict=True):
            self.left[handle] = n
            self.total_units += n

    @property
    def done(self) -> bool:
        return not self.left

    def update(self) -> None:
        """One round trip (per Cluster node) for every job still followed."""
        by_stream: dict[str, list[EntryId]] = defaultdict(list)
        for h in self.left:
            by_stream[h.stream].append(h.entry_id)
        asks = list(by_stream.items())
        states = drive(
            states_plan(self.keys, self.group, asks), self.runner, what="read the progress of jobs"
        )
        for (stream, _ids), state in zip(asks, states, strict=True):
            for entry_id in state.applied:
                self.applied_units += self.left.pop(StreamEntryRef(stream, entry_id))
            for entry_id, reason in state.dead.items():
                ref = StreamEntryRef(stream, entry_id)
                self.failed_units += self.left.pop(ref)
                self.failed[ref] = reason

    def wait(self, timeout: float, tick: Callable[[Applied], None] | None = None) -> bool:
        """Until every job is applied or dead (True), or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while True:
            self.update()
            if tick:
                tick(self)
            if self.done or time.monotonic() >= deadline:
                return self.done
            time.sleep(POLL)

    def bar(self, width: int = 30, what: str = "documents indexed") -> str:
        total = self.total_units
        done = self.applied_units + self.failed_units
        filled = int(width * done / total) if total else width
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.applied_units}/{total} {what}, "
            f"{self.failed_units} failed"
        )

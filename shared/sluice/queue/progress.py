"""Following many jobs to applied or dead-lettered, for progress bars of *applied* work
(`sluice index load`, `sluice warm`, `sluice migrate`, the demo, a migration's backfill)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sluice.keys import Keys
from sluice.queue.waiting import parse_state, state_commands
from sluice.transport.translate import translate_errors
from sluice.types import EntryId, StreamEntryRef, parse_entry_id

STATE_CHUNK = 500  # ids per state check: keeps each XPENDING range small
POLL = 0.1


class Applied:
    """Jobs (each weighing some units: documents, messages, prompts) on their way to applied or
    dead-lettered, read from the consumer group state as `wait()` reads it: no polling of data."""

    def __init__(self, redis: Any, keys: Keys, group: str) -> None:
        self.redis, self.keys, self.group = redis, keys, group
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
        """One round trip per stream and chunk of ids."""
        by_stream: dict[str, list[EntryId]] = defaultdict(list)
        for h in self.left:
            by_stream[h.stream].append(h.entry_id)
        for stream, ids in by_stream.items():
            ids.sort(key=parse_entry_id)
            for start in range(0, len(ids), STATE_CHUNK):
                chunk = ids[start : start + STATE_CHUNK]
                with translate_errors("read the progress of jobs"):
                    pipe = self.redis.pipeline(transaction=False)
                    state_commands(pipe, self.keys, self.group, stream, chunk)
                    state = parse_state(chunk, pipe.execute(raise_on_error=False), self.group)
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

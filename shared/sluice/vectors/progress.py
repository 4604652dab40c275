"""What the workers have finished: many index jobs tracked to applied or dead, and in-flight batches.

`Applied` follows a bulk load or a migration's backfill job by job (weighted by documents) from
the consumer group's state, the same truth `wait()` uses: no polling of indexed data.
`settle_in_flight` is a migration's barrier: it returns once every index job a worker had
already taken when it was called is acknowledged, so no batch that read the index metadata
before a change is still writing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions as rex

from sluice.connection.translate import translate_errors
from sluice.errors import WaitTimeout
from sluice.keys import Keys
from sluice.queue.waiting import parse_state, state_commands
from sluice.types import EntryId, StreamEntryRef, parse_entry_id

STATE_CHUNK = 500  # ids per state check: keeps each XPENDING range small
POLL = 0.1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Applied:
    """Jobs (with a document count each) on their way to applied or dead-lettered."""

    def __init__(self, redis: Any, keys: Keys, group: str) -> None:
        self.redis, self.keys, self.group = redis, keys, group
        self.left: dict[StreamEntryRef, int] = {}
        self.total_docs = 0
        self.applied_docs = 0
        self.failed: dict[StreamEntryRef, str] = {}
        self.failed_docs = 0

    def add(self, handles: Sequence[StreamEntryRef], docs: Sequence[int]) -> None:
        for handle, n in zip(handles, docs, strict=True):
            self.left[handle] = n
            self.total_docs += n

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
                with translate_errors("read the progress of index jobs"):
                    pipe = self.redis.pipeline(transaction=False)
                    state_commands(pipe, self.keys, self.group, stream, chunk)
                    state = parse_state(chunk, pipe.execute(raise_on_error=False), self.group)
                for entry_id in state.applied:
                    self.applied_docs += self.left.pop(StreamEntryRef(stream, entry_id))
                for entry_id, reason in state.dead.items():
                    ref = StreamEntryRef(stream, entry_id)
                    self.failed_docs += self.left.pop(ref)
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

    def bar(self, width: int = 30) -> str:
        total = self.total_docs
        done = self.applied_docs + self.failed_docs
        filled = int(width * done / total) if total else width
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.applied_docs}/{total} documents indexed, "
            f"{self.failed_docs} failed"
        )


def settle_in_flight(redis: Any, keys: Keys, group: str, timeout: float) -> None:
    """Block until the index jobs pending (taken by a worker, not acknowledged) right now are done."""
    marks: dict[str, str] = {}
    with translate_errors("read the pending index jobs"):
        for stream in keys.streams("index"):
            summary = _pending_summary(redis, stream, group)
            if summary:
                marks[stream] = summary
    deadline = time.monotonic() + timeout
    while marks:
        with translate_errors("read the pending index jobs"):
            marks = {s: last for s, last in marks.items() if _pending_until(redis, s, group, last)}
        if not marks:
            return
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"index jobs taken by workers before the change are still pending after {timeout}s "
                f"(streams {sorted(marks)}); are the workers alive? see `sluice status`"
            )
        time.sleep(POLL)


def _no_group(error: Exception) -> bool:
    return "NOGROUP" in str(error) or "no such key" in str(error).lower()


def _pending_summary(redis: Any, stream: str, group: str) -> str | None:
    """The newest pending entry id of `stream` for `group`, or None (nothing pending, no group)."""
    try:
        summary = redis.xpending(stream, group)
    except rex.ResponseError as e:
        if _no_group(e):
            return None
        raise
    return _text(summary["max"]) if int(summary.get("pending") or 0) else None


def _pending_until(redis: Any, stream: str, group: str, last: str) -> bool:
    """True if some entry up to `last` is still pending."""
    try:
        return bool(redis.xpending_range(stream, group, "-", last, 1))
    except rex.ResponseError as e:
        if _no_group(e):
            return False
        raise

"""Where reads gave up waiting for the workers, per stream (for facades with ``on_timeout="warn"``).

When a read waited its whole budget and the workers had still not applied the writes it waited
for, the stream is marked *late* at the newest of those entries. Until the stream has applied
everything up to the mark (a floor, see `sluice.queue.waiting`), reads that would rather go on
than fail check once and do not wait for that stream again: with the workers down, each turn of
a conversation costs one round trip, not the wait timeout. One record per client, so a new
history object per request (as `RunnableWithMessageHistory` builds) still knows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from sluice.types import EntryId, StreamEntryRef, parse_entry_id


class Lateness:
    """Late streams and their marks. Thread-safe; no I/O (callers check the marks)."""

    def __init__(self) -> None:
        self._marks: dict[str, EntryId] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._marks)

    def gave_up(self, handles: Iterable[StreamEntryRef], floors: Mapping[str, EntryId] | None = None) -> None:
        """Mark the streams of `handles` and `floors` late at the newest entry given."""
        entries = [(h.stream, h.entry_id) for h in handles] + list((floors or {}).items())
        with self._lock:
            for stream, entry in entries:
                mark = self._marks.get(stream)
                if mark is None or parse_entry_id(entry) > parse_entry_id(mark):
                    self._marks[stream] = entry

    def marks(self, streams: Iterable[str]) -> dict[str, EntryId]:
        """The marks of those of `streams` that are late."""
        with self._lock:
            return {s: self._marks[s] for s in set(streams) if s in self._marks}

    def caught_up(self, reached: Mapping[str, EntryId]) -> None:
        """Forget the marks the workers have reached (a mark raised meanwhile stays)."""
        with self._lock:
            for stream, mark in reached.items():
                if self._marks.get(stream) == mark:
                    del self._marks[stream]

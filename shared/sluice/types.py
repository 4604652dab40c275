"""Named types for Redis domain values, so signatures say what a string is."""

from __future__ import annotations

from typing import Final, Literal, NamedTuple, NewType

KeyT = NewType("KeyT", str)
"""A Redis key built by `sluice.keys.Keys`."""

EntryId = NewType("EntryId", str)
"""A stream entry id, `<ms>-<seq>`; the version of every write a job makes."""

JobKind = Literal["cache-fill", "cache-warm", "index", "history-append", "checkpoint", "store"]
JOB_KINDS: Final[tuple[JobKind, ...]] = (
    "cache-fill",
    "cache-warm",
    "index",
    "history-append",
    "checkpoint",
    "store",
)


class StreamEntryRef(NamedTuple):
    """Where a job lives: its partition stream and entry id. This is what `wait()` takes."""

    stream: str
    entry_id: EntryId


class NotifiedEntryRef(StreamEntryRef):
    """A handle whose job was enqueued with ``notify``: its worker leaves a done signal that `wait()`
    blocks on. Equal to (and hashed like) the plain `StreamEntryRef` of the same entry."""

    __slots__ = ()


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """`"1700000000000-3"` -> `(1700000000000, 3)`; raises ValueError on anything else."""
    ms, sep, seq = entry_id.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit():
        raise ValueError(f"not a stream entry id: {entry_id!r}")
    return int(ms), int(seq)

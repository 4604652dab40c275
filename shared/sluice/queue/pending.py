"""Pending sets: the tracked jobs of one target key that Redis accepted and no worker applied yet.

A tracked enqueue (``enqueue_many(..., track=True)``) adds each job's entry id to its target key's
pending set in the same script step as the XADD (enqueue.lua); the worker removes the id once the
job's write is done (pending_done.lua), before it acknowledges the entry. So a reader in *any*
process that reads the set, then the data, sees every tracked write to that key accepted before
its read began: an empty set means nothing is pending; otherwise it waits for those ids (the
queue's own state says when each is applied or dead-lettered) and reads again.

The set lives beside the stream (same hash tag), so enqueue.lua can write it atomically; on a
Cluster it sits on another node than the key's data, and the set is then read *before* the data
(one round trip each), never beside it, or a write applied between the two could be missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sluice.keys import Keys
from sluice.transport.runner import Call
from sluice.types import EntryId, JobKind, KeyT, parse_entry_id

PENDING_TTL_MS: Final = 7 * 24 * 3600 * 1000
"""A pending set outlives its last enqueue by as long as a dead marker lives, so an id left by a
dead-lettered job can always be told apart from one still in flight."""


@dataclass(frozen=True, slots=True)
class PendingSet:
    """Where one target key's tracked jobs go: their stream, and the set beside it."""

    stream: KeyT
    key: KeyT

    def read_call(self) -> Call:
        return Call(("SMEMBERS", self.key), route=self.key)

    def done_call(self, keys: Keys, entry_ids: Sequence[str]) -> Call:
        """The worker's call once these jobs' writes are done (pending_done.lua)."""
        prefix = keys.dead_marker(self.stream, EntryId(""))
        return Call((prefix, *entry_ids), route=self.key, script="pending_done", keys=(self.key,))


def pending_set(keys: Keys, kind: JobKind, target_key: str) -> PendingSet:
    stream = keys.stream_for(kind, target_key)
    return PendingSet(stream, keys.pending(stream, target_key))


def parse(reply: Any) -> list[EntryId]:
    """The ids of an SMEMBERS reply, oldest first."""
    if isinstance(reply, BaseException):
        raise reply
    ids = [EntryId(i.decode() if isinstance(i, bytes) else str(i)) for i in reply or ()]
    return sorted(ids, key=parse_entry_id)

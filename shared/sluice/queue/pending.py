"""Pending sets: the tracked jobs of one target key that Redis accepted and no worker applied yet.

A tracked enqueue (``enqueue_many(..., track=True)``) adds each job's entry id to its target key's
pending set in the same script step as the XADD (enqueue.lua); the worker removes the id once the
job's write is done (pending_done.lua), before it acknowledges the entry. So a reader in *any*
process that reads the set, then the data, sees every tracked write to that key accepted before
its read began: an empty set means nothing is pending; otherwise it waits for those ids (the
queue's own state says when each is applied or dead-lettered) and reads again.

A dead-lettered job's id is replaced by ``dead:<id>`` in the same script that dead-letters it
(ack.lua): other processes ignore it (nothing will be applied, nothing to wait for), the process
that wrote it finds it there and raises the failure. It stays as long as the job's dead marker
(7 days); the worker's next write to the key after that (pending_done.lua) drops it.

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


DEAD: Final = "dead:"
"""Prefix of a pending-set member that stands for a dead-lettered job (ack.lua writes it)."""


@dataclass(frozen=True, slots=True)
class Members:
    """What one SMEMBERS of a pending set says: jobs still to be applied, and dead-lettered ones."""

    live: list[EntryId]  # oldest first
    dead: frozenset[EntryId]

    def waited_for(self, own: set[EntryId]) -> list[EntryId]:
        """What a reader waits for: every live job, and of the dead ones those it wrote itself
        (the wait raises their failure); oldest first."""
        return sorted([*self.live, *(self.dead & own)], key=parse_entry_id)


def parse(reply: Any) -> Members:
    """Read an SMEMBERS reply of a pending set."""
    if isinstance(reply, BaseException):
        raise reply
    live: list[EntryId] = []
    dead: set[EntryId] = set()
    for member in reply or ():
        text = member.decode() if isinstance(member, bytes) else str(member)
        if text.startswith(DEAD):
            dead.add(EntryId(text[len(DEAD) :]))
        else:
            live.append(EntryId(text))
    return Members(sorted(live, key=parse_entry_id), frozenset(dead))

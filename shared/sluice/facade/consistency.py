"""Reads that see every write to their key that Redis accepted, whichever process enqueued it.

A facade enqueues its writes tracked (`sluice.queue.pending`). A read of key K runs the read of
K's pending set first in the same round trip as the read of K itself (on a Cluster: just before
it, since the two live on different nodes). An empty set, the common case, costs nothing more;
otherwise the read waits (bounded) until those jobs are applied, then reads K again.

A job that was dead-lettered is reported (`JobFailed`) to the object that enqueued it, once; a
reader elsewhere logs it and reads what is there, since the thread it belongs to goes on.
Histories and checkpointers share this; `enabled=False` is the fire-and-forget mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.errors import JobFailed
from sluice.facade.pending import PendingWrites
from sluice.queue.pending import PendingSet, parse, pending_set
from sluice.transport.runner import AsyncRunner, Call, Runner
from sluice.types import EntryId, JobKind, StreamEntryRef

if TYPE_CHECKING:
    from sluice.core import Core

log = logging.getLogger(__name__)


class ReplicaReads:
    """Read-your-writes across processes for the keys of one job kind."""

    def __init__(
        self, client: Core, kind: JobKind, *, enabled: bool = True, timeout: float | None = None
    ) -> None:
        self.client = client
        self.kind = kind
        self.enabled = enabled
        self.timeout = client.wait_budget(timeout)  # None: the settings' default; 0 stays 0
        self.own = PendingWrites()  # this object's writes: a failure of one of them is raised here

    def wrote(self, target: str, handles: Sequence[StreamEntryRef]) -> None:
        if self.enabled:
            self.own.add(target, handles)

    def where(self, target: str) -> PendingSet:
        return pending_set(self.client.keys, self.kind, target)

    # --- sync ------------------------------------------------------------------------------------
    def read(self, runner: Runner, target: str, calls: Sequence[Call]) -> list[Any]:
        """Replies to `calls` once every accepted write to `target` is applied."""
        return self.read_all(runner, [target], calls)

    def read_all(self, runner: Runner, targets: Sequence[str], calls: Sequence[Call]) -> list[Any]:
        """Replies to `calls` once every accepted write to each of `targets` is applied."""
        if not self.enabled:
            return runner.run(calls)
        wheres = [self.where(t) for t in targets]
        checks = [w.read_call() for w in wheres]
        if runner.cluster:  # the sets live on other nodes than the data: read them first
            replies = [*runner.run(checks), *runner.run(calls)]
        else:
            replies = runner.run([*checks, *calls])
        found = self._found(targets, wheres, replies)
        if not found:
            return replies[len(checks) :]
        for target, where, ids in found:
            self._settle(target, where, ids, self._wait)
        return runner.run(calls)

    def _wait(self, handles: Sequence[StreamEntryRef]) -> None:
        self.client.wait(handles, self.timeout)

    def settle_own(self) -> None:
        """Wait for every write this object made, to any key (a read over many keys)."""
        mine = self.own.snapshot(None).handles
        if mine:
            try:
                self.client.wait(mine, self.timeout)
            except JobFailed:
                self.own.done(mine)  # reported once
                raise
            self.own.done(mine)

    async def asettle_own(self) -> None:
        mine = self.own.snapshot(None).handles
        if mine:
            try:
                await self.client.await_wait(mine, self.timeout)
            except JobFailed:
                self.own.done(mine)
                raise
            self.own.done(mine)

    def flush(self, target: str) -> None:
        """Wait for every pending write to `target` (no read)."""
        if self.enabled:
            self.read(self._runner(), target, [])

    def _runner(self) -> Runner:
        return Runner(self.client.redis, cluster=self.client.capabilities.cluster)

    # --- asyncio ---------------------------------------------------------------------------------
    async def aread(self, runner: AsyncRunner, target: str, calls: Sequence[Call]) -> list[Any]:
        return await self.aread_all(runner, [target], calls)

    async def aread_all(
        self, runner: AsyncRunner, targets: Sequence[str], calls: Sequence[Call]
    ) -> list[Any]:
        if not self.enabled:
            return await runner.run(calls)
        wheres = [self.where(t) for t in targets]
        checks = [w.read_call() for w in wheres]
        if runner.cluster:  # the asyncio runner runs nodes in parallel: the sets must come first
            replies = [*(await runner.run(checks)), *(await runner.run(calls))]
        else:
            replies = await runner.run([*checks, *calls])
        found = self._found(targets, wheres, replies)
        if not found:
            return replies[len(checks) :]
        for target, where, ids in found:
            await self._asettle(target, where, ids)
        return await runner.run(calls)

    async def _asettle(self, target: str, where: PendingSet, ids: Sequence[EntryId]) -> None:
        waiting = [StreamEntryRef(where.stream, i) for i in ids]
        mine = self._mine(target, ids)
        while waiting:
            try:
                await self.client.await_wait(waiting, self.timeout)
                break
            except JobFailed as e:
                waiting = self._failed(e, waiting, mine)
        self.own.done(mine)

    # --- shared ----------------------------------------------------------------------------------
    def _found(
        self, targets: Sequence[str], wheres: Sequence[PendingSet], replies: Sequence[Any]
    ) -> list[tuple[str, PendingSet, list[EntryId]]]:
        """The targets with writes still pending, and their ids."""
        found = []
        for target, where, reply in zip(targets, wheres, replies, strict=False):
            members = parse(reply)
            own = {h.entry_id for h in self.own.snapshot([target]).handles} if members.dead else set()
            ids = members.waited_for(own)
            self._forget_applied(target, ids)
            if ids:
                found.append((target, where, ids))
        return found

    def _forget_applied(self, target: str, ids: Sequence[EntryId]) -> None:
        """Own writes no longer pending are applied (or dead-lettered and already cleaned up)."""
        pending = set(ids)
        self.own.done(h for h in self.own.snapshot([target]).handles if h.entry_id not in pending)

    def _mine(self, target: str, ids: Sequence[EntryId]) -> set[StreamEntryRef]:
        pending = set(ids)
        return {h for h in self.own.snapshot([target]).handles if h.entry_id in pending}

    def _settle(
        self,
        target: str,
        where: PendingSet,
        ids: Sequence[EntryId],
        wait: Callable[[Sequence[StreamEntryRef]], None],
    ) -> None:
        waiting = [StreamEntryRef(where.stream, i) for i in ids]
        mine = self._mine(target, ids)
        while waiting:
            try:
                wait(waiting)
                break
            except JobFailed as e:
                waiting = self._failed(e, waiting, mine)
        self.own.done(mine)

    def _failed(
        self, error: JobFailed, waiting: list[StreamEntryRef], mine: set[StreamEntryRef]
    ) -> list[StreamEntryRef]:
        failed = [h for h in waiting if h.entry_id == error.entry_id]
        if any(h in mine for h in failed):
            self.own.done(mine)  # reported once; the rest of this read's own writes go with it
            raise error
        log.warning("a write to this %s key by another process was dead-lettered: %s", self.kind, error)
        return [h for h in waiting if h.entry_id != error.entry_id]

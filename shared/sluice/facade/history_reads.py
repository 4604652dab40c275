"""Reads of one conversation that see every write to it Redis accepted, whichever process enqueued it.

A history's appends, clears and deletes are enqueued tracked (`sluice.queue.pending`): each job's
entry id sits in the session's pending set until a worker has applied it. A read sends the
SMEMBERS of that set and the read itself in one round trip (on a Cluster the set first, since the
two live on different nodes). An empty set, the common case, costs nothing more; otherwise the
read waits (bounded) for those jobs, under the history's ``on_timeout`` policy, and reads again.

The object's own writes (the client's `SessionWrites`) are still held: a buffered write must be
enqueued before the set can show it, and a dead-lettered write of this client is raised here
(`JobFailed`, once). Another process's dead-lettered write is skipped: there is nothing to wait for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sluice.errors import JobFailed
from sluice.facade.buffer import SessionWrites
from sluice.facade.pending import await_writes, wait_for_writes
from sluice.facade.policy import OnTimeout
from sluice.jobs.models import HistoryAppendPayload
from sluice.queue.pending import Members, parse, pending_set
from sluice.transport.runner import AsyncRunner, Call, Runner
from sluice.types import StreamEntryRef

if TYPE_CHECKING:
    from sluice.core import Core

log = logging.getLogger(__name__)


class HistoryReads:
    """The read side of one session's read-your-writes, across app processes (sync and asyncio)."""

    def __init__(self, client: Core, session_id: str, writes: SessionWrites, *, what: str) -> None:
        self.client = client
        self.session_id = session_id
        self.writes = writes
        self.what = what
        self.where = pending_set(client.keys, "history-append", HistoryAppendPayload.target_of(session_id))

    # --- sync --------------------------------------------------------------------------------------
    def read(
        self,
        runner: Runner,
        own: Sequence[StreamEntryRef],
        calls: Sequence[Call],
        budget: float,
        policy: OnTimeout,
    ) -> list[Any]:
        """Replies to `calls` once every accepted write to the session is applied (or given up on
        under ``on_timeout="warn"``). `own`: this client's unfinished writes to the session."""
        check = self.where.read_call()
        if runner.cluster:  # the set lives on another node than the session: read it first
            replies = [*runner.run([check]), *runner.run(calls)]
        else:
            replies = runner.run([check, *calls])
        waiting, mine = self._pending(parse(replies[0]), own)
        if not waiting:
            return replies[1:]
        deadline = time.monotonic() + budget
        while True:
            try:
                left = max(0.0, deadline - time.monotonic())
                complete = wait_for_writes(self.client, waiting, {}, left, policy, self.what)
                break
            except JobFailed as e:
                waiting = self._failed(e, waiting, mine)
                if not waiting:
                    complete = True
                    break
        if complete:
            self.writes.done(self.session_id, mine)
        return runner.run(calls)

    # --- asyncio -----------------------------------------------------------------------------------
    async def aread(
        self,
        runner: AsyncRunner,
        own: Sequence[StreamEntryRef],
        calls: Sequence[Call],
        budget: float,
        policy: OnTimeout,
    ) -> list[Any]:
        check = self.where.read_call()
        if runner.cluster:  # the asyncio runner runs nodes in parallel: the set must come first
            replies = [*(await runner.run([check])), *(await runner.run(calls))]
        else:
            replies = await runner.run([check, *calls])
        waiting, mine = self._pending(parse(replies[0]), own)
        if not waiting:
            return replies[1:]
        deadline = time.monotonic() + budget
        while True:
            try:
                left = max(0.0, deadline - time.monotonic())
                complete = await await_writes(self.client, waiting, {}, left, policy, self.what)
                break
            except JobFailed as e:
                waiting = self._failed(e, waiting, mine)
                if not waiting:
                    complete = True
                    break
        if complete:
            self.writes.done(self.session_id, mine)
        return await runner.run(calls)

    # --- shared ------------------------------------------------------------------------------------
    def _pending(
        self, members: Members, own: Sequence[StreamEntryRef]
    ) -> tuple[list[StreamEntryRef], list[StreamEntryRef]]:
        """What to wait for (own handles where held: they may carry a done signal), and which of
        those are this client's. Own writes no longer in the set are applied, and forgotten."""
        ids = members.waited_for({h.entry_id for h in own})
        pending = set(ids)
        applied = [h for h in own if h.entry_id not in pending]
        if applied:
            self.writes.done(self.session_id, applied)
        held = {h.entry_id: h for h in own if h.entry_id in pending}
        waiting = [held.get(i) or StreamEntryRef(self.where.stream, i) for i in ids]
        return waiting, list(held.values())

    def _failed(
        self, error: JobFailed, waiting: list[StreamEntryRef], mine: list[StreamEntryRef]
    ) -> list[StreamEntryRef]:
        if any(h.entry_id == error.entry_id for h in mine):
            self.writes.done(self.session_id, mine)  # reported once; this read's other writes go with it
            raise error
        log.warning("%s: a write by another process was dead-lettered: %s", self.what, error)
        return [h for h in waiting if h.entry_id != error.entry_id]

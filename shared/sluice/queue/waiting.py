"""Read-your-writes: has a job been applied?

A job is applied when its consumer group has delivered it (``last-delivered-id >= id``) and it is
no longer pending, and it was not dead-lettered (a dead marker beside the stream says so). That
state is the truth, whatever retries and reclaims happened. Workers also push a signal onto a
per-job list for jobs enqueued with ``notify``, so a waiter blocks on BLPOP instead of polling.

A *floor* stands for handles a caller no longer holds one by one (see `sluice.facade.pending`):
stream S has reached floor F when every entry of S up to F is applied or dead-lettered, i.e. the
group has delivered F and nothing up to F is pending. That waits for others' jobs as well, never
for fewer than the forgotten handles.

Each check is one read-only script call per stream (job_state.lua: the group's last-delivered id,
the pending ids in the range, the dead markers), all streams in one batch: a sans-I/O plan that
`Waiter` and `AsyncWaiter` run on the sync and asyncio runners (`sluice.transport.runner`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.errors import JobFailed, SluiceError, WaitTimeout
from sluice.keys import Keys
from sluice.transport.runner import AsyncRunner, Call, Plan, Runner, adrive, drive, is_cluster
from sluice.transport.translate import to_sluice_error
from sluice.types import EntryId, NotifiedEntryRef, StreamEntryRef, parse_entry_id

PENDING_SCAN = 1000  # pending entries one state check lists (more: the range counts as unapplied)
STATE_CHUNK = 500  # ids per state check: keeps each dead-marker MGET and pending range small
SIGNAL_BLOCK = 0.25  # seconds one BLPOP on a done signal blocks before the state is checked again
POLL_START = 0.001  # a job enqueued without notify leaves no signal: its state is polled, the first
POLL_CAP = 0.05  # pause this long, each next one twice as long, up to POLL_CAP. (Not BLPOP with a
# short timeout: the server ends blocked commands on its `hz` clock, 100 ms by default.)
FLOOR_POLL_CAP = POLL_CAP  # seconds between checks of a floor at most (no signal tells it)
HEARTBEATS_READ = 50  # most recent heartbeats a timed-out wait reads to say why
_STREAM_KIND = re.compile(r"\{([^{}:]+):\d+\}$")


@dataclass(frozen=True, slots=True)
class StreamState:
    """What one round trip tells about some entries of one stream."""

    applied: frozenset[EntryId]
    dead: dict[EntryId, str]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _state_call(keys: Keys, group: str, stream: str, ordered: Sequence[EntryId]) -> Call:
    """job_state.lua over `ordered` (sorted ids of `stream`): one call on the stream's slot."""
    dead = tuple(keys.dead_marker(stream, i) for i in ordered)
    return Call((group, ordered[0], ordered[-1], PENDING_SCAN), stream, "job_state", (stream, *dead))


def states_plan(
    keys: Keys, group: str, asks: Sequence[tuple[str, Sequence[EntryId]]]
) -> Plan[list[StreamState]]:
    """The state of each (stream, ids) asked about, in order: one batch (one round trip per node),
    STATE_CHUNK ids per script call."""
    chunks: list[tuple[int, list[EntryId]]] = []
    for n, (_stream, ids) in enumerate(asks):
        ordered = sorted(set(ids), key=parse_entry_id)
        chunks.extend((n, ordered[k : k + STATE_CHUNK]) for k in range(0, len(ordered), STATE_CHUNK))
    replies = yield [_state_call(keys, group, asks[n][0], chunk) for n, chunk in chunks]
    applied: list[set[EntryId]] = [set() for _ in asks]
    dead: list[dict[EntryId, str]] = [{} for _ in asks]
    for (n, chunk), reply in zip(chunks, replies, strict=True):
        state = parse_state(chunk, reply)
        applied[n].update(state.applied)
        dead[n].update(state.dead)
    return [StreamState(frozenset(a), d) for a, d in zip(applied, dead, strict=True)]


def parse_state(ordered: Sequence[EntryId], reply: Any) -> StreamState:
    """Read job_state.lua's reply for the sorted ids `ordered`."""
    if isinstance(reply, Exception):
        raise to_sluice_error(reply, "wait") or reply
    last_id, pending, dead_values = reply
    dead = {i: _text(v) for i, v in zip(ordered, dead_values, strict=True) if v is not None}
    if last_id is None:
        return StreamState(frozenset(), dead)  # no worker has read this stream yet: nothing applied
    last = parse_entry_id(_text(last_id))
    pending_ids = {_text(p) for p in pending}
    if len(pending_ids) >= PENDING_SCAN:  # cannot rule out pending entries past the page
        return StreamState(frozenset(), dead)
    applied = frozenset(
        i for i in ordered if parse_entry_id(i) <= last and i not in pending_ids and i not in dead
    )
    return StreamState(applied, dead)


def floors_plan(group: str, floors: Mapping[str, EntryId]) -> Plan[list[str]]:
    """The streams that have reached their floor: the group has delivered it and nothing up to it
    is pending (one batch)."""
    streams = list(floors)
    replies = yield [Call((group, "-", floors[s], 1), s, "job_state", (s,)) for s in streams]
    out = []
    for stream, reply in zip(streams, replies, strict=True):
        if isinstance(reply, Exception):
            raise to_sluice_error(reply, "wait") or reply
        last, pending, _dead = reply
        if last is not None and parse_entry_id(_text(last)) >= parse_entry_id(floors[stream]) and not pending:
            out.append(stream)
    return out


def beats_plan(keys: Keys) -> Plan[list[dict[str, Any]] | None]:
    """The live heartbeats of a namespace (None when they cannot be read, e.g. an ACL without them)."""
    registry = keys.workers()
    (ids,) = yield [Call(("ZRANGE", registry, -HEARTBEATS_READ, -1), registry)]
    if isinstance(ids, Exception):
        return None
    if not ids:
        return []
    bodies = yield [Call(("GET", keys.worker(_text(i))), keys.worker(_text(i))) for i in ids]
    if any(isinstance(b, Exception) for b in bodies):
        return None
    return _parse_beats(bodies)


def finished_of(ids: Sequence[EntryId], state: StreamState) -> list[EntryId]:
    """Ids applied or dead-lettered: nothing left to wait for."""
    return [i for i in ids if i in state.applied or i in state.dead]


def _group_by_stream(handles: Iterable[StreamEntryRef]) -> dict[str, dict[EntryId, StreamEntryRef]]:
    """Handles by stream and entry id (one per entry: the first given, so its class is kept)."""
    by_stream: dict[str, dict[EntryId, StreamEntryRef]] = defaultdict(dict)
    for h in handles:
        by_stream[h.stream].setdefault(h.entry_id, h)
    return by_stream


def _raise_dead(dead: dict[EntryId, str]) -> None:
    if dead:
        entry_id, reason = next(iter(dead.items()))
        raise JobFailed(entry_id, reason)


def _parse_beats(bodies: Sequence[Any]) -> list[dict[str, Any]]:
    beats: list[dict[str, Any]] = []
    for body in bodies:
        if body is None:  # expired: that worker stopped beating
            continue
        try:
            beat = json.loads(body)
        except ValueError:
            continue
        if isinstance(beat, dict):
            beats.append(beat)
    return beats


def _handles_timeout(
    left: Sequence[StreamEntryRef], total: int, timeout: float, keys: Keys, beats: list[dict[str, Any]] | None
) -> WaitTimeout:
    first = left[0]
    head = (
        f"{len(left)} of {total} jobs not applied after {timeout}s (first: {first.stream} {first.entry_id})"
    )
    return WaitTimeout(timeout_message(head, first.stream, keys, beats))


def _floor_timeout(
    left: Mapping[str, EntryId], timeout: float, keys: Keys, beats: list[dict[str, Any]] | None
) -> WaitTimeout:
    stream, floor = next(iter(left.items()))
    head = f"jobs up to {floor} of {stream} (and {len(left) - 1} more streams) not applied after {timeout}s"
    return WaitTimeout(timeout_message(head, stream, keys, beats))


def timeout_message(head: str, stream: str, keys: Keys, beats: list[dict[str, Any]] | None) -> str:
    """`head` (what was not applied in time), then why, as far as the namespace's heartbeats tell
    (`beats`: the live ones; None when they could not be read)."""
    ns = keys.namespace
    status = f"see `sluice --namespace {ns} status`"
    if beats is None:
        return f"{head}; are workers running? {status}"
    if not beats:
        return (
            f"{head}: no worker heartbeat in namespace {ns!r}: are workers running? Start them on this "
            f"Redis with SLUICE_NAMESPACE={ns} (a worker without it serves the namespace 'sluice')"
        )
    match = _STREAM_KIND.search(stream)
    kind = match[1] if match else None
    serving = [b for b in beats if kind is None or kind in (b.get("kinds") or [kind])]
    if not serving:
        return (
            f"{head}: {len(beats)} worker(s) beat in namespace {ns!r} but none takes {kind!r} jobs "
            f"(their --kinds / SLUICE_WORKER__KINDS leave it out); {status}"
        )
    return f"{head}; {len(serving)} worker(s) serve namespace {ns!r} but have not applied them yet; {status}"


class Waiter:
    """Blocks until jobs are applied (sync); the round trips are the plans above."""

    def __init__(self, redis: Any, keys: Keys, group: str, *, block: float = SIGNAL_BLOCK) -> None:
        self._runner = Runner(redis, cluster=is_cluster(redis))
        self._keys = keys
        self._group = group
        self._block = block  # below the socket timeout, or every BLPOP would time out

    def remaining(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        """Handles not applied yet (one round trip); raises JobFailed for a dead-lettered one."""
        by_stream = _group_by_stream(handles)
        states = drive(states_plan(self._keys, self._group, _asks(by_stream)), self._runner, what="wait")
        return _left(by_stream, states)

    def finished(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        """The handles applied or dead-lettered (one round trip; never raises JobFailed)."""
        by_stream = _group_by_stream(handles)
        states = drive(states_plan(self._keys, self._group, _asks(by_stream)), self._runner, what="wait")
        return _finished(by_stream, states)

    def reached(self, floors: Mapping[str, EntryId]) -> list[str]:
        """The streams that have reached their floor (one round trip, no waiting)."""
        return drive(floors_plan(self._group, floors), self._runner, what="wait")

    def wait(self, handles: Sequence[StreamEntryRef], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        left = self.remaining(handles)
        delay = POLL_START
        while left:
            budget = deadline - time.monotonic()
            if budget <= 0:
                raise _handles_timeout(left, len(handles), timeout, self._keys, self._beats())
            notified = _notified(left)
            if notified is not None:
                self._runner.run([_signal_call(self._keys, notified, self._block, budget)], what="wait")
            else:
                time.sleep(min(delay, budget))
                delay = min(delay * 2, POLL_CAP)
            left = self.remaining(left)

    def wait_floors(self, floors: Mapping[str, EntryId], timeout: float) -> None:
        """Block until every stream has reached its floor; raises WaitTimeout."""
        deadline = time.monotonic() + timeout
        left = dict(floors)
        delay = POLL_START
        while True:
            for stream in self.reached(left):
                del left[stream]
            budget = deadline - time.monotonic()
            if not left:
                return
            if budget <= 0:
                raise _floor_timeout(left, timeout, self._keys, self._beats())
            time.sleep(min(delay, budget))
            delay = min(delay * 2, FLOOR_POLL_CAP)

    def _beats(self) -> list[dict[str, Any]] | None:
        try:
            return drive(beats_plan(self._keys), self._runner, what="read worker heartbeats")
        except SluiceError:  # the message only loses its hint
            return None


class AsyncWaiter:
    """`Waiter` for asyncio: the same plans on an `AsyncRunner`."""

    def __init__(self, redis: Any, keys: Keys, group: str, *, block: float = SIGNAL_BLOCK) -> None:
        self._runner = AsyncRunner(redis, cluster=is_cluster(redis))
        self._keys = keys
        self._group = group
        self._block = block

    async def remaining(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        by_stream = _group_by_stream(handles)
        plan = states_plan(self._keys, self._group, _asks(by_stream))
        return _left(by_stream, await adrive(plan, self._runner, what="wait"))

    async def finished(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        by_stream = _group_by_stream(handles)
        plan = states_plan(self._keys, self._group, _asks(by_stream))
        return _finished(by_stream, await adrive(plan, self._runner, what="wait"))

    async def reached(self, floors: Mapping[str, EntryId]) -> list[str]:
        return await adrive(floors_plan(self._group, floors), self._runner, what="wait")

    async def wait(self, handles: Sequence[StreamEntryRef], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        left = await self.remaining(handles)
        delay = POLL_START
        while left:
            budget = deadline - time.monotonic()
            if budget <= 0:
                raise _handles_timeout(left, len(handles), timeout, self._keys, await self._beats())
            notified = _notified(left)
            if notified is not None:
                await self._runner.run([_signal_call(self._keys, notified, self._block, budget)], what="wait")
            else:
                await asyncio.sleep(min(delay, budget))
                delay = min(delay * 2, POLL_CAP)
            left = await self.remaining(left)

    async def wait_floors(self, floors: Mapping[str, EntryId], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        left = dict(floors)
        delay = POLL_START
        while True:
            for stream in await self.reached(left):
                del left[stream]
            budget = deadline - time.monotonic()
            if not left:
                return
            if budget <= 0:
                raise _floor_timeout(left, timeout, self._keys, await self._beats())
            await asyncio.sleep(min(delay, budget))
            delay = min(delay * 2, FLOOR_POLL_CAP)

    async def _beats(self) -> list[dict[str, Any]] | None:
        try:
            return await adrive(beats_plan(self._keys), self._runner, what="read worker heartbeats")
        except SluiceError:
            return None


def _asks(by_stream: Mapping[str, Mapping[EntryId, StreamEntryRef]]) -> list[tuple[str, list[EntryId]]]:
    return [(stream, list(ids)) for stream, ids in by_stream.items()]


def _left(
    by_stream: Mapping[str, Mapping[EntryId, StreamEntryRef]], states: Sequence[StreamState]
) -> list[StreamEntryRef]:
    """The handles not applied yet; raises JobFailed for a dead-lettered one."""
    left: list[StreamEntryRef] = []
    for ids, state in zip(by_stream.values(), states, strict=True):
        _raise_dead(state.dead)
        left.extend(h for i, h in ids.items() if i not in state.applied)
    return left


def _finished(
    by_stream: Mapping[str, Mapping[EntryId, StreamEntryRef]], states: Sequence[StreamState]
) -> list[StreamEntryRef]:
    out: list[StreamEntryRef] = []
    for stream, ids, state in zip(by_stream, by_stream.values(), states, strict=True):
        out.extend(StreamEntryRef(stream, i) for i in finished_of(list(ids), state))
    return out


def _signal_call(keys: Keys, handle: StreamEntryRef, block: float, budget: float) -> Call:
    """BLPOP on a notified job's done signal, for at most `block` seconds and the budget left."""
    signal = keys.done_signal(handle.stream, handle.entry_id)
    return Call(("BLPOP", signal, max(0.01, min(block, budget))), signal)


def _notified(left: Sequence[StreamEntryRef]) -> StreamEntryRef | None:
    """A handle whose worker leaves a done signal to block on, if any is left."""
    return next((h for h in left if isinstance(h, NotifiedEntryRef)), None)

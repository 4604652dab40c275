"""Read-your-writes: has a job been applied?

A job is applied when its consumer group has delivered it (``last-delivered-id >= id``) and it is
no longer pending, and it was not dead-lettered (a dead marker beside the stream says so). That
state is the truth, whatever retries and reclaims happened. Workers also push a signal onto a
per-job list for jobs enqueued with ``notify``, so a waiter blocks on BLPOP instead of polling.

A *floor* stands for handles a caller no longer holds one by one (see `sluice.facade.pending`):
stream S has reached floor F when every entry of S up to F is applied or dead-lettered, i.e. the
group has delivered F and nothing up to F is pending. That waits for others' jobs as well, never
for fewer than the forgotten handles.
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
from sluice.transport.translate import translate_errors
from sluice.types import EntryId, NotifiedEntryRef, StreamEntryRef, parse_entry_id

PENDING_SCAN = 1000
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


def state_commands(pipe: Any, keys: Keys, group: str, stream: str, ids: Sequence[EntryId]) -> None:
    """Queue the commands `parse_state` reads: all on the stream's slot, one round trip."""
    ordered = sorted(ids, key=parse_entry_id)
    pipe.xinfo_groups(stream)
    pipe.xpending_range(stream, group, ordered[0], ordered[-1], PENDING_SCAN)
    # MGET by name: cluster pipelines refuse the mget() helper; these keys share the stream's slot
    pipe.execute_command("MGET", *[keys.dead_marker(stream, i) for i in ordered])


def parse_state(ids: Sequence[EntryId], replies: Sequence[Any], group: str) -> StreamState:
    """Parse the replies of `state_commands` (executed with raise_on_error=False)."""
    groups, pending, dead_values = replies
    ordered = sorted(ids, key=parse_entry_id)
    for reply in replies:
        if isinstance(reply, Exception) and not _no_group(reply):
            raise reply
    if isinstance(groups, Exception) or isinstance(pending, Exception):
        groups, pending = [], []  # no consumer group yet: no worker has started, nothing applied
    last: tuple[int, int] | None = None
    for g in groups:
        if _text(g.get("name")) == group:
            last = parse_entry_id(_text(g.get("last-delivered-id")))
    dead = {i: _text(v) for i, v in zip(ordered, dead_values, strict=True) if v is not None}
    if last is None or isinstance(dead_values, Exception):
        return StreamState(frozenset(), dead)
    pending_ids = {_text(p["message_id"]) for p in pending}
    truncated = len(pending) >= PENDING_SCAN  # cannot rule out pending entries past the page
    applied = frozenset(
        i
        for i in ordered
        if parse_entry_id(i) <= last and i not in pending_ids and i not in dead and not truncated
    )
    return StreamState(applied, dead)


def _no_group(error: Exception) -> bool:
    text = str(error)
    return "NOGROUP" in text or "no such key" in text.lower()


def floor_commands(pipe: Any, group: str, stream: str, floor: EntryId) -> None:
    """Queue what `floor_reached` reads: the group's position and the first pending entry up to `floor`."""
    pipe.xinfo_groups(stream)
    pipe.xpending_range(stream, group, "-", floor, 1)


def floor_reached(floor: EntryId, replies: Sequence[Any], group: str) -> bool:
    """Parse `floor_commands` replies (executed with raise_on_error=False)."""
    groups, pending = replies
    for reply in replies:
        if isinstance(reply, Exception):
            if _no_group(reply):
                return False  # no worker has read this stream yet: nothing is applied
            raise reply
    last = next((_text(g.get("last-delivered-id")) for g in groups if _text(g.get("name")) == group), None)
    return last is not None and parse_entry_id(last) >= parse_entry_id(floor) and not pending


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
    """Blocks until jobs are applied (sync)."""

    def __init__(self, redis: Any, keys: Keys, group: str, *, block: float = SIGNAL_BLOCK) -> None:
        self._redis = redis
        self._keys = keys
        self._group = group
        self._block = block  # below the socket timeout, or every BLPOP would time out

    def remaining(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        """Handles not applied yet; raises JobFailed for a dead-lettered one."""
        left: list[StreamEntryRef] = []
        for stream, ids in _group_by_stream(handles).items():
            ordered = list(ids)
            with translate_errors("wait"):
                pipe = self._redis.pipeline(transaction=False)
                state_commands(pipe, self._keys, self._group, stream, ordered)
                state = parse_state(ordered, pipe.execute(raise_on_error=False), self._group)
            _raise_dead(state.dead)
            left.extend(h for i, h in ids.items() if i not in state.applied)
        return left

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
                signal = self._keys.done_signal(notified.stream, notified.entry_id)
                with translate_errors("wait"):
                    self._redis.blpop([signal], timeout=max(0.01, min(self._block, budget)))
            else:
                time.sleep(min(delay, budget))
                delay = min(delay * 2, POLL_CAP)
            left = self.remaining(left)

    def _beats(self) -> list[dict[str, Any]] | None:
        """The live heartbeats of this namespace (None when they cannot be read)."""
        try:
            with translate_errors("read worker heartbeats"):
                ids = self._redis.zrange(self._keys.workers(), -HEARTBEATS_READ, -1)
                if not ids:
                    return []
                pipe = self._redis.pipeline(transaction=False)
                for i in ids:
                    pipe.get(self._keys.worker(_text(i)))
                return _parse_beats(pipe.execute())
        except SluiceError:  # e.g. an ACL without these keys: the message only loses its hint
            return None

    def finished(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        """The handles applied or dead-lettered (one round trip per stream; never raises JobFailed)."""
        out: list[StreamEntryRef] = []
        for stream, ids in _group_by_stream(handles).items():
            ordered = list(ids)
            with translate_errors("wait"):
                pipe = self._redis.pipeline(transaction=False)
                state_commands(pipe, self._keys, self._group, stream, ordered)
                state = parse_state(ordered, pipe.execute(raise_on_error=False), self._group)
            out.extend(StreamEntryRef(stream, i) for i in finished_of(ordered, state))
        return out

    def reached(self, floors: Mapping[str, EntryId]) -> list[str]:
        """The streams that have reached their floor (one round trip per stream, no waiting)."""
        out = []
        for stream, floor in floors.items():
            with translate_errors("wait"):
                pipe = self._redis.pipeline(transaction=False)
                floor_commands(pipe, self._group, stream, floor)
                if floor_reached(floor, pipe.execute(raise_on_error=False), self._group):
                    out.append(stream)
        return out

    def wait_floors(self, floors: Mapping[str, EntryId], timeout: float) -> None:
        """Block until every stream has reached its floor; raises WaitTimeout."""
        deadline = time.monotonic() + timeout
        left = dict(floors)
        delay = 0.001
        while True:
            for stream, floor in list(left.items()):
                with translate_errors("wait"):
                    pipe = self._redis.pipeline(transaction=False)
                    floor_commands(pipe, self._group, stream, floor)
                    if floor_reached(floor, pipe.execute(raise_on_error=False), self._group):
                        del left[stream]
            budget = deadline - time.monotonic()
            if not left:
                return
            if budget <= 0:
                raise _floor_timeout(left, timeout, self._keys, self._beats())
            time.sleep(min(delay, budget))
            delay = min(delay * 2, FLOOR_POLL_CAP)


class AsyncWaiter:
    """Blocks until jobs are applied (asyncio)."""

    def __init__(self, redis: Any, keys: Keys, group: str, *, block: float = SIGNAL_BLOCK) -> None:
        self._redis = redis
        self._keys = keys
        self._group = group
        self._block = block  # below the socket timeout, or every BLPOP would time out

    async def remaining(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        left: list[StreamEntryRef] = []
        for stream, ids in _group_by_stream(handles).items():
            ordered = list(ids)
            with translate_errors("wait"):
                pipe = self._redis.pipeline(transaction=False)
                state_commands(pipe, self._keys, self._group, stream, ordered)
                state = parse_state(ordered, await pipe.execute(raise_on_error=False), self._group)
            _raise_dead(state.dead)
            left.extend(h for i, h in ids.items() if i not in state.applied)
        return left

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
                signal = self._keys.done_signal(notified.stream, notified.entry_id)
                with translate_errors("wait"):
                    await self._redis.blpop([signal], timeout=max(0.01, min(self._block, budget)))
            else:
                await asyncio.sleep(min(delay, budget))
                delay = min(delay * 2, POLL_CAP)
            left = await self.remaining(left)

    async def _beats(self) -> list[dict[str, Any]] | None:
        try:
            with translate_errors("read worker heartbeats"):
                ids = await self._redis.zrange(self._keys.workers(), -HEARTBEATS_READ, -1)
                if not ids:
                    return []
                pipe = self._redis.pipeline(transaction=False)
                for i in ids:
                    pipe.get(self._keys.worker(_text(i)))
                return _parse_beats(await pipe.execute())
        except SluiceError:
            return None

    async def finished(self, handles: Iterable[StreamEntryRef]) -> list[StreamEntryRef]:
        out: list[StreamEntryRef] = []
        for stream, ids in _group_by_stream(handles).items():
            ordered = list(ids)
            with translate_errors("wait"):
                pipe = self._redis.pipeline(transaction=False)
                state_commands(pipe, self._keys, self._group, stream, ordered)
                state = parse_state(ordered, await pipe.execute(raise_on_error=False), self._group)
            out.extend(StreamEntryRef(stream, i) for i in finished_of(ordered, state))
        return out

    async def reached(self, floors: Mapping[str, EntryId]) -> list[str]:
        out = []
        for stream, floor in floors.items():
            with translate_errors("wait"):
                pipe = self._redis.pipeline(transaction=False)
                floor_commands(pipe, self._group, stream, floor)
                if floor_reached(floor, await pipe.execute(raise_on_error=False), self._group):
                    out.append(stream)
        return out

    async def wait_floors(self, floors: Mapping[str, EntryId], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        left = dict(floors)
        delay = 0.001
        while True:
            for stream, floor in list(left.items()):
                with translate_errors("wait"):
                    pipe = self._redis.pipeline(transaction=False)
                    floor_commands(pipe, self._group, stream, floor)
                    if floor_reached(floor, await pipe.execute(raise_on_error=False), self._group):
                        del left[stream]
            budget = deadline - time.monotonic()
            if not left:
                return
            if budget <= 0:
                raise _floor_timeout(left, timeout, self._keys, await self._beats())
            await asyncio.sleep(min(delay, budget))
            delay = min(delay * 2, FLOOR_POLL_CAP)


def _notified(left: Sequence[StreamEntryRef]) -> StreamEntryRef | None:
    """A handle whose worker leaves a done signal to block on, if any is left."""
    return next((h for h in left if isinstance(h, NotifiedEntryRef)), None)

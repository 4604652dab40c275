"""Session consistency: the writes a facade object has made and not yet seen applied, per key.

A read of key K waits only for this object's pending writes to K (bounded), never for others.

Bounded, so an app that writes many keys it never reads (a cache filled with unique prompts)
does not grow without limit: at most `PENDING_LIMIT` handles are held one by one. Every
`PRUNE_CHUNK` writes past `PENDING_LIMIT - PRUNE_CHUNK` the oldest chunk is checked in one round
trip per stream: handles seen applied (or dead-lettered) are forgotten, and the ones still
unapplied are folded into a per-stream *floor*, the newest entry id given up. A read then
waits, besides its key's handles, until each floor's stream has applied everything up to the
floor (`sluice.queue.waiting`), so read-your-writes holds for forgotten handles too; that can
wait for other writes as well, never for fewer. Held state: at most `PENDING_LIMIT` handles
plus one floor per stream. With workers keeping up, no floor is ever set and reads cost what
they did; only an object that is `PENDING_LIMIT - PRUNE_CHUNK` writes ahead of its workers
pays an extra round trip per read until they catch up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sluice.errors import JobFailed, SluiceError, WaitTimeout
from sluice.facade.policy import OnTimeout
from sluice.types import EntryId, StreamEntryRef, parse_entry_id

if TYPE_CHECKING:
    from sluice.core import Core

log = logging.getLogger(__name__)

PENDING_LIMIT: Final = 10_000
"""Handles one facade object holds one by one; past it the oldest are folded into floors."""
PRUNE_CHUNK: Final = 1_000
"""Handles checked (one round trip per stream) each time the held ones near `PENDING_LIMIT`."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a read waits for: its keys' handles and every floor."""

    handles: list[StreamEntryRef]
    floors: dict[str, EntryId]

    def __bool__(self) -> bool:
        return bool(self.handles or self.floors)


class PendingWrites:
    """Handles by key, oldest first, bounded by `limit`; the overflow becomes per-stream floors.

    Thread-safe; no I/O. Every operation costs in proportion to the handles it is given or
    returns, never to all those held.
    """

    def __init__(self, limit: int = PENDING_LIMIT, chunk: int = PRUNE_CHUNK) -> None:
        if not 0 < chunk < limit:
            raise ValueError("need 0 < chunk < limit")
        self.limit = limit
        self.chunk = chunk
        self._order: OrderedDict[StreamEntryRef, str] = OrderedDict()  # handle -> key, oldest first
        self._by_key: dict[str, dict[StreamEntryRef, None]] = {}
        self._floors: dict[str, EntryId] = {}
        self._pruning = False
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Handles plus floors: 0 means a read has nothing to wait for."""
        return len(self._order) + len(self._floors)

    @property
    def floors(self) -> dict[str, EntryId]:
        with self._lock:
            return dict(self._floors)

    def add(self, key: str, handles: Iterable[StreamEntryRef]) -> bool:
        """Hold `handles` for `key`; True when the caller should `prune` (see the module docstring)."""
        with self._lock:
            held = self._by_key.setdefault(key, {})
            for h in handles:
                self._order[h] = key
                held[h] = None
            while len(self._order) > self.limit:  # the hard bound, without I/O
                self._fold(1)
            due = not self._pruning and len(self._order) >= self.limit - self.chunk
            if due:
                self._pruning = True
            return due

    def snapshot(self, keys: Sequence[str] | None) -> Snapshot:
        """The handles of `keys` (None: all) and the floors."""
        with self._lock:
            if keys is None:
                handles = list(self._order)
            else:
                handles = [h for k in keys for h in self._by_key.get(k, ())]
            return Snapshot(handles, dict(self._floors))

    def done(self, handles: Iterable[StreamEntryRef], floors: dict[str, EntryId] | None = None) -> None:
        """Forget handles seen applied (or failed: a failure is reported once), and floors reached
        (a floor raised meanwhile stays)."""
        with self._lock:
            for h in handles:
                key = self._order.pop(h, None)
                if key is None:
                    continue
                held = self._by_key[key]
                held.pop(h, None)
                if not held:
                    del self._by_key[key]
            for stream, floor in (floors or {}).items():
                if self._floors.get(stream) == floor:
                    del self._floors[stream]

    def oldest(self) -> list[StreamEntryRef]:
        """The oldest `chunk` handles, for `prune`."""
        with self._lock:
            return [h for h, _ in zip(self._order, range(self.chunk), strict=False)]

    def pruned(self, checked: Sequence[StreamEntryRef], finished: Iterable[StreamEntryRef]) -> None:
        """After a prune: forget the finished handles and fold the rest of `checked` into floors."""
        self.done(finished)
        with self._lock:
            for h in checked:
                if h in self._order:
                    self._forget_into_floor(h)
            self._pruning = False

    def _fold(self, n: int) -> None:
        for _ in range(n):
            h = next(iter(self._order))
            self._forget_into_floor(h)

    def _forget_into_floor(self, h: StreamEntryRef) -> None:
        key = self._order.pop(h)
        held = self._by_key[key]
        held.pop(h, None)
        if not held:
            del self._by_key[key]
        floor = self._floors.get(h.stream)
        if floor is None or parse_entry_id(h.entry_id) > parse_entry_id(floor):
            self._floors[h.stream] = h.entry_id


def _streams(handles: Sequence[StreamEntryRef], floors: Mapping[str, EntryId]) -> set[str]:
    return {h.stream for h in handles} | set(floors)


def _still_late(client: Core, streams: set[str]) -> set[str]:
    """Of `streams`, those marked late whose workers have not reached the mark yet (one check)."""
    marks = client.lateness.marks(streams) if client.lateness else {}
    if not marks:
        return set()
    reached = client.waiter.reached(marks)
    client.lateness.caught_up({s: marks[s] for s in reached})
    return set(marks) - set(reached)


async def _astill_late(client: Core, streams: set[str]) -> set[str]:
    marks = client.lateness.marks(streams) if client.lateness else {}
    if not marks:
        return set()
    reached = await client.awaiter.reached(marks)
    client.lateness.caught_up({s: marks[s] for s in reached})
    return set(marks) - set(reached)


def _gave_up(client: Core, what: str, error: WaitTimeout, policy: OnTimeout, todo: Snapshot) -> None:
    if policy == "raise":
        raise error
    client.lateness.gave_up(todo.handles, todo.floors)
    log.warning(
        "%s: reading without writes the workers have not applied (%s); until they catch up, "
        "reads do not wait for them again",
        what,
        error,
    )


def wait_for_writes(
    client: Core,
    handles: Sequence[StreamEntryRef],
    floors: Mapping[str, EntryId],
    timeout: float | None,
    policy: OnTimeout,
    what: str,
) -> bool:
    """Before a read: wait (`timeout`; None: the settings' default) for `handles` and `floors`.

    True when all are applied. False when, under ``on_timeout="warn"``, the read goes on without
    some (a warning is logged; see `sluice.queue.lateness`). Raises `JobFailed`, and `WaitTimeout`
    under ``"raise"``.
    """
    budget = client.wait_budget(timeout)
    late = _still_late(client, _streams(handles, floors)) if policy == "warn" else set()
    todo = Snapshot(
        [h for h in dict.fromkeys(handles) if h.stream not in late],
        {s: f for s, f in floors.items() if s not in late},
    )
    deadline = time.monotonic() + budget
    try:
        if todo.handles:
            client.wait(todo.handles, budget)
        if todo.floors:
            client.waiter.wait_floors(todo.floors, max(0.0, deadline - time.monotonic()))
    except WaitTimeout as e:
        _gave_up(client, what, e, policy, todo)
        return False
    if late:
        log.debug("%s: workers still late on %s; reading without waiting", what, sorted(late))
    return not late


async def await_writes(
    client: Core,
    handles: Sequence[StreamEntryRef],
    floors: Mapping[str, EntryId],
    timeout: float | None,
    policy: OnTimeout,
    what: str,
) -> bool:
    """`wait_for_writes` for asyncio."""
    budget = client.wait_budget(timeout)
    late = await _astill_late(client, _streams(handles, floors)) if policy == "warn" else set()
    todo = Snapshot(
        [h for h in dict.fromkeys(handles) if h.stream not in late],
        {s: f for s, f in floors.items() if s not in late},
    )
    deadline = time.monotonic() + budget
    try:
        if todo.handles:
            await client.await_wait(todo.handles, budget)
        if todo.floors:
            await client.awaiter.wait_floors(todo.floors, max(0.0, deadline - time.monotonic()))
    except WaitTimeout as e:
        _gave_up(client, what, e, policy, todo)
        return False
    if late:
        log.debug("%s: workers still late on %s; reading without waiting", what, sorted(late))
    return not late


class ReadYourWrites:
    """A facade object's pending writes and the waiting for them (sync and asyncio).

    `settle` raises `JobFailed` (the failed handles are forgotten: reported once) and, under
    ``on_timeout="raise"``, `WaitTimeout`. Writes not seen applied stay pending, unless
    `forget_on_timeout` (a cache: a fill that did not land in time is given up).
    """

    def __init__(self, client: Core, *, forget_on_timeout: bool, limit: int = PENDING_LIMIT) -> None:
        self.client = client
        self.pending = PendingWrites(limit, min(PRUNE_CHUNK, limit // 2))
        self.forget_on_timeout = forget_on_timeout

    def __len__(self) -> int:
        return len(self.pending)

    def _after(self, todo: Snapshot, complete: bool) -> None:
        if complete or self.forget_on_timeout:
            self.pending.done(todo.handles, todo.floors)

    # --- sync --------------------------------------------------------------------------------------
    def add(self, key: str, handles: Sequence[StreamEntryRef]) -> None:
        if self.pending.add(key, handles):
            checked = self.pending.oldest()
            finished: list[StreamEntryRef] = []
            try:
                finished = self.client.waiter.finished(checked)
            except SluiceError as e:  # the write itself succeeded: never fail it for this
                log.warning("could not check old writes (%s); a read will wait for all of them", e)
            finally:
                self.pending.pruned(checked, finished)

    def settle(
        self,
        keys: Sequence[str] | None,
        timeout: float | None,
        policy: OnTimeout = "raise",
        what: str = "read",
    ) -> None:
        if not len(self.pending):
            return
        todo = self.pending.snapshot(keys)
        if not todo:
            return
        try:
            complete = wait_for_writes(self.client, todo.handles, todo.floors, timeout, policy, what)
        except JobFailed:
            self.pending.done(todo.handles)
            raise
        except WaitTimeout:
            self._after(todo, False)
            raise
        self._after(todo, complete)

    # --- asyncio -----------------------------------------------------------------------------------
    async def aadd(self, key: str, handles: Sequence[StreamEntryRef]) -> None:
        if self.pending.add(key, handles):
            checked = self.pending.oldest()
            finished: list[StreamEntryRef] = []
            try:
                finished = await self.client.awaiter.finished(checked)
            except SluiceError as e:  # the write itself succeeded: never fail it for this
                log.warning("could not check old writes (%s); a read will wait for all of them", e)
            finally:
                self.pending.pruned(checked, finished)

    async def asettle(
        self,
        keys: Sequence[str] | None,
        timeout: float | None,
        policy: OnTimeout = "raise",
        what: str = "read",
    ) -> None:
        if not len(self.pending):
            return
        todo = self.pending.snapshot(keys)
        if not todo:
            return
        try:
            complete = await await_writes(self.client, todo.handles, todo.floors, timeout, policy, what)
        except JobFailed:
            self.pending.done(todo.handles)
            raise
        except WaitTimeout:
            self._after(todo, False)
            raise
        self._after(todo, complete)

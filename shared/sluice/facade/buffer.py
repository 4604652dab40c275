"""Buffered writes (``write="buffered"``): the call returns once the job is in a local buffer, and
a background thread enqueues buffered jobs in batches (one enqueue script call per partition and
batch), first in, first out, so per-session order is kept.

What the app gains: an append costs microseconds instead of a round trip. What it gives up: a job
lives in this process's memory until the thread sends it (typically well under a millisecond), so
a crash in that window loses it, and an enqueue error (`QueueFull`, Redis unreachable after the
producer's retries) is raised by the next read or `flush()` of that session instead of by the
append. Reads of a session, `flush()` and `Client.close()` wait for its buffered jobs first.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from sluice.errors import SluiceError, WaitTimeout
from sluice.jobs.models import Payload
from sluice.types import StreamEntryRef

if TYPE_CHECKING:
    from sluice.facade.client import Client

log = logging.getLogger(__name__)

MAX_BATCH: Final = 1_000
MAX_BUFFERED: Final = 10_000
Enqueue = Callable[[Sequence[Payload], bool], list[StreamEntryRef]]


class Ticket:
    """One buffered job: resolved to its handle once enqueued, or to the error that stopped it."""

    __slots__ = ("_done", "error", "handle")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.handle: StreamEntryRef | None = None
        self.error: BaseException | None = None

    def resolve(self, handle: StreamEntryRef | None = None, error: BaseException | None = None) -> None:
        self.handle, self.error = handle, error
        self._done.set()

    def result(self, timeout: float) -> StreamEntryRef:
        if not self._done.wait(timeout):
            raise WaitTimeout(
                f"a buffered job was not enqueued within {timeout}s (is Redis reachable?); "
                "it is still in this process's buffer"
            )
        if self.error is not None:
            raise self.error
        assert self.handle is not None
        return self.handle


class Buffer:
    """The buffer and its sending thread (started on first use; a daemon, drained at exit)."""

    def __init__(self, enqueue: Enqueue, *, max_batch: int = MAX_BATCH, max_buffered: int = MAX_BUFFERED) -> None:
        self._enqueue = enqueue
        self._max_batch = max_batch
        self._max_buffered = max_buffered
        self._items: deque[tuple[Payload, bool, Ticket]] = deque()
        self._cond = threading.Condition()
        self._sending = 0
        self._thread: threading.Thread | None = None

    def submit(self, payload: Payload, notify: bool, wait: float) -> Ticket:
        """Buffer one job; blocks (up to `wait` seconds) only while the buffer is full."""
        ticket = Ticket()
        with self._cond:
            if len(self._items) >= self._max_buffered and not self._cond.wait_for(
                lambda: len(self._items) < self._max_buffered, wait
            ):
                raise WaitTimeout(
                    f"{len(self._items)} buffered jobs are waiting to be enqueued (limit {self._max_buffered}); "
                    "Redis is slow or unreachable: retry later or use write='sync'"
                )
            self._items.append((payload, notify, ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sluice-buffered-writes", daemon=True)
                self._thread.start()
                atexit.register(self.drain, 5.0)
            self._cond.notify_all()
        return ticket

    def drain(self, timeout: float) -> bool:
        """Wait until everything buffered so far was sent (or failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._sending, timeout)

    def _take(self) -> list[tuple[Payload, bool, Ticket]]:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items))
            batch = [self._items.popleft() for _ in range(min(self._max_batch, len(self._items)))]
            self._sending = len(batch)
            self._cond.notify_all()
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            start = 0
            while start < len(batch):  # runs of one notify flag, in order
                end = start
                while end < len(batch) and batch[end][1] == batch[start][1]:
                    end += 1
                self._send(batch[start:end])
                start = end
            with self._cond:
                self._sending = 0
                self._cond.notify_all()

    def _send(self, run: Sequence[tuple[Payload, bool, Ticket]]) -> None:
        try:
            handles = self._enqueue([p for p, _, _ in run], run[0][1])
        except SluiceError as e:
            log.warning("buffered enqueue of %d jobs failed: %s", len(run), e)
            for _, _, ticket in run:
                ticket.resolve(error=e)
            return
        except Exception as e:  # never let the sender thread die: the error goes to the waiters
            log.exception("buffered enqueue failed unexpectedly")
            for _, _, ticket in run:
                ticket.resolve(error=e)
            return
        for (_, _, ticket), handle in zip(run, handles, strict=True):
            ticket.resolve(handle)


_BUFFERS: weakref.WeakKeyDictionary[Client, Buffer] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def buffer_for(client: Client) -> Buffer:
    """The one buffer of a client (its history objects share it, so their order is kept)."""
    with _LOCK:
        buffer = _BUFFERS.get(client)
        if buffer is None:
            producer = client.producer

            def enqueue(payloads: Sequence[Payload], notify: bool) -> list[StreamEntryRef]:
                return producer.enqueue_many(payloads, notify=notify)

            buffer = _BUFFERS[client] = Buffer(enqueue)
        return buffer


class Tickets:
    """Buffered jobs not yet seen enqueued, by session (what a read must wait for first)."""

    def __init__(self) -> None:
        self._by_key: dict[str, list[Ticket]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, ticket: Ticket) -> None:
        with self._lock:
            self._by_key.setdefault(key, []).append(ticket)

    def resolve(self, key: str, timeout: float) -> tuple[list[StreamEntryRef], BaseException | None]:
        """Handles of `key`'s buffered jobs, and the first enqueue error among them (reported once)."""
        with self._lock:
            tickets = self._by_key.pop(key, [])
        handles: list[StreamEntryRef] = []
        error: BaseException | None = None
        for ticket in tickets:
            try:
                handles.append(ticket.result(timeout))
            except WaitTimeout:
                with self._lock:  # still buffered: a later read waits for them again
                    self._by_key[key] = tickets + self._by_key.get(key, [])
                raise
            except BaseException as e:
                error = error or e
        return handles, error


_TICKETS: weakref.WeakKeyDictionary[Client, Tickets] = weakref.WeakKeyDictionary()


def tickets_for(client: Client) -> Tickets:
    with _LOCK:
        tickets = _TICKETS.get(client)
        if tickets is None:
            tickets = _TICKETS[client] = Tickets()
        return tickets

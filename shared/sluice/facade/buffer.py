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
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from sluice.errors import SluiceError, WaitTimeout
from sluice.jobs.models import Payload
from sluice.types import StreamEntryRef

if TYPE_CHECKING:
    from sluice.core import Core

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

    def __init__(
        self, enqueue: Enqueue, *, max_batch: int = MAX_BATCH, max_buffered: int = MAX_BUFFERED
    ) -> None:
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
                    "Redis is slow or unreachable: retry later or use write='enqueued'"
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


_BUFFERS: weakref.WeakKeyDictionary[Core, Buffer] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def buffer_for(client: Core) -> Buffer:
    """The one buffer of a client (its history objects share it, so their order is kept)."""
    with _LOCK:
        buffer = _BUFFERS.get(client)
        if buffer is None:
            producer = client.producer

            def enqueue(payloads: Sequence[Payload], notify: bool) -> list[StreamEntryRef]:
                # a job read back (notify) is tracked too: readers in every process wait for it
                return producer.enqueue_many(payloads, notify=notify, track=notify)

            # a batch never holds more jobs than one stream may (enqueue refuses such a batch)
            batch = min(MAX_BATCH, client.settings.queue.max_backlog)
            buffer = _BUFFERS[client] = Buffer(enqueue, max_batch=batch)
        return buffer


Unfinished = StreamEntryRef | Ticket


class SessionWrites:
    """A client's writes to conversations not yet seen applied, by session: enqueued ones (handles)
    and buffered ones (tickets). Shared by the client's history objects, so that a new object for
    a session (LangChain builds one per call) still reads the writes of the previous one.

    Bounded: at most `max_sessions` sessions (the least recently written are forgotten) and the
    newest `max_per_session` writes of each, so an app that appends and never reads does not grow
    without limit; a forgotten write was enqueued long enough ago to be applied.
    """

    def __init__(self, max_sessions: int = 10_000, max_per_session: int = 1_000) -> None:
        self._by: OrderedDict[str, list[Unfinished]] = OrderedDict()
        self._max_sessions = max_sessions
        self._max_per_session = max_per_session
        self._lock = threading.Lock()

    def add(self, session: str, items: Sequence[Unfinished]) -> None:
        with self._lock:
            held = self._by.pop(session, [])
            held.extend(items)
            if len(held) > self._max_per_session:  # in place: no copy of the list per write
                del held[: len(held) - self._max_per_session]
            self._by[session] = held
            while len(self._by) > self._max_sessions:
                self._by.popitem(last=False)

    def handles(self, session: str, timeout: float) -> list[StreamEntryRef]:
        """The session's unfinished writes as handles, waiting (up to `timeout`) for buffered ones to
        be enqueued. A buffered job that could not be enqueued is forgotten and its error raised."""
        with self._lock:
            items = list(self._by.get(session, ()))
        error: BaseException | None = None
        resolved: dict[int, StreamEntryRef] = {}
        failed: set[int] = set()
        for item in items:
            if isinstance(item, Ticket):
                try:
                    resolved[id(item)] = item.result(timeout)
                except WaitTimeout:
                    raise  # still buffered: everything stays for the next read
                except BaseException as e:
                    failed.add(id(item))
                    error = error or e
        with self._lock:
            held = self._by.get(session)
            if held is not None:
                kept = [resolved.get(id(i), i) for i in held if id(i) not in failed]
                self._by[session] = kept
        if error is not None:
            raise error
        out: list[StreamEntryRef] = []
        for item in items:
            if not isinstance(item, Ticket):
                out.append(item)
            elif id(item) in resolved:
                out.append(resolved[id(item)])
        return out

    def done(self, session: str, handles: Sequence[StreamEntryRef]) -> None:
        """Forget writes seen applied (or failed: a failure is reported once)."""
        finished = set(handles)
        with self._lock:
            held = self._by.get(session)
            if held is None:
                return
            left = [i for i in held if isinstance(i, Ticket) or i not in finished]
            if left:
                self._by[session] = left
            else:
                del self._by[session]


_WRITES: weakref.WeakKeyDictionary[Core, SessionWrites] = weakref.WeakKeyDictionary()


def writes_for(client: Core) -> SessionWrites:
    """The unfinished history writes of one client (shared by its history objects)."""
    with _LOCK:
        writes = _WRITES.get(client)
        if writes is None:
            writes = _WRITES[client] = SessionWrites()
        return writes

"""Group commit: concurrent enqueue calls share round trips (sync threads and asyncio tasks).

A caller hands the committer its segments (`sluice.queue.plan.Segment`, at most one per stream)
and waits. If no send is in flight, the caller sends at once, alone: an enqueue on a quiet
process pays no hand-off. Otherwise it queues, and the caller whose send is in flight, once it
has its replies, hands the lead to the oldest queued caller, which sends everything queued by
then (up to CHUNK jobs per stream) in one go: one script call per stream, one round trip. So
the batch grows with the load and nobody waits for a timer.

Each caller gets its own replies (`Reply`: the entry ids of its segment, or the exception that
refused it: `QueueFull`, a server error reply) and a failure of the whole send (connection
lost, a durability wait not met) reaches every caller of that batch. Callers queue in arrival
order and a stream's segments keep that order inside the script call, so jobs for one key are
added in the order their enqueue calls began.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from sluice.errors import RedisUnavailable
from sluice.queue.plan import CHUNK, Segment

Reply: TypeAlias = "list[bytes | str] | BaseException"
"""What one segment got: its entry ids in order, or the exception that refused it."""

Send = Callable[[list[Segment]], list[Reply]]
AsyncSend = Callable[[list[Segment]], Awaitable[list[Reply]]]


class _Request:
    __slots__ = ("error", "lead", "replies", "segments", "signal")

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = segments
        self.replies: list[Reply] | None = None
        self.error: BaseException | None = None
        self.lead = False  # handed the lead while queued
        self.signal: Any = None  # what a queued caller waits on (a lock, or a future)


def _take(queue: deque[_Request]) -> list[_Request]:
    """The oldest queued requests whose jobs fit in one call per stream (at least one)."""
    batch: list[_Request] = []
    load: dict[str, int] = {}
    while queue:
        segments = queue[0].segments
        if batch and any(load.get(s.stream, 0) + len(s.jobs) > CHUNK for s in segments):
            break
        batch.append(queue.popleft())
        for s in segments:
            load[s.stream] = load.get(s.stream, 0) + len(s.jobs)
    return batch


def _settle(batch: list[_Request], replies: list[Reply] | None, error: BaseException | None) -> None:
    if error is not None:
        for request in batch:
            request.error = error
        return
    assert replies is not None
    start = 0
    for request in batch:
        end = start + len(request.segments)
        request.replies = replies[start:end]
        start = end


def _result(request: _Request) -> list[Reply]:
    if request.error is not None:
        raise request.error
    assert request.replies is not None
    return request.replies


class Committer:
    """Group commit over a sync `send` (called by one thread at a time)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._busy = False  # a send is in flight; invariant: queued requests => busy

    def submit(self, segments: Sequence[Segment]) -> list[Reply]:
        """Send `segments` (with whatever else is queued); one reply per segment, in order."""
        request = _Request(segments)
        with self._lock:
            self._queue.append(request)
            waits = self._busy
            self._busy = True
            if waits:
                request.signal = threading.Lock()
                request.signal.acquire()
        if waits:
            request.signal.acquire()  # released once settled, or when handed the lead
            if not request.lead:
                return _result(request)
        self._lead()
        return _result(request)

    def _lead(self) -> None:
        # the leader's own request is the queue's head: batch[0]
        with self._lock:
            batch = _take(self._queue)
        replies: list[Reply] | None = None
        error: BaseException | None = None
        try:
            replies = self._send([s for r in batch for s in r.segments])
        except BaseException as e:  # every caller of the batch gets it
            error = e
        _settle(batch, replies, error)
        with self._lock:
            for request in batch[1:]:
                request.signal.release()
            if self._queue:
                head = self._queue[0]
                head.lead = True
                head.signal.release()
            else:
                self._busy = False


class AsyncCommitter:
    """Group commit over an asyncio `send`, for the tasks of one event loop."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send
        self._queue: deque[_Request] = deque()
        self._busy = False

    async def submit(self, segments: Sequence[Segment]) -> list[Reply]:
        request = _Request(segments)
        self._queue.append(request)
        if self._busy:
            request.signal = asyncio.get_running_loop().create_future()
            try:
                await request.signal
            except asyncio.CancelledError:
                if request.lead:  # handed the lead, not sent: pass it on
                    self._queue.remove(request)
                    self._hand_off()
                elif request in self._queue:
                    self._queue.remove(request)
                raise
            if not request.lead:
                return _result(request)
        self._busy = True
        await self._lead()
        return _result(request)

    async def _lead(self) -> None:
        batch = _take(self._queue)
        replies: list[Reply] | None = None
        error: BaseException | None = None
        try:
            replies = await self._send([s for r in batch for s in r.segments])
        except asyncio.CancelledError:
            error = RedisUnavailable(
                "enqueue: the task sending this batch was cancelled mid-send; the jobs may or may not "
                "be enqueued (a resend is deduplicated)"
            )
            raise
        except BaseException as e:
            error = e
        finally:
            _settle(batch, replies, error)
            for request in batch[1:]:
                if not request.signal.done():
                    request.signal.set_result(None)
            self._hand_off()

    def _hand_off(self) -> None:
        while self._queue:
            head = self._queue[0]
            if head.signal is None or not head.signal.done():
                head.lead = True
                if head.signal is not None:
                    head.signal.set_result(None)
                return
            self._queue.popleft()  # its caller was cancelled while queued
        self._busy = False

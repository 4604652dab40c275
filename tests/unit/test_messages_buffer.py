"""Buffered history writes and a client's unfinished writes per session: no server."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from sluice.errors import QueueFull, WaitTimeout
from sluice.facade.buffer import Buffer, SessionWrites, Ticket
from sluice.jobs.models import HistoryAppendPayload, Payload
from sluice.types import EntryId, StreamEntryRef


def job(text: str) -> HistoryAppendPayload:
    return HistoryAppendPayload(session_id="s", messages=[{"type": "human", "data": {"content": text}}])


def ref(n: int) -> StreamEntryRef:
    return StreamEntryRef("stream", EntryId(f"{n}-0"))


class Recorder:
    """An enqueue that records its calls, optionally failing, optionally held until released."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[list[str], bool]] = []
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, payloads: Sequence[Payload], notify: bool) -> list[StreamEntryRef]:
        self.gate.wait(5)
        texts = [p.messages[0]["data"]["content"] for p in payloads]  # type: ignore[union-attr]
        if self.fail_on in texts:
            raise QueueFull("stream", 9, 1)
        start = sum(len(c) for c, _ in self.calls)
        self.calls.append((texts, notify))
        return [ref(start + i) for i in range(len(payloads))]


def test_buffered_jobs_are_sent_in_order_and_each_ticket_gets_its_handle() -> None:
    # Given a sender held back while jobs pile up, with two notify flags interleaved
    enqueue = Recorder()
    enqueue.gate.clear()
    buffer = Buffer(enqueue, max_batch=4)
    first = buffer.submit(job("warm"), True, 1)
    tickets = [buffer.submit(job(f"m{i}"), i in (2, 3), 1) for i in range(6)]
    # When the sender is let go
    enqueue.gate.set()
    assert buffer.drain(5)
    # Then every job went out once, in order, in runs of one flag, within batches of 4
    sent = [t for texts, _ in enqueue.calls for t in texts]
    assert sent == ["warm", *(f"m{i}" for i in range(6))]
    assert all(len(texts) <= 4 for texts, _ in enqueue.calls)
    assert [notify for texts, notify in enqueue.calls for _ in texts] == [
        True,
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert first.result(1) == ref(0)
    assert [t.result(1) for t in tickets] == [ref(i) for i in range(1, 7)]


def test_a_job_that_cannot_be_enqueued_carries_the_error_to_its_ticket() -> None:
    buffer = Buffer(Recorder(fail_on="bad"), max_batch=1)
    ok, bad = buffer.submit(job("good"), False, 1), buffer.submit(job("bad"), False, 1)
    assert buffer.drain(5)
    assert ok.result(1) == ref(0)
    with pytest.raises(QueueFull):
        bad.result(1)


def test_a_full_buffer_makes_the_caller_wait_then_says_why() -> None:
    enqueue = Recorder()
    enqueue.gate.clear()
    buffer = Buffer(enqueue, max_batch=1, max_buffered=1)
    buffer.submit(job("a"), False, 1)  # taken by the sender, which is held
    buffer.submit(job("b"), False, 1)  # fills the buffer
    with pytest.raises(WaitTimeout, match="buffered jobs"):
        buffer.submit(job("c"), False, 0.05)
    enqueue.gate.set()
    assert buffer.drain(5)


def test_unfinished_writes_resolve_tickets_and_forget_what_is_done() -> None:
    writes = SessionWrites()
    ticket, failed, late = Ticket(), Ticket(), Ticket()
    writes.add("s", [ref(1), ticket, failed])
    writes.add("t", [ref(9)])
    ticket.resolve(ref(2))
    failed.resolve(error=QueueFull("stream", 2, 1))
    # a failed buffered job is reported once, then forgotten
    with pytest.raises(QueueFull):
        writes.handles("s", 1)
    assert writes.handles("s", 1) == [ref(1), ref(2)]
    # a job still buffered keeps everything for the next read
    writes.add("s", [late])
    with pytest.raises(WaitTimeout):
        writes.handles("s", 0.01)
    late.resolve(ref(3))
    assert writes.handles("s", 1) == [ref(1), ref(2), ref(3)]
    writes.done("s", [ref(1), ref(2), ref(3)])
    assert writes.handles("s", 1) == []
    assert writes.handles("t", 1) == [ref(9)]


def test_unfinished_writes_are_bounded() -> None:
    writes = SessionWrites(max_sessions=2, max_per_session=3)
    writes.add("a", [ref(i) for i in range(5)])
    assert writes.handles("a", 1) == [ref(2), ref(3), ref(4)]
    writes.add("b", [ref(7)])
    writes.add("c", [ref(8)])  # "a" is the least recently written: forgotten
    assert writes.handles("a", 1) == []
    assert writes.handles("c", 1) == [ref(8)]

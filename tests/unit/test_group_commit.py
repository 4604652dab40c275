"""Group commit (sluice.queue.commit) without Redis: who sends, what shares a send, who gets which
reply or error, and that nothing stalls when an asyncio caller is cancelled."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from sluice.queue.commit import AsyncCommitter, Committer, Reply
from sluice.queue.plan import CHUNK, Segment


def seg(stream: str, *jobs: str) -> Segment:
    return Segment(stream, [f"id-{j}" for j in jobs], [j.encode() for j in jobs], list(range(len(jobs))))


class Gate:
    """A send that records each batch and holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[list[Segment]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail: BaseException | None = None

    def send(self, segments: list[Segment]) -> list[Reply]:
        self.batches.append(segments)
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail is not None and len(self.batches) == 2:
            raise self.fail
        return [[f"{len(self.batches)}-{i}".encode() for i in range(len(s.jobs))] for s in segments]


def submit_in_thread(
    committer: Committer, segments: list[Segment], out: dict[str, Any], name: str
) -> threading.Thread:
    def run() -> None:
        try:
            out[name] = committer.submit(segments)
        except BaseException as e:
            out[name] = e

    t = threading.Thread(target=run)
    t.start()
    return t


def wait_queued(committer: Committer, n: int) -> None:
    for _ in range(1000):
        if len(committer._queue) >= n:
            return
        threading.Event().wait(0.005)
    raise AssertionError(f"{n} callers never queued")


def test_a_lone_caller_sends_at_once() -> None:
    gate = Gate()
    gate.release.set()
    assert Committer(gate.send).submit([seg("s", "a")]) == [[b"1-0"]]
    assert len(gate.batches) == 1


def test_callers_queued_behind_a_send_share_the_next_one_and_each_gets_its_own_reply() -> None:
    # Given a send in flight
    gate, out = Gate(), {}
    committer = Committer(gate.send)
    first = submit_in_thread(committer, [seg("s", "a")], out, "first")
    assert gate.entered.wait(10)
    # When three more callers arrive meanwhile
    threads = [submit_in_thread(committer, [seg("s", n, n + "2")], out, n) for n in ("b", "c", "d")]
    wait_queued(committer, 3)
    gate.release.set()
    for t in [first, *threads]:
        t.join(10)
    # Then they went out together, in arrival order, in one send, each with its own ids
    assert len(gate.batches) == 2
    assert [s.jobs[0] for s in gate.batches[1]] == [b"b", b"c", b"d"]
    assert out["first"] == [[b"1-0"]]
    assert all(out[n] == [[b"2-0", b"2-1"]] for n in ("b", "c", "d"))


def test_a_failed_send_reaches_every_caller_of_that_batch_only() -> None:
    gate, out = Gate(), {}
    gate.fail = ConnectionError("lost")
    committer = Committer(gate.send)
    first = submit_in_thread(committer, [seg("s", "a")], out, "first")
    assert gate.entered.wait(10)
    threads = [submit_in_thread(committer, [seg("s", n)], out, n) for n in ("b", "c")]
    wait_queued(committer, 2)
    gate.release.set()
    for t in [first, *threads]:
        t.join(10)
    assert out["first"] == [[b"1-0"]]
    assert isinstance(out["b"], ConnectionError) and out["b"] is out["c"]
    # and the committer goes on: the next caller sends alone
    assert committer.submit([seg("s", "e")]) == [[b"3-0"]]


def test_a_batch_holds_at_most_a_chunk_per_stream() -> None:
    gate, out = Gate(), {}
    committer = Committer(gate.send)
    first = submit_in_thread(committer, [seg("s", "a")], out, "first")
    assert gate.entered.wait(10)
    big = [str(i) for i in range(CHUNK - 1)]
    threads = [
        submit_in_thread(committer, [seg("s", *big)], out, "big"),
        submit_in_thread(committer, [seg("s", "x", "y")], out, "late"),  # would pass CHUNK: next send
    ]
    wait_queued(committer, 2)
    gate.release.set()
    for t in [first, *threads]:
        t.join(10)
    assert [len(b) for b in gate.batches] == [1, 1, 1]
    assert out["late"] == [[b"3-0", b"3-1"]]


def test_asyncio_callers_share_sends_and_a_cancelled_one_stalls_nobody() -> None:
    async def main() -> None:
        batches: list[list[Segment]] = []
        release = asyncio.Event()

        async def send(segments: list[Segment]) -> list[Reply]:
            batches.append(segments)
            if len(batches) == 1:
                await release.wait()
            return [[f"{len(batches)}-0".encode()] for _ in segments]

        committer = AsyncCommitter(send)
        first = asyncio.create_task(committer.submit([seg("s", "a")]))
        await asyncio.sleep(0)
        others = [asyncio.create_task(committer.submit([seg("s", n)])) for n in "bcd"]
        await asyncio.sleep(0)
        others[0].cancel()  # queued, never sent
        release.set()
        assert await first == [[b"1-0"]]
        assert [await t for t in others[1:]] == [[[b"2-0"]], [[b"2-0"]]]
        with pytest.raises(asyncio.CancelledError):
            await others[0]
        assert [s.jobs[0] for s in batches[1]] == [b"c", b"d"]
        assert await committer.submit([seg("s", "e")]) == [[b"3-0"]]

    asyncio.run(main())


def test_asyncio_a_leader_cancelled_mid_send_leaves_its_batch_a_resendable_error() -> None:
    from sluice.errors import RedisUnavailable

    async def main() -> None:
        release, second = asyncio.Event(), asyncio.Event()
        batches: list[list[Segment]] = []

        async def send(segments: list[Segment]) -> list[Reply]:
            batches.append(segments)
            if len(batches) == 1:
                await release.wait()
            elif len(batches) == 2:
                second.set()
                await asyncio.sleep(30)  # the send its leader is cancelled in
            return [[b"ok"] for _ in segments]

        committer = AsyncCommitter(send)
        first = asyncio.create_task(committer.submit([seg("s", "a")]))
        await asyncio.sleep(0)
        lead, follower = (asyncio.create_task(committer.submit([seg("s", n)])) for n in "bc")
        await asyncio.sleep(0)
        release.set()
        await first
        await second.wait()  # `lead` now sends [b, c]
        lead.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lead
        with pytest.raises(RedisUnavailable, match="cancelled mid-send"):
            await follower
        assert await committer.submit([seg("s", "d")]) == [[b"ok"]]  # nothing stalls

    asyncio.run(main())

"""Write pipelines sized to a time budget."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sluice.vectors.budget import WriteBudget


def test_pipelines_shrink_towards_the_budget_and_replies_keep_their_order() -> None:
    # Given writes that each take 0.5 ms of "server time" and a 2 ms budget
    sizes: list[int] = []

    def send(part: Sequence[int]) -> list[int]:
        sizes.append(len(part))
        time.sleep(0.0005 * len(part))
        return [x * 10 for x in part]

    budget = WriteBudget(2.0, first=64)
    # When 300 writes go through it
    replies = budget.run(send, list(range(300)))
    # Then every reply comes back in order and the pipelines settle near 4 calls (2 ms / 0.5 ms)
    assert replies == [x * 10 for x in range(300)]
    assert sizes[0] == 64
    assert max(sizes[-5:]) <= 8


def test_the_pipeline_never_drops_below_one_call() -> None:
    budget = WriteBudget(0.001, first=4)
    budget.observe(4, 100.0)
    assert budget.chunk == 2
    budget.observe(2, 100.0)
    budget.observe(1, 100.0)
    assert budget.chunk == 1


class ClockPacer:
    """A pacer whose marks carry a fake server clock: each write costs 0.25 ms of it."""

    overhead_ms = 0.0

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.admitted: list[float] = []
        self.paid: list[float] = []
        self.settled = 0

    def marks(self) -> tuple[str, str]:
        return ("start", "end")

    def server_ms(self, before: float, after: float) -> float:
        return after - before

    def admit(self, expected_ms: float) -> None:
        self.admitted.append(expected_ms)

    def pay(self, server_ms: float) -> None:
        self.paid.append(server_ms)

    def settle(self) -> None:
        self.settled += 1


def test_a_pacer_admits_each_pipeline_and_is_paid_the_server_clock_between_its_marks() -> None:
    # Given a pacer whose marks read a server clock on which every write costs 0.25 ms
    def send(part: Sequence[object]) -> list[object]:
        assert part[0] == "start" and part[-1] == "end"  # the marks bracket every pipeline
        writes = list(part[1:-1])
        return [0.0, *(f"ok {w}" for w in writes), 0.25 * len(writes)]

    pacer = ClockPacer()
    budget = WriteBudget(1.0, pacer=pacer, first=16)
    # When 100 writes go through the budget
    replies = budget.run(send, list(range(100)))
    # Then the writes' own replies come back in order, every pipeline was admitted and paid its
    # server time (not its round trip), pipelines settle near 4 writes (1 ms / 0.25 ms), one settle
    assert replies == [f"ok {i}" for i in range(100)]
    assert len(pacer.admitted) == len(pacer.paid) > 1
    assert sum(pacer.paid) == 25.0
    assert pacer.paid[-1] <= 2.0 and pacer.settled == 1


def test_a_backoff_shrinks_the_pipelines() -> None:
    sizes: list[int] = []

    def send(part: Sequence[object]) -> list[object]:
        sizes.append(len(part) - 2)
        return [0.0, *part[1:-1], 0.25 * (len(part) - 2)]

    budget = WriteBudget(2.0, pacer=ClockPacer(scale=0.25), first=8)  # a quarter: 0.5 ms, 2 writes
    budget.run(send, list(range(60)))
    assert max(sizes[-5:]) <= 2

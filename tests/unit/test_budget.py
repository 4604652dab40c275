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

"""`PendingWrites`: bounded, oldest first, overflow folded into per-stream floors (no server)."""

from __future__ import annotations

import time

import pytest

from sluice.facade.pending import PendingWrites
from sluice.types import EntryId, StreamEntryRef


def ref(stream: str, ms: int, seq: int = 0) -> StreamEntryRef:
    return StreamEntryRef(stream, EntryId(f"{ms}-{seq}"))


def test_the_hard_bound_folds_the_oldest_into_its_streams_floor() -> None:
    # Given a map of at most 10 handles over two streams
    pending = PendingWrites(limit=10, chunk=2)
    # When 25 writes to distinct keys arrive (no prune ever runs)
    for i in range(25):
        pending.add(f"k{i}", [ref(f"s{i % 2}", 1000 + i)])
    # Then 10 handles are held, and each stream's floor is the newest id it gave up
    snap = pending.snapshot(None)
    assert len(snap.handles) == 10
    assert snap.handles[0] == ref("s1", 1015)
    assert snap.floors == {"s0": "1014-0", "s1": "1013-0"}
    assert len(pending) == 12  # handles plus floors


def test_floors_compare_ids_numerically() -> None:
    pending = PendingWrites(limit=2, chunk=1)
    pending.add("a", [ref("s", 999, 5)])
    pending.add("b", [ref("s", 1000, 0)])
    pending.add("c", [ref("s", 2, 0)])  # older id added later: the floor does not go back
    pending.add("d", [ref("s", 3, 0)])
    assert pending.floors == {"s": "1000-0"}


def test_a_prune_forgets_the_finished_and_folds_the_rest() -> None:
    # Given a map whose high-water mark (limit - chunk) is reached
    pending = PendingWrites(limit=10, chunk=4)
    due = [pending.add(f"k{i}", [ref("s", i)]) for i in range(1, 7)]
    assert due == [False] * 5 + [True]
    assert not pending.add("k7", [ref("s", 7)])  # one prune at a time
    # When the oldest chunk is checked and two of them turn out applied
    checked = pending.oldest()
    assert checked == [ref("s", i) for i in range(1, 5)]
    pending.pruned(checked, [ref("s", 1), ref("s", 3)])
    # Then the whole chunk leaves the map; the unapplied ones set the floor
    assert pending.snapshot(None).handles == [ref("s", 5), ref("s", 6), ref("s", 7)]
    assert pending.floors == {"s": "4-0"}
    # and the next prune is due only after more writes
    assert not any(pending.add(f"m{i}", [ref("s", 10 + i)]) for i in range(2))
    assert pending.add("m2", [ref("s", 12)])


def test_done_forgets_handles_and_only_the_floors_it_was_shown() -> None:
    pending = PendingWrites(limit=2, chunk=1)
    for i in range(4):
        pending.add(f"k{i}", [ref("s", i + 1)])
    seen = pending.floors
    pending.add("k4", [ref("s", 9)])  # folds 3-0: the floor rises after the read took its snapshot
    pending.done([ref("s", 4)], seen)
    assert pending.floors == {"s": "3-0"}  # a raised floor stays
    assert pending.snapshot(["k4"]).handles == [ref("s", 9)]
    pending.done([ref("s", 9)], pending.floors)
    assert len(pending) == 0


def test_a_key_sees_only_its_own_handles() -> None:
    pending = PendingWrites(limit=100, chunk=10)
    pending.add("a", [ref("s", 1), ref("s", 2)])
    pending.add("b", [ref("t", 3)])
    assert pending.snapshot(["a"]).handles == [ref("s", 1), ref("s", 2)]
    assert pending.snapshot(["c"]).handles == [] and not pending.snapshot(["c"])


def test_cost_does_not_grow_with_what_is_held() -> None:
    # Given 10,000 held handles
    pending = PendingWrites(limit=10_000, chunk=1_000)
    for i in range(9_000):
        pending.add(f"k{i}", [ref("s", i + 1)])
    # When one key is read and forgotten 1,000 times
    start = time.perf_counter()
    for i in range(1_000):
        snap = pending.snapshot([f"k{i}"])
        pending.done(snap.handles, snap.floors)
    elapsed = time.perf_counter() - start
    # Then that takes far less than 1,000 walks over 9,000 handles would (~1 s here)
    assert elapsed < 0.1, elapsed
    assert len(pending) == 8_000


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        PendingWrites(limit=10, chunk=10)

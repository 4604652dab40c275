"""The rules `ClusterBatch` applies to a round's replies, without a server (replies are built by hand)."""

from __future__ import annotations

import pytest
import redis.exceptions as rex

from sluice.scripts import sha
from sluice.transport.call import Call
from sluice.transport.cluster_batch import MAX_PAUSE, ClusterBatch

SLOTS = {"a": 1, "b": 2}
OWNERS = {1: "n1:1", 2: "n2:2"}


def batch(calls: list[Call], loaded: dict[str, set[str]] | None = None) -> ClusterBatch:
    return ClusterBatch(calls, lambda key: SLOTS[key[0]], {} if loaded is None else loaded)


def owner(slot: int) -> str:
    return OWNERS[slot]


def test_moved_calls_are_resent_to_the_new_owner_with_their_followers() -> None:
    # Given a write and the WAIT that follows it, and a write to another slot
    b = batch(
        [
            Call(("SET", "a1", 1), "a1"),
            Call(("WAIT", 1, 10), "a1", follows=True),
            Call(("SET", "b1", 1), "b1"),
        ]
    )
    first = {s.node: s for s in b.next_round(owner)}
    assert first["n1:1"].commands == [("SET", "a1", 1), ("WAIT", 1, 10)]
    # When the first node answers MOVED (the WAIT ran but reports on nothing) and the other OK
    b.take(first["n1:1"], [rex.MovedError("1 127.0.0.1:7003"), 0])
    b.take(first["n2:2"], [b"OK"])
    assert [m.port for m in b.learned] == [7003] and b.pause() == 0.0
    # Then the next round sends the write and its WAIT together to the new owner
    [again] = b.next_round(owner)
    assert (again.node, again.commands) == ("127.0.0.1:7003", [("SET", "a1", 1), ("WAIT", 1, 10)])
    b.take(again, [b"OK", 1])
    assert b.done and b.result() == [b"OK", 1, b"OK"]


def test_ask_is_resent_with_asking_and_later_calls_of_the_slot_wait_their_turn() -> None:
    # Given three calls to one slot; the first gets ASK (its key moved), the others TRYAGAIN
    b = batch([Call(("INCR", "a1"), "a1"), Call(("INCR", "a2"), "a2"), Call(("INCR", "a3"), "a3")])
    [send] = b.next_round(owner)
    b.take(send, [rex.AskError("1 127.0.0.1:7003"), rex.TryAgainError("TRYAGAIN"), 1])
    # Then the third is done, and the first goes to the importing node with ASKING before it; the
    # second (still on the source) waits until the first has been applied
    assert b.result()[2] == 1 and b.pause() > 0
    [ask] = b.next_round(owner)
    assert (ask.node, ask.commands) == ("127.0.0.1:7003", [("ASKING",), ("INCR", "a1")])
    b.take(ask, [b"OK", 5])
    [rest] = b.next_round(owner)
    assert rest.node == "n1:1" and rest.commands == [("INCR", "a2")]
    b.take(rest, [7])
    assert b.result() == [5, 7, 1]


def test_scripts_are_loaded_once_per_node_and_reloaded_after_noscript() -> None:
    # Given a runner's record of loaded scripts, and two script calls for one node
    loaded: dict[str, set[str]] = {}
    calls = [
        Call(("v1",), "a1", script="enqueue", keys=("a1",)),
        Call(("v2",), "a2", script="enqueue", keys=("a2",)),
    ]
    b = batch(calls, loaded)
    [send] = b.next_round(owner)
    # Then the node's pipeline loads the script once, ahead of both calls
    assert send.loads == ["enqueue"] and send.commands[0][:2] == ("SCRIPT", "LOAD")
    assert send.commands[1] == ("EVALSHA", sha("enqueue"), 1, "a1", "v1")
    b.take(send, [sha("enqueue").encode(), [b"1-0"], [b"2-0"]])
    assert loaded == {"n1:1": {"enqueue"}} and b.done
    # and a later batch does not load it again, unless the node answers NOSCRIPT
    b = batch(calls[:1], loaded)
    [send] = b.next_round(owner)
    assert send.loads == []
    b.take(send, [rex.NoScriptError("NOSCRIPT")])
    [send] = b.next_round(owner)
    assert send.loads == ["enqueue"]


def test_a_slot_that_keeps_answering_tryagain_gives_up_with_that_error() -> None:
    # Given a call that always gets TRYAGAIN
    b = batch([Call(("INCR", "a1"), "a1")])
    waited = 0.0
    # When rounds go on, Then the pauses stay within the budget and the batch raises TRYAGAIN
    with pytest.raises(rex.TryAgainError):
        while True:
            waited += b.pause()
            [send] = b.next_round(owner)
            b.take(send, [rex.TryAgainError("TRYAGAIN")])
    assert 1.0 < waited <= MAX_PAUSE


def test_clusterdown_asks_the_slot_map_again() -> None:
    b = batch([Call(("INCR", "b1"), "b1")])
    [send] = b.next_round(owner)
    b.take(send, [rex.ClusterDownError("The cluster is down")])
    assert b.refresh and b.pause() > 0
    [again] = b.next_round(lambda slot: "n9:9")
    assert again.node == "n9:9" and not b.refresh


def test_a_connection_failure_in_the_replies_is_raised() -> None:
    b = batch([Call(("INCR", "a1"), "a1")])
    [send] = b.next_round(owner)
    with pytest.raises(rex.ConnectionError):
        b.take(send, [rex.ConnectionError("reset")])

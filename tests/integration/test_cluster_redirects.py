"""Batches on a Cluster whose slots move under them: MOVED, ASK, TRYAGAIN are followed, in order.

Each test moves slots of its own sessions on a cluster of this module (the shared `cluster`
fixture must keep its layout), behind the back of a client that read the slot map before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import servers
from servers import need
from sluice.errors import DurabilityNotReached, RedisUnavailable
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import HistoryStore, HistoryWrite
from sluice.transport.runner import AsyncRunner, Call, Runner
from support.resharding import Resharder
from support.settings import fast_settings
from topologies import ClusterTopology

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def topology() -> Iterator[ClusterTopology]:
    """3 primaries, no replicas, slots moved freely by this module's tests."""
    cluster = ClusterTopology(need(servers.any_binary))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def resharder(topology: ClusterTopology) -> Iterator[Resharder]:
    r = Resharder(topology)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def client(topology: ClusterTopology, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(topology.url, namespace))
    try:
        yield c
    finally:
        c.close()


def write(session: str, n: int) -> HistoryWrite:
    return HistoryWrite(session, f"{1000 + n}-0", "append", [{"type": "human", "data": {"content": str(n)}}])


def contents(store: HistoryStore, session: str) -> list[int]:
    return [int(str(m.content)) for m in store.read(session)]


def test_a_write_after_its_slot_moved_follows_moved_and_teaches_the_slot_map(
    client: Client, resharder: Resharder, namespace: str
) -> None:
    # Given a session written once, then its slot moved to another primary behind the client's back
    store = HistoryStore(client.redis, client.keys, cluster=True)
    session = f"{namespace}-moved"
    store.write([write(session, 1)])
    slot = client.redis.keyslot(client.keys.history(session))
    _source, target = resharder.move(slot)
    # When the next batch writes to it (two writes of the session in one batch)
    results = store.write([write(session, 2), write(session, 3)])
    # Then both are applied on the new owner, in order, and redis-py's map names the new owner
    assert [r.status for r in results] == ["applied", "applied"]
    assert contents(store, session) == [1, 2, 3]
    assert client.redis.nodes_manager.get_node_from_slot(slot).port == target


def test_a_call_whose_key_already_migrated_follows_ask_with_asking(
    client: Client, resharder: Resharder, namespace: str
) -> None:
    # Given a slot mid-migration: its key already on the importing node, the slot still the source's
    key = f"{namespace}:ask:{{{namespace}-ask}}"
    client.redis.rpush(key, "a")
    slot = client.redis.keyslot(key)
    source = resharder.owner(slot)
    target = resharder.other(source)
    resharder.begin(slot, source, target)
    try:
        resharder.migrate(source, target, [key])
        runner = Runner(client.redis, cluster=True)
        # When a batch appends to it twice (and reads it) through the runner
        calls = [Call(("RPUSH", key, v), route=key) for v in ("b", "c")]
        replies = runner.run([*calls, Call(("LRANGE", key, 0, -1), route=key)])
        # Then the calls ran on the importing node, in order (the source still owns the slot)
        assert replies == [2, 3, [b"a", b"b", b"c"]]
        assert resharder.keys(slot, target) == [key.encode()] and resharder.keys(slot, source) == []
        assert resharder.owner(slot) == source
    finally:
        resharder.finish(slot, source, target)
    assert client.redis.lrange(key, 0, -1) == [b"a", b"b", b"c"]


def test_a_script_split_by_a_migration_waits_out_tryagain_and_keeps_its_order(
    client: Client, resharder: Resharder, namespace: str
) -> None:
    # Given a session whose keys are split between source and target (the zset moved, the meta
    # hash not yet): history_write.lua gets TRYAGAIN on both sides until the slot is moved
    store = HistoryStore(client.redis, client.keys, cluster=True)
    session = f"{namespace}-split"
    store.write([write(session, 1)])
    client.redis.hset(client.keys.history_meta(session), "note", "x")
    slot = client.redis.keyslot(client.keys.history(session))
    source = resharder.owner(slot)
    target = resharder.other(source)
    resharder.begin(slot, source, target)
    resharder.migrate(source, target, [client.keys.history(session)])
    # When a batch of writes runs while the migration finishes 0.3 s later
    finisher = threading.Timer(0.3, lambda: (resharder.move_keys(slot, source, target),
                                               resharder.finish(slot, source, target)))  # fmt: skip
    finisher.start()
    started = time.monotonic()
    results = store.write([write(session, n) for n in (2, 3, 4)])
    finisher.join()
    # Then every write is applied once, in order, after the migration
    assert [r.status for r in results] == ["applied"] * 3
    assert contents(store, session) == [1, 2, 3, 4]
    assert 0.25 < time.monotonic() - started < 5


def test_a_migration_that_never_ends_is_redis_unavailable_within_bounds(
    client: Client, resharder: Resharder, namespace: str
) -> None:
    # Given a session split between two nodes by a migration that stalls
    store = HistoryStore(client.redis, client.keys, cluster=True)
    session = f"{namespace}-stalled"
    store.write([write(session, 1)])
    client.redis.hset(client.keys.history_meta(session), "note", "x")
    slot = client.redis.keyslot(client.keys.history(session))
    source = resharder.owner(slot)
    target = resharder.other(source)
    resharder.begin(slot, source, target)
    resharder.migrate(source, target, [client.keys.history(session)])
    try:
        # When a write runs, Then it gives up with a retryable error after a bounded wait
        started = time.monotonic()
        with pytest.raises(RedisUnavailable, match=r"TRYAGAIN|Cluster"):
            store.write([write(session, 2)])
        assert time.monotonic() - started < 5
    finally:
        resharder.move_keys(slot, source, target)
        resharder.finish(slot, source, target)
    assert [r.status for r in store.write([write(session, 2)])] == ["applied"]
    assert contents(store, session) == [1, 2]


def test_a_script_on_a_node_that_never_ran_it_is_loaded_in_the_same_pipeline(
    client: Client, resharder: Resharder, namespace: str
) -> None:
    # Given every script flushed from every node, and a runner that ran history_write before
    store = HistoryStore(client.redis, client.keys, cluster=True)
    session = f"{namespace}-noscript"
    store.write([write(session, 1)])
    for node in resharder.nodes.values():
        node.script_flush()
    # When it writes again (NOSCRIPT), and to a session on a node it has not written to yet
    others = [f"{namespace}-fresh{i}" for i in range(6)]
    results = store.write([write(session, 2)] + [write(s, 1) for s in others])
    # Then every write is applied
    assert [r.status for r in results] == ["applied"] * 7
    assert contents(store, session) == [1, 2]
    assert all(contents(store, s) == [1] for s in others)


async def test_the_async_runner_follows_moved_and_ask_in_order(
    client: Client, resharder: Resharder, namespace: str
) -> None:
    # Given an asyncio runner with its slot map, and two keys: one whose slot has moved since,
    # one whose slot is mid-migration with the key already on the importing node
    runner = AsyncRunner(client.async_redis, cluster=True)
    moved, asked = f"{namespace}:m:{{{namespace}-m}}", f"{namespace}:a:{{{namespace}-a}}"
    await runner.run([Call(("RPUSH", moved, "0"), route=moved), Call(("RPUSH", asked, "0"), route=asked)])
    resharder.move(client.redis.keyslot(moved))
    slot = client.redis.keyslot(asked)
    source = resharder.owner(slot)
    target = resharder.other(source)
    resharder.begin(slot, source, target)
    try:
        resharder.migrate(source, target, [asked])
        # When one batch appends to both, several times, and reads them back
        calls = [Call(("RPUSH", k, str(n)), route=k) for n in range(1, 4) for k in (moved, asked)]
        calls += [Call(("LRANGE", k, 0, -1), route=k) for k in (moved, asked)]
        replies = await runner.run(calls)
        # Then each key got its appends in order
        assert replies[-2:] == [[b"0", b"1", b"2", b"3"]] * 2
        assert replies[:-2] == [2, 2, 3, 3, 4, 4]
    finally:
        resharder.finish(slot, source, target)
        await client.aclose()


def test_scripts_follow_a_slot_to_a_node_the_client_never_saw(redis_factory: Any, namespace: str) -> None:
    # Given a 3-primary cluster and a 4th, empty primary the client's slot map does not list
    topology = redis_factory.cluster(primaries=4, empty=1)
    resharder = Resharder(topology)
    client = Client(fast_settings(topology.url, namespace))
    store = HistoryStore(client.redis, client.keys, cluster=True)
    session = f"{namespace}-scaleout"
    store.write([write(session, 1)])
    new_port = topology.nodes[-1].port
    assert client.redis.get_node(node_name=f"127.0.0.1:{new_port}") is None
    slot = client.redis.keyslot(client.keys.history(session))
    source = resharder.owner(slot)
    # When the session's slot migrates there (keys moved, slot not yet handed over), and it is written
    resharder.begin(slot, source, new_port)
    resharder.move_keys(slot, source, new_port)
    finisher = threading.Timer(0.2, resharder.finish, (slot, source, new_port))
    finisher.start()
    try:
        results = store.write([write(session, 2), write(session, 3)])
    finally:
        finisher.join()
    # Then the writes land on the new node, in order
    assert [r.status for r in results] == ["applied", "applied"]
    assert contents(store, session) == [1, 2, 3]
    assert resharder.nodes[new_port].zcard(client.keys.history(session)) == 3
    resharder.close()
    client.close()


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_replicated_enqueue_on_a_cluster_without_replicas_raises(
    topology: ClusterTopology, namespace: str, flavour: str
) -> None:
    # Given a Cluster whose primaries have no replica, and durability="replicated"
    settings = fast_settings(
        topology.url, namespace, queue={"durability": "replicated", "durability_timeout": 0.2}
    )
    client = Client(settings)
    jobs = [HistoryAppendPayload(session_id=f"s{i}", messages=[{"type": "human", "data": {"content": "x"}}])
            for i in range(8)]  # fmt: skip
    try:
        # When jobs are enqueued, Then no replica confirms them and the enqueue says so
        with pytest.raises(DurabilityNotReached, match="no replica"):
            if flavour == "sync":
                client.enqueue(jobs)
            else:
                await client.aproducer.enqueue_many(jobs)
        # and the jobs are in their streams all the same (accepted, not confirmed: never resend;
        # every stream's call goes out in the same round, so each was accepted)
        assert 0 < client.status().totals()["backlog"] <= 8
    finally:
        await client.aclose()
        client.close()


def test_enqueue_follows_a_moved_stream_slot(client: Client, resharder: Resharder, namespace: str) -> None:
    # Given a producer that wrote to every history-append stream, then one stream's slot moved
    jobs = [HistoryAppendPayload(session_id=f"e{i}", messages=[{"type": "human", "data": {"content": "x"}}])
            for i in range(16)]  # fmt: skip
    client.enqueue(jobs)
    stream = client.keys.stream("history-append", 0)
    resharder.move(client.redis.keyslot(stream))
    # When it enqueues again, Then every job is accepted
    assert len(client.enqueue(jobs)) == 16
    assert client.redis.xlen(stream) >= 2

"""Sans-I/O plans and the two thin shells (sync, asyncio) that run them against Redis.

Backends describe their work as *plans*: generators that yield a batch of `Call`s, receive the
replies (a `ResponseError` stays in place as a value, so a plan can tell "unknown index" from
success) and finally return a result. `drive` / `adrive` run a plan on a `Runner` /
`AsyncRunner`; the logic exists once, whatever the I/O.

A batch runs in one round trip per node: one pipeline on a standalone server, one pipeline per
primary on a Cluster (each call goes to the node that owns its `route` key's slot). While slots
move, a Cluster batch takes more rounds: `ClusterBatch` follows the redirections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Sequence
from typing import Any, TypeVar

import redis.exceptions as rex
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import PipelineCommand as AsyncPipelineCommand
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import PRIMARY, ClusterNode, RedisCluster

from sluice.scripts import Scripts
from sluice.transport.call import Call
from sluice.transport.cluster_batch import ClusterBatch, Send
from sluice.transport.translate import translate_errors

__all__ = ["AsyncRunner", "Call", "Plan", "Runner", "adrive", "drive", "is_cluster", "shard_tags_for"]

T = TypeVar("T")
MAX_TAG_SEARCH = 1_000_000


Plan = Generator[list[Call], list[Any], T]


def is_cluster(redis: Any) -> bool:
    """True for a redis-py Cluster client, sync or asyncio (its runner then routes by slot)."""
    return isinstance(redis, RedisCluster | AsyncRedisCluster)


def shard_tags_for(owner_of: Any, primaries: Sequence[Any], keyslot: Any) -> list[str]:
    """The smallest numeric hash tags, one per primary (slot owned by that primary), in node order."""
    wanted = {p.name: p for p in primaries}
    tags: dict[str, str] = {}
    n = 0
    while len(tags) < len(wanted) and n < MAX_TAG_SEARCH:
        node = owner_of(keyslot(str(n)))
        if node is not None and node.name in wanted and node.name not in tags:
            tags[node.name] = str(n)
        n += 1
    return [tags[name] for name in sorted(tags)]


class Runner:
    """Runs batches of calls on a sync redis-py client (standalone, Sentinel-managed or Cluster)."""

    def __init__(self, redis: Any, *, cluster: bool = False) -> None:
        self.redis = redis
        self.cluster = cluster
        self._scripts = Scripts(redis)
        self._loaded: dict[str, set[str]] = {}  # Cluster: node name -> scripts loaded there
        self._stale = False  # a Cluster connection failed: re-read the slot map first

    def run(self, calls: Sequence[Call], *, what: str = "run Redis commands") -> list[Any]:
        """Replies in call order; server error replies are returned as `ResponseError` values.

        On a Cluster, redirections (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) are followed; see
        `sluice.transport.cluster_batch`. `what` names the operation in error messages.
        """
        if not calls:
            return []
        with translate_errors(what):
            if self.cluster:
                return _reraise(self._run_cluster(calls))
            if len(calls) == 1:
                return [_one(self.redis, self._scripts, calls[0])]  # the hot path: no pipeline
            pipe = self.redis.pipeline(transaction=False)
            for call in calls:
                if call.script:
                    self._scripts[call.script](keys=list(call.keys), args=list(call.args), client=pipe)
                else:
                    pipe.execute_command(*call.args)
            return _reraise(list(pipe.execute(raise_on_error=False)))

    def _run_cluster(self, calls: Sequence[Call]) -> list[Any]:
        manager = self.redis.nodes_manager
        if self._stale:
            manager.initialize()
            self._stale = False
        batch = ClusterBatch(calls, self.redis.keyslot, self._loaded)
        try:
            while not batch.done:
                delay = batch.pause()
                if delay:
                    time.sleep(delay)
                if batch.refresh:
                    manager.initialize()
                for send in batch.next_round(self._owner):
                    batch.take(send, self._send(send))
                for moved in batch.learned:
                    _learn(manager, moved)
        except (rex.ConnectionError, rex.TimeoutError):
            self._stale = True  # the node may have failed over
            raise
        return batch.result()

    def _owner(self, slot: int) -> str:
        return str(self.redis.nodes_manager.get_node_from_slot(slot).name)

    def _send(self, send: Send) -> list[Any]:
        pipe = self.redis.get_redis_connection(self._node(send.node)).pipeline(transaction=False)
        for args in send.commands:
            pipe.execute_command(*args)
        return list(pipe.execute(raise_on_error=False))

    def _node(self, name: str) -> Any:
        node = self.redis.get_node(node_name=name)
        if node is None:
            self.redis.nodes_manager.initialize()
            node = self.redis.get_node(node_name=name)
        if node is None:  # serves no slot yet: a new node importing its first one
            host, _, port = name.rpartition(":")
            new = ClusterNode(host, int(port), PRIMARY)  # type: ignore[no-untyped-call]
            node = self.redis.nodes_manager.nodes_cache.setdefault(name, new)
        return node

    def shard_tags(self) -> list[str]:
        """One hash tag per primary on a Cluster; `[""]` (no tag) on a single server."""
        if not self.cluster:
            return [""]
        with translate_errors("read the Cluster topology"):
            manager = self.redis.nodes_manager
            return shard_tags_for(manager.get_node_from_slot, self.redis.get_primaries(), self.redis.keyslot)


class AsyncRunner:
    """Runs batches of calls on a `redis.asyncio` client (standalone, Sentinel-managed or Cluster)."""

    def __init__(self, redis: Any, *, cluster: bool = False) -> None:
        self.redis = redis
        self.cluster = cluster
        self._scripts = Scripts(redis)
        self._loaded: dict[str, set[str]] = {}
        self._stale = False

    async def run(self, calls: Sequence[Call], *, what: str = "run Redis commands") -> list[Any]:
        """As `Runner.run`."""
        if not calls:
            return []
        async with translate_errors(what):
            if self.cluster:
                return _reraise(await self._run_cluster(calls))
            if len(calls) == 1:
                return [await _aone(self.redis, self._scripts, calls[0])]
            pipe = self.redis.pipeline(transaction=False)
            for call in calls:
                if call.script:
                    await self._scripts[call.script](keys=list(call.keys), args=list(call.args), client=pipe)
                else:
                    pipe.execute_command(*call.args)
            return _reraise(list(await pipe.execute(raise_on_error=False)))

    async def _run_cluster(self, calls: Sequence[Call]) -> list[Any]:
        await self.redis.initialize()  # a no-op once the client has its slot map
        manager = self.redis.nodes_manager
        if self._stale:
            await manager.initialize()
            self._stale = False
        batch = ClusterBatch(calls, self.redis.keyslot, self._loaded)
        try:
            while not batch.done:
                delay = batch.pause()
                if delay:
                    await asyncio.sleep(delay)
                if batch.refresh:
                    await manager.initialize()
                sends = batch.next_round(self._owner)
                replies = await asyncio.gather(*(self._send(send) for send in sends))
                for send, got in zip(sends, replies, strict=True):
                    batch.take(send, got)
                for moved in batch.learned:
                    await _alearn(manager, moved)
        except (rex.ConnectionError, rex.TimeoutError):
            self._stale = True
            raise
        return batch.result()

    def _owner(self, slot: int) -> str:
        return str(self.redis.nodes_manager.get_node_from_slot(slot).name)

    async def _send(self, send: Send) -> list[Any]:
        node = await self._node(send.node)
        commands = [AsyncPipelineCommand(i, *args) for i, args in enumerate(send.commands)]
        await node.execute_pipeline(commands)
        return [c.result for c in commands]

    async def _node(self, name: str) -> Any:
        manager = self.redis.nodes_manager
        node = manager.get_node(node_name=name)
        if node is None:
            await manager.initialize()
            node = manager.get_node(node_name=name)
        if node is None:  # serves no slot yet: a new node importing its first one
            host, _, port = name.rpartition(":")
            node = AsyncClusterNode(host, int(port), PRIMARY, **manager.connection_kwargs)
            manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node

    async def shard_tags(self) -> list[str]:
        if not self.cluster:
            return [""]
        async with translate_errors("read the Cluster topology"):
            await self.redis.initialize()
            manager = self.redis.nodes_manager
            return shard_tags_for(manager.get_node_from_slot, self.redis.get_primaries(), self.redis.keyslot)


def _learn(manager: Any, moved: rex.MovedError) -> None:
    """Teach redis-py's slot map a slot's new owner (redis-py < 8: applied on the next lookup)."""
    move = getattr(manager, "move_slot", None)
    if move is not None:
        move(moved)
    else:
        manager.update_moved_exception(moved)


async def _alearn(manager: Any, moved: rex.MovedError) -> None:
    move = getattr(manager, "move_slot", None)
    if move is not None:
        await move(moved)
    else:
        manager._moved_exception = moved  # redis-py < 8 applies it on the next slot lookup


def _one(redis: Any, scripts: Scripts, call: Call) -> Any:
    """One call; a server error reply comes back as a value, as from a pipeline."""
    try:
        if call.script:
            return scripts[call.script](keys=list(call.keys), args=list(call.args))
        return redis.execute_command(*call.args)
    except rex.ResponseError as e:
        return e


async def _aone(redis: Any, scripts: Scripts, call: Call) -> Any:
    try:
        if call.script:
            return await scripts[call.script](keys=list(call.keys), args=list(call.args))
        return await redis.execute_command(*call.args)
    except rex.ResponseError as e:
        return e


def _reraise(replies: list[Any]) -> list[Any]:
    """Keep server error replies as values; raise anything else (connection loss, ...)."""
    for reply in replies:
        if isinstance(reply, BaseException) and not isinstance(reply, rex.ResponseError):
            raise reply
    return replies


def drive(plan: Plan[T], runner: Runner, *, what: str = "run Redis commands") -> T:
    """Run a plan to completion on a sync runner (`what` names it in error messages)."""
    try:
        calls = next(plan)
        while True:
            calls = plan.send(runner.run(calls, what=what))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(plan: Plan[T], runner: AsyncRunner, *, what: str = "run Redis commands") -> T:
    """Run a plan to completion on an asyncio runner."""
    try:
        calls = next(plan)
        while True:
            calls = plan.send(await runner.run(calls, what=what))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]

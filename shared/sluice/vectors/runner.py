"""Sans-I/O plans and the two thin shells (sync, asyncio) that run them against Redis.

Backends describe their work as *plans*: generators that yield a batch of `Call`s, receive the
replies (a `ResponseError` stays in place as a value, so a plan can tell "unknown index" from
success) and finally return a result. `drive` / `adrive` run a plan on a `Runner` /
`AsyncRunner`; the logic exists once, whatever the I/O.

A batch runs in one round trip per node: one pipeline on a standalone server, one pipeline per
primary on a Cluster (each call goes to the node that owns its `route` key's slot).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.exceptions as rex

from sluice.connection.translate import translate_errors
from sluice.scripts import Scripts

T = TypeVar("T")
MAX_TAG_SEARCH = 1_000_000


@dataclass(frozen=True, slots=True)
class Call:
    """One command, or one sluice Lua script when `script` is set (then `keys` are its KEYS)."""

    args: tuple[Any, ...]
    route: str
    script: str | None = None
    keys: tuple[str, ...] = ()


Plan = Generator[list[Call], list[Any], T]


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
        self._scripts: dict[str, Scripts] = {}

    def _scripts_for(self, name: str, client: Any) -> Scripts:
        if name not in self._scripts:
            self._scripts[name] = Scripts(client)
        return self._scripts[name]

    def _pipeline(self, client: Any, scripts: Scripts, calls: Sequence[Call]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for call in calls:
            if call.script:
                scripts[call.script](keys=list(call.keys), args=list(call.args), client=pipe)
            else:
                pipe.execute_command(*call.args)
        return list(pipe.execute(raise_on_error=False))

    def run(self, calls: Sequence[Call]) -> list[Any]:
        """Replies in call order; server error replies are returned as `ResponseError` values."""
        if not calls:
            return []
        with translate_errors("run vector index commands"):
            if not self.cluster and len(calls) == 1 and not calls[0].script:
                return [_one(self.redis, calls[0])]  # a query's hot path: no pipeline to build
            if not self.cluster:
                return _reraise(self._pipeline(self.redis, self._scripts_for("", self.redis), calls))
            groups: dict[str, list[int]] = defaultdict(list)
            nodes: dict[str, Any] = {}
            for i, call in enumerate(calls):
                node = self.redis.get_node_from_key(call.route)
                groups[node.name].append(i)
                nodes[node.name] = node
            out: list[Any] = [None] * len(calls)
            for name, idx in groups.items():
                conn = self.redis.get_redis_connection(nodes[name])
                replies = self._pipeline(conn, self._scripts_for(name, conn), [calls[i] for i in idx])
                for i, reply in zip(idx, replies, strict=True):
                    out[i] = reply
            return _reraise(out)

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

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        if not calls:
            return []
        async with translate_errors("run vector index commands"):
            if not self.cluster:
                pipe = self.redis.pipeline(transaction=False)
                for call in calls:
                    if call.script:
                        await self._scripts[call.script](
                            keys=list(call.keys), args=list(call.args), client=pipe
                        )
                    else:
                        pipe.execute_command(*call.args)
                return _reraise(list(await pipe.execute(raise_on_error=False)))
            await self.redis.initialize()
            replies = await asyncio.gather(*(self._one(c) for c in calls), return_exceptions=True)
            return _reraise(list(replies))

    async def _one(self, call: Call) -> Any:
        if call.script:
            return await self._scripts[call.script](keys=list(call.keys), args=list(call.args))
        node = self.redis.get_node_from_key(call.route)
        return await self.redis.execute_command(*call.args, target_nodes=node)

    async def shard_tags(self) -> list[str]:
        if not self.cluster:
            return [""]
        async with translate_errors("read the Cluster topology"):
            await self.redis.initialize()
            manager = self.redis.nodes_manager
            return shard_tags_for(manager.get_node_from_slot, self.redis.get_primaries(), self.redis.keyslot)


def _one(redis: Any, call: Call) -> Any:
    """One plain command; a server error reply comes back as a value, as from a pipeline."""
    try:
        return redis.execute_command(*call.args)
    except rex.ResponseError as e:
        return e


def _reraise(replies: list[Any]) -> list[Any]:
    """Keep server error replies as values; raise anything else (connection loss, ...)."""
    for reply in replies:
        if isinstance(reply, BaseException) and not isinstance(reply, rex.ResponseError):
            raise reply
    return replies


def drive(plan: Plan[T], runner: Runner) -> T:
    """Run a plan to completion on a sync runner."""
    try:
        calls = next(plan)
        while True:
            calls = plan.send(runner.run(calls))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(plan: Plan[T], runner: AsyncRunner) -> T:
    """Run a plan to completion on an asyncio runner."""
    try:
        calls = next(plan)
        while True:
            calls = plan.send(await runner.run(calls))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]

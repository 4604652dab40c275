"""The core of a sluice client: connections, capabilities, producer and waiter.

Facades, vector sessions and migrations take a `Core`; `sluice.Client` (facade/client.py) is a
`Core` plus status and the LangChain facades. Building one does no I/O (the URL and settings
are checked at once); connections open on first use. Asyncio connections, producer and waiter
belong to the event loop that uses them: each running loop gets its own, closed when that loop
shuts down (see `sluice.connection.loops`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Self, TypeAlias

import redis.asyncio
from pydantic import SecretStr

from sluice.connection import twins
from sluice.connection.capabilities import Capabilities, aprobe, probe
from sluice.connection.factory import connect, connect_async, plan_connection
from sluice.connection.loops import PerLoop
from sluice.errors import ConfigError, InvalidArgument, InvalidArgumentType
from sluice.jobs.models import Payload
from sluice.keys import Keys
from sluice.ops.foreground import ForegroundReporter
from sluice.queue.lateness import Lateness
from sluice.queue.partitions import acheck_partitions, check_partitions
from sluice.queue.producer import AsyncProducer, Producer
from sluice.queue.waiting import SIGNAL_BLOCK, AsyncWaiter, Waiter
from sluice.settings import Settings
from sluice.types import StreamEntryRef

Handles: TypeAlias = StreamEntryRef | Sequence[StreamEntryRef]
"""What `wait` takes: one handle, or a list of them (what `enqueue` returned)."""


@dataclass(frozen=True, slots=True)
class LoopClients:
    """One event loop's asyncio client, producer and waiter."""

    redis: Any
    producer: AsyncProducer
    waiter: AsyncWaiter
    owned: bool  # False for the app's own asyncio client (the app closes it)


async def aclose_client(client: Any) -> None:
    """Close an asyncio client sluice built, with its pool (a client given a pool keeps it open)."""
    if isinstance(client, redis.asyncio.Redis):
        await client.aclose(close_connection_pool=True)
    else:
        await client.aclose()


class Core:
    """Connections, capabilities, enqueue and wait: what facades and stores need of a client.

    Apps use `sluice.Client`, which adds status and the LangChain facades.
    """

    def __init__(
        self, settings: Settings | None = None, *, redis: Any = None, async_redis: Any = None
    ) -> None:
        self.settings = settings or Settings()
        if redis is None:
            plan_connection(self.settings.redis)  # a bad URL or setting fails here, not at first use
        self.keys = Keys(self.settings.namespace, self.settings.queue.partitions)
        # from_redis: the app's own clients; sluice's connections are twins built from them
        self._given = redis
        self._given_async = async_redis  # as the app gave it
        self._app_async = async_redis  # what serves the first loop (a RESP2 twin if need be)
        self._redis: Any = None
        self._caps: Capabilities | None = None
        self.lateness = Lateness()  # streams reads gave up on (facades with on_timeout="warn")
        # lookup latency for the workers' governor (sluice.ops.foreground); no I/O until a report
        self.foreground = ForegroundReporter(self.settings.governor, self.keys, lambda: self.redis)
        self._loops: PerLoop[LoopClients] = PerLoop(self._new_loop_clients, self._close_loop_clients)

    @classmethod
    def from_url(cls, url: str, namespace: str = "sluice", **settings: Any) -> Self:
        """A client for `url` (any form sluice takes); a malformed URL raises `URLError` here."""
        base = Settings(namespace=namespace, **settings)
        redis = base.redis.model_copy(update={"url": SecretStr(url)})
        return cls(base.model_copy(update={"redis": redis}))

    @classmethod
    def from_redis(
        cls, redis: Any, namespace: str = "sluice", *, async_redis: Any = None, **settings: Any
    ) -> Self:
        """Wrap a redis-py client the app already has (`Redis`, `RedisCluster`, Sentinel-managed).

        sluice's other connections (RESP2 bytes replies where the app's client speaks RESP3 or
        decodes, asyncio unless `async_redis` is given, RESP3 for `local_cache`) are twins built
        from this client's connection class and options: same socket, TLS, sentinels or nodes.
        An `async_redis` serves the first event loop sluice uses it from; other loops get twins.
        """
        twins.check(redis)
        core = cls(Settings(namespace=namespace, **settings), redis=redis)
        if async_redis is not None:
            core._given_async = async_redis
            core._app_async = twins.resp2_async(async_redis)
        return core

    # --- connections -----------------------------------------------------------------------------
    @property
    def redis(self) -> Any:
        if self._redis is None:
            given = self._given
            self._redis = connect(self.settings.redis) if given is None else twins.sync_twin(given)
        return self._redis

    @property
    def async_redis(self) -> Any:
        """The running event loop's asyncio client (raises `NoEventLoop` outside a coroutine)."""
        return self._loops.get().redis

    @property
    def aproducer(self) -> AsyncProducer:
        return self._loops.get().producer

    @property
    def awaiter(self) -> AsyncWaiter:
        return self._loops.get().waiter

    def _new_loop_clients(self) -> LoopClients:
        app, self._app_async = self._app_async, None  # the app's own client serves one loop only
        if app is not None:
            client, owned = app, app is not self._given_async
        elif self._given is not None:
            client, owned = twins.async_twin(self._given), True
        else:
            client, owned = connect_async(self.settings.redis), True
        waiter = AsyncWaiter(client, self.keys, self.settings.queue.group, block=self._signal_block)
        return LoopClients(client, AsyncProducer(client, self.settings), waiter, owned)

    @staticmethod
    async def _close_loop_clients(clients: LoopClients) -> None:
        if clients.owned:
            await aclose_client(clients.redis)

    def tracking_redis(self) -> Any:
        """A new sync RESP3 client on the same server, for client-side caching (not on a Cluster)."""
        if self._given is not None:
            return twins.sync_twin(self._given, protocol=3)
        if "cluster" in self.settings.redis.url.get_secret_value().split("://")[0]:
            raise ConfigError("local_cache is not available on a Redis Cluster; leave it unset")
        return connect(self.settings.redis, protocol=3)

    def _owned(self, client: Any) -> bool:
        """True for a client sluice built (closing the app's own clients is the app's business)."""
        return client is not None and client is not self._given and client is not self._given_async

    @property
    def capabilities(self) -> Capabilities:
        """What the server can do (probed once per client, with the partition count checked)."""
        if self._caps is None:
            caps = probe(self.redis)
            check_partitions(self.redis, self.keys)
            self._caps = caps
        return self._caps

    async def acapabilities(self) -> Capabilities:
        if self._caps is None:
            caps = await aprobe(self.async_redis)
            await acheck_partitions(self.async_redis, self.keys)
            self._caps = caps
        return self._caps

    @cached_property
    def producer(self) -> Producer:
        return Producer(self.redis, self.settings, cluster=self.capabilities.cluster)

    @property
    def _signal_block(self) -> float:
        return min(SIGNAL_BLOCK, self.settings.redis.socket_timeout / 2)

    @cached_property
    def waiter(self) -> Waiter:
        return Waiter(self.redis, self.keys, self.settings.queue.group, block=self._signal_block)

    # --- jobs ------------------------------------------------------------------------------------
    def enqueue(self, payloads: Sequence[Payload], *, notify: bool = False) -> list[StreamEntryRef]:
        """Enqueue jobs (batched per partition); returns one handle per job, in order.

        `notify=True` has the worker leave a signal that `wait` blocks on (it then returns the
        moment the job is applied); without it `wait` polls, from 1 ms up to 50 ms apart.
        """
        return self.producer.enqueue_many(payloads, notify=notify)

    async def aenqueue(self, payloads: Sequence[Payload], *, notify: bool = False) -> list[StreamEntryRef]:
        """`enqueue` for asyncio."""
        return await self.aproducer.enqueue_many(payloads, notify=notify)

    def wait(self, handles: Handles, timeout: float | None = None) -> None:
        """Block until the job(s) are applied; raises `JobFailed` (dead-lettered) or `WaitTimeout`.

        `handles`: one handle or a list (what `enqueue` returned). `timeout` in seconds: None is
        ``settings.queue.wait_timeout``; 0 checks once and raises `WaitTimeout` if not applied.
        """
        todo = as_handles(handles)
        budget = self.wait_budget(timeout)
        if todo:
            self.waiter.wait(todo, budget)

    async def await_wait(self, handles: Handles, timeout: float | None = None) -> None:
        """`wait` for asyncio: ``await client.await_wait(handles)``."""
        todo = as_handles(handles)
        budget = self.wait_budget(timeout)
        if todo:
            await self.awaiter.wait(todo, budget)

    async def await_(self, handles: Handles, timeout: float | None = None) -> None:
        """Deprecated name of `await_wait`."""
        warnings.warn(
            "Client.await_ is renamed await_wait (the asyncio form of wait)", DeprecationWarning, stacklevel=2
        )
        await self.await_wait(handles, timeout)

    def wait_budget(self, timeout: float | None) -> float:
        """Seconds a wait may take: `timeout`, or the settings' default for None (0 stays 0)."""
        if timeout is None:
            return self.settings.queue.wait_timeout
        return check_timeout(timeout)


def check_timeout(timeout: float, name: str = "timeout") -> float:
    """`timeout` as float seconds; refuses negative, NaN and non-numbers."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgumentType(f"{name} must be seconds (a number) or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise InvalidArgument(
            f"{name} must be >= 0 seconds (0: check once, do not wait) or None for the default, not {timeout}"
        )
    return float(timeout)


def as_handles(handles: Handles) -> list[StreamEntryRef]:
    """One handle or a sequence of them, as a list; refuses anything else by name."""
    if isinstance(handles, StreamEntryRef):
        return [handles]
    if isinstance(handles, (str, bytes)) or not isinstance(handles, (Sequence, set, frozenset)):
        raise InvalidArgumentType(
            f"wait takes a handle or a list of handles (what enqueue returned), not {type(handles).__name__}"
        )
    out: list[StreamEntryRef] = []
    for given in handles:
        # a plain (stream, entry id) pair, e.g. a handle that went through JSON, is one too
        pair = type(given) in (tuple, list) and len(given) == 2 and all(isinstance(x, str) for x in given)
        h = StreamEntryRef(*given) if pair else given
        if not isinstance(h, StreamEntryRef):
            raise InvalidArgumentType(
                f"wait takes handles (what enqueue returned), not {type(h).__name__} items"
            )
        out.append(h)
    return out

"""The core of a sluice client: connections, capabilities, producer and waiter.

Facades, vector sessions and migrations take a `Core`; `sluice.Client` (facade/client.py) is a
`Core` plus status and the LangChain facades. Building one does no I/O; connections open on
first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, Self

from pydantic import SecretStr

from sluice.connection import twins
from sluice.connection.capabilities import Capabilities, aprobe, probe
from sluice.connection.factory import connect, connect_async
from sluice.errors import ConfigError
from sluice.jobs.models import Payload
from sluice.keys import Keys
from sluice.queue.partitions import acheck_partitions, check_partitions
from sluice.queue.producer import AsyncProducer, Producer
from sluice.queue.waiting import SIGNAL_BLOCK, AsyncWaiter, Waiter
from sluice.settings import Settings
from sluice.types import StreamEntryRef


class Core:
    """Connections, capabilities, enqueue and wait: what facades and stores need of a client.

    Apps use `sluice.Client`, which adds status and the LangChain facades.
    """

    def __init__(
        self, settings: Settings | None = None, *, redis: Any = None, async_redis: Any = None
    ) -> None:
        self.settings = settings or Settings()
        self.keys = Keys(self.settings.namespace, self.settings.queue.partitions)
        # from_redis: the app's own clients; sluice's connections are twins built from them
        self._given = redis
        self._given_async = async_redis
        self._redis: Any = None
        self._async_redis = async_redis
        self._caps: Capabilities | None = None

    @classmethod
    def from_url(cls, url: str, namespace: str = "sluice", **settings: Any) -> Self:
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
        """
        twins.check(redis)
        twin_async = twins.resp2_async(async_redis) if async_redis is not None else None
        core = cls(Settings(namespace=namespace, **settings), redis=redis, async_redis=twin_async)
        core._given_async = async_redis
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
        if self._async_redis is None:
            given = self._given
            self._async_redis = (
                connect_async(self.settings.redis) if given is None else twins.async_twin(given)
            )
        return self._async_redis

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

    @cached_property
    def aproducer(self) -> AsyncProducer:
        return AsyncProducer(self.async_redis, self.settings)

    @property
    def _signal_block(self) -> float:
        return min(SIGNAL_BLOCK, self.settings.redis.socket_timeout / 2)

    @cached_property
    def waiter(self) -> Waiter:
        return Waiter(self.redis, self.keys, self.settings.queue.group, block=self._signal_block)

    @cached_property
    def awaiter(self) -> AsyncWaiter:
        return AsyncWaiter(self.async_redis, self.keys, self.settings.queue.group, block=self._signal_block)

    # --- jobs ------------------------------------------------------------------------------------
    def enqueue(self, payloads: Sequence[Payload], *, notify: bool = False) -> list[StreamEntryRef]:
        """Enqueue jobs (batched per partition); returns one handle per job, in order."""
        return self.producer.enqueue_many(payloads, notify=notify)

    def wait(self, handles: Sequence[StreamEntryRef], timeout: float | None = None) -> None:
        """Block until the jobs are applied; raises JobFailed (dead-lettered) or WaitTimeout."""
        if handles:
            self.waiter.wait(handles, timeout or self.settings.queue.wait_timeout)

    async def await_(self, handles: Sequence[StreamEntryRef], timeout: float | None = None) -> None:
        if handles:
            await self.awaiter.wait(handles, timeout or self.settings.queue.wait_timeout)

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

from sluice.connection.capabilities import Capabilities, aprobe, probe
from sluice.connection.factory import connect, connect_async, resp2_twin
from sluice.jobs.models import Payload
from sluice.keys import Keys
from sluice.queue.partitions import acheck_partitions, check_partitions
from sluice.queue.producer import AsyncProducer, Producer
from sluice.queue.waiting import SIGNAL_BLOCK, AsyncWaiter, Waiter
from sluice.settings import RedisSettings, Settings
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
        self._redis = redis
        self._async_redis = async_redis
        self._caps: Capabilities | None = None
        self._wrapped = redis is not None

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

        A client speaking RESP3 or decoding replies is twinned on the same connection settings
        with RESP2 and bytes replies, which sluice's reply parsers read.
        """
        twin = resp2_twin(redis)
        return cls(Settings(namespace=namespace, **settings), redis=twin, async_redis=async_redis)

    # --- connections -----------------------------------------------------------------------------
    @property
    def redis(self) -> Any:
        if self._redis is None:
            self._redis = connect(self.settings.redis)
        return self._redis

    @property
    def async_redis(self) -> Any:
        if self._async_redis is None:
            self._async_redis = connect_async(self._async_settings())
        return self._async_redis

    def _async_settings(self) -> RedisSettings:
        if not self._wrapped:
            return self.settings.redis
        # from_redis without an async client: reach the same server the sync client uses
        kw = self._redis.connection_pool.connection_kwargs
        url = f"redis://{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
        pw = kw.get("password")
        return self.settings.redis.model_copy(
            update={
                "url": SecretStr(url),
                "username": kw.get("username"),
                "password": SecretStr(pw) if pw else None,
            }
        )

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

"""Enqueueing jobs: the app-side write path (sync and asyncio shells over `plan`).

One script call per partition stream and chunk appends the jobs atomically with the backlog
check. With `durability` set, the same connection then runs WAIT / WAITAOF, so an accepted job
is on a replica or fsynced to the AOF before enqueue returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from sluice.connection.translate import translate_errors
from sluice.errors import ConfigError, DurabilityNotReached, QueueFull
from sluice.jobs.models import Payload
from sluice.keys import Keys
from sluice.queue import plan as planning
from sluice.scripts import Scripts
from sluice.settings import QueueSettings, Settings
from sluice.types import KeyT, StreamEntryRef

FIELD = "job"



def _durability_commands(queue: QueueSettings) -> list[tuple[Any, ...]]:
    timeout_ms = int(queue.durability_timeout * 1000)
    if queue.durability == "replicated":
        return [("WAIT", 1, timeout_ms)]
    if queue.durability == "fsync":
        return [("WAITAOF", 1, 0, timeout_ms)]
    return []


def _check_durability(queue: QueueSettings, reply: Any) -> None:
    if queue.durability == "replicated" and int(reply) < 1:
        raise DurabilityNotReached(
            f"jobs enqueued but no replica confirmed them within {queue.durability_timeout}s; "
            "check replication (INFO replication) or lower SLUICE_QUEUE__DURABILITY"
        )
    if queue.durability == "fsync" and int(reply[0]) < 1:
        raise DurabilityNotReached(
            f"jobs enqueued but not fsynced within {queue.durability_timeout}s; "
            "is appendonly enabled on the server? (CONFIG GET appendonly)"
        )


class _Backoff:
    """Waiting for room in a full stream with policy=wait."""

    def __init__(self, queue: QueueSettings) -> None:
        self.deadline = time.monotonic() + queue.backlog_wait
        self.delay = 0.005
        self.policy = queue.backlog_policy

    def next_delay(self, exc: QueueFull) -> float:
        if self.policy != "wait" or time.monotonic() >= self.deadline:
            raise exc
        delay = min(self.delay, max(0.0, self.deadline - time.monotonic()))
        self.delay = min(self.delay * 2, 0.5)
        return delay


def _full(stream: str, e: ResponseError) -> QueueFull | None:
    parsed = planning.queue_full(str(e))
    return QueueFull(stream, parsed[0], parsed[1]) if parsed else None


class Producer:
    """Sync producer. `enqueue_many` is the bulk path (batched per partition)."""

    def __init__(self, redis: Any, settings: Settings, *, cluster: bool = False) -> None:
        self._redis = redis
        self._settings = settings
        self._keys = Keys(settings.namespace, settings.queue.partitions)
        self._scripts = Scripts(redis)
        # WAIT/WAITAOF must run on the connection that wrote: on a cluster, the stream's node.
        self._cluster = cluster

    @property
    def keys(self) -> Keys:
        return self._keys

    def enqueue(
        self, payload: Payload, *, notify: bool = False, trace: dict[str, str] | None = None
    ) -> StreamEntryRef:
        return self.enqueue_many([payload], notify=notify, trace=trace)[0]

    def enqueue_many(
        self, payloads: Sequence[Payload], *, notify: bool = False, trace: dict[str, str] | None = None
    ) -> list[StreamEntryRef]:
        batches, count = planning.plan(
            self._keys, self._settings.limits, payloads, notify=notify, trace=trace
        )
        out: list[StreamEntryRef | None] = [None] * count
        for batch in batches:
            for jobs, slots in planning.chunks(batch):
                for slot, handle in zip(slots, self._append(batch.stream, jobs), strict=True):
                    out[slot] = handle
        return [h for h in out if h is not None]

    def _append(self, stream: KeyT, jobs: list[bytes]) -> list[StreamEntryRef]:
        if len(jobs) > self._settings.queue.max_backlog:
            raise ConfigError(
                f"{len(jobs)} jobs for one stream exceed SLUICE_QUEUE__MAX_BACKLOG="
                f"{self._settings.queue.max_backlog}; enqueue in smaller batches"
            )
        backoff = _Backoff(self._settings.queue)
        while True:
            try:
                with translate_errors("enqueue"):
                    return planning.handles(stream, self._call(stream, jobs))
            except QueueFull as exc:
                time.sleep(backoff.next_delay(exc))

    def _call(self, stream: str, jobs: list[bytes]) -> list[bytes]:
        args = [self._settings.queue.max_backlog, FIELD, *jobs]
        extra = _durability_commands(self._settings.queue)
        try:
            if not extra:
                return list(self._scripts["enqueue"](keys=[stream], args=args))
            target = self._redis
            if self._cluster:
                target = self._redis.get_node_from_key(stream).redis_connection
            pipe = target.pipeline(transaction=False)
            Scripts(target)["enqueue"](keys=[stream], args=args, client=pipe)
            for cmd in extra:
                pipe.execute_command(*cmd)
            ids, ack = pipe.execute()
        except ResponseError as e:
            full = _full(stream, e)
            if full is not None:
                raise full from None
            raise
        _check_durability(self._settings.queue, ack)
        return list(ids)


class AsyncProducer:
    """asyncio producer over `redis.asyncio`; same routing, limits and errors as `Producer`."""

    def __init__(self, redis: Any, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._keys = Keys(settings.namespace, settings.queue.partitions)
        self._scripts = Scripts(redis)

    async def enqueue_many(
        self, payloads: Sequence[Payload], *, notify: bool = False, trace: dict[str, str] | None = None
    ) -> list[StreamEntryRef]:
        batches, count = planning.plan(
            self._keys, self._settings.limits, payloads, notify=notify, trace=trace
        )
        out: list[StreamEntryRef | None] = [None] * count
        for batch in batches:
            for jobs, slots in planning.chunks(batch):
                for slot, handle in zip(slots, await self._append(batch.stream, jobs), strict=True):
                    out[slot] = handle
        return [h for h in out if h is not None]

    async def _append(self, stream: KeyT, jobs: list[bytes]) -> list[StreamEntryRef]:
        backoff = _Backoff(self._settings.queue)
        args = [self._settings.queue.max_backlog, FIELD, *jobs]
        extra = _durability_commands(self._settings.queue)
        while True:
            try:
                with translate_errors("enqueue"):
                    try:
                        if not extra:
                            ids = await self._scripts["enqueue"](keys=[stream], args=args)
                        else:
                            pipe = self._redis.pipeline(transaction=False)
                            await self._scripts["enqueue"](keys=[stream], args=args, client=pipe)
                            for cmd in extra:
                                pipe.execute_command(*cmd)
                            ids, ack = await pipe.execute()
                            _check_durability(self._settings.queue, ack)
                    except ResponseError as e:
                        full = _full(stream, e)
                        if full is not None:
                            raise full from None
                        raise
                    return planning.handles(stream, ids)
            except QueueFull as exc:
                await asyncio.sleep(backoff.next_delay(exc))

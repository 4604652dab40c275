"""Enqueueing jobs: the app-side write path (sync and asyncio shells over `plan`).

One script call per partition stream and chunk appends the jobs atomically with the backlog
check. A call that fails in transit (timeout, dropped connection) is resent with the same job
ids, and enqueue.lua returns the first entry ids for jobs it already holds: a job is never added
twice. With `durability` set, the same connection then runs WAIT / WAITAOF, so an accepted job is
on a replica or fsynced to the AOF before enqueue returns. `_calls` and `_accepted` decide what is
sent and what the replies mean; the runner sends it (on a Cluster: to the node that owns the
stream, following redirections, with WAIT on the same node), so both shells behave alike.
cache-warm jobs first get their versions, reserved from the cache-fill streams of their keys
(`planning.version_requests`, one round trip), so within one call they count as enqueued before
its other jobs. The first enqueue checks the namespace's partition count (`sluice.queue.partitions`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

from sluice.connection.translate import translate_errors
from sluice.errors import ConfigError, DurabilityNotReached, PayloadTooLarge, QueueFull, RedisUnavailable
from sluice.jobs.codec import encode
from sluice.jobs.models import JobEnvelope, Payload
from sluice.keys import Keys
from sluice.queue import plan as planning
from sluice.queue.partitions import acheck_partitions, check_partitions
from sluice.settings import QueueSettings, Settings
from sluice.stores import versions
from sluice.types import StreamEntryRef
from sluice.vectors.runner import AsyncRunner, Call, Runner


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
            "do not resend them: check replication (INFO replication) or lower SLUICE_QUEUE__DURABILITY"
        )
    if queue.durability == "fsync" and int(reply[0]) < 1:
        raise DurabilityNotReached(
            f"jobs enqueued but not fsynced within {queue.durability_timeout}s; "
            "do not resend them: is appendonly enabled on the server? (CONFIG GET appendonly)"
        )


class _Attempts:
    """When to try a script call again: room in a full stream (policy=wait), or a resend after
    a failure in transit (safe: deduplicated by job id)."""

    def __init__(self, queue: QueueSettings) -> None:
        self.queue = queue
        self.deadline = time.monotonic() + queue.backlog_wait
        self.full_delay = 0.005
        self.resends = 0

    def after(self, exc: Exception) -> float:
        """The pause before the next attempt, or re-raise `exc`."""
        if isinstance(exc, QueueFull):
            if self.queue.backlog_policy != "wait" or time.monotonic() >= self.deadline:
                raise exc
            delay = min(self.full_delay, max(0.0, self.deadline - time.monotonic()))
            self.full_delay = min(self.full_delay * 2, 0.5)
            return delay
        can_resend = self.queue.dedupe_window > 0 and self.resends < self.queue.enqueue_retries
        if isinstance(exc, RedisUnavailable) and can_resend:
            self.resends += 1
            return min(0.05 * float(2**self.resends), 1.0)
        raise exc


def _is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster | AsyncRedisCluster)


def _calls(queue: QueueSettings, call: planning.ScriptCall) -> list[Call]:
    """The script call, then WAIT / WAITAOF on the node that ran it (when durability asks)."""
    out = [Call(tuple(call.args), route=call.stream, script="enqueue", keys=tuple(call.keys))]
    out += [Call(cmd, route=call.stream, follows=True) for cmd in _durability_commands(queue)]
    return out


def _accepted(queue: QueueSettings, call: planning.ScriptCall, replies: Sequence[Any]) -> list[bytes]:
    """The entry ids from the replies to `_calls`; raises QueueFull or DurabilityNotReached."""
    ids, *acks = replies
    if isinstance(ids, ResponseError):
        raise _translate_full(call.stream, ids) from None
    for ack in acks:
        if isinstance(ack, ResponseError):
            raise ack
        _check_durability(queue, ack)
    return list(ids)


def _translate_full(stream: str, e: ResponseError) -> Exception:
    parsed = planning.queue_full(str(e))
    return QueueFull(stream, parsed[0], parsed[1]) if parsed else e


def _reserve_calls(requests: Sequence[planning.VersionRequest]) -> list[Call]:
    """One reserve_versions.lua call per stream that versions some of the call's warm jobs."""
    return [Call((len(r.slots),), route=r.stream, script=versions.SCRIPT, keys=(r.stream,)) for r in requests]


def _reserved(requests: Sequence[planning.VersionRequest], replies: Sequence[Any]) -> list[list[str]]:
    out: list[list[str]] = []
    with translate_errors("reserve versions for cache-warm jobs"):
        for request, reply in zip(requests, replies, strict=True):
            if isinstance(reply, ResponseError):
                raise reply
            out.append(versions.parse_reserved(reply, len(request.slots)))
    return out


def _too_many(queue: QueueSettings, call: planning.ScriptCall) -> None:
    if len(call.slots) > queue.max_backlog:
        raise ConfigError(
            f"{len(call.slots)} jobs for one stream exceed SLUICE_QUEUE__MAX_BACKLOG="
            f"{queue.max_backlog}; enqueue in smaller batches"
        )


class Producer:
    """Sync producer. `enqueue_many` is the bulk path (batched per partition)."""

    def __init__(self, redis: Any, settings: Settings, *, cluster: bool | None = None) -> None:
        self._settings = settings
        self._keys = Keys(settings.namespace, settings.queue.partitions)
        self._runner = Runner(redis, cluster=_is_cluster(redis) if cluster is None else cluster)
        self._checked = False  # the partition count, on the first enqueue

    @property
    def keys(self) -> Keys:
        return self._keys

    def enqueue(
        self, payload: Payload, *, notify: bool = False, trace: dict[str, str] | None = None
    ) -> StreamEntryRef:
        return self.enqueue_many([payload], notify=notify, trace=trace)[0]

    def enqueue_many(
        self,
        payloads: Sequence[Payload],
        *,
        notify: bool = False,
        trace: dict[str, str] | None = None,
        track: bool = False,
    ) -> list[StreamEntryRef]:
        """`track` makes the jobs visible to readers in every process until applied (see
        `sluice.queue.pending`)."""
        q = self._settings.queue
        self._check_partitions()
        requests = planning.version_requests(self._keys, self._settings.limits, payloads)
        if requests:
            replies = self._runner.run(_reserve_calls(requests), what="reserve versions for cache-warm jobs")
            payloads = planning.with_versions(payloads, requests, _reserved(requests, replies))
        batches, count = planning.plan(
            self._keys, self._settings.limits, payloads, notify=notify, trace=trace, track=track
        )
        out: list[StreamEntryRef | None] = [None] * count
        for batch in batches:
            for call in planning.calls(self._keys, batch, q.max_backlog, q.dedupe_window):
                _too_many(q, call)
                ids = self._attempt(call)
                for slot, handle in zip(
                    call.slots, planning.handles(call.stream, ids, notify=notify), strict=True
                ):
                    out[slot] = handle
        return [h for h in out if h is not None]

    def requeue(self, envelope: JobEnvelope) -> StreamEntryRef:
        """Enqueue an existing job again, as it is (a retried dead letter keeps its id and origin),
        on the stream its target key routes to; same backlog bound and resend dedupe as enqueue."""
        q = self._settings.queue
        self._check_partitions()
        data = encode(envelope)
        limit = self._settings.limits.max_payload_bytes
        if len(data) > limit:
            raise PayloadTooLarge(
                f"encoded {envelope.kind} job (bytes)", len(data), limit, "SLUICE_LIMITS__MAX_PAYLOAD_BYTES"
            )
        stream = self._keys.stream_for(envelope.payload.kind, envelope.target_key())
        batch = planning.StreamBatch(stream, [data], [0], [envelope.id])
        (call,) = planning.calls(self._keys, batch, q.max_backlog, q.dedupe_window)
        return planning.handles(call.stream, self._attempt(call), notify=envelope.notify)[0]

    def _check_partitions(self) -> None:
        if not self._checked:
            check_partitions(self._runner.redis, self._keys)
            self._checked = True

    def _attempt(self, call: planning.ScriptCall) -> list[bytes]:
        attempts = _Attempts(self._settings.queue)
        while True:
            try:
                with translate_errors("enqueue"):
                    return self._run(call)
            except (QueueFull, RedisUnavailable) as exc:
                time.sleep(attempts.after(exc))
                call = call.resent()

    def _run(self, call: planning.ScriptCall) -> list[bytes]:
        q = self._settings.queue
        return _accepted(q, call, self._runner.run(_calls(q, call), what="enqueue"))


class AsyncProducer:
    """asyncio producer over `redis.asyncio`; same routing, limits, dedupe, durability and errors as `Producer`."""

    def __init__(self, redis: Any, settings: Settings, *, cluster: bool | None = None) -> None:
        self._settings = settings
        self._keys = Keys(settings.namespace, settings.queue.partitions)
        self._runner = AsyncRunner(redis, cluster=_is_cluster(redis) if cluster is None else cluster)
        self._checked = False

    async def enqueue_many(
        self,
        payloads: Sequence[Payload],
        *,
        notify: bool = False,
        trace: dict[str, str] | None = None,
        track: bool = False,
    ) -> list[StreamEntryRef]:
        q = self._settings.queue
        if not self._checked:
            await acheck_partitions(self._runner.redis, self._keys)
            self._checked = True
        requests = planning.version_requests(self._keys, self._settings.limits, payloads)
        if requests:
            calls = _reserve_calls(requests)
            replies = await self._runner.run(calls, what="reserve versions for cache-warm jobs")
            payloads = planning.with_versions(payloads, requests, _reserved(requests, replies))
        batches, count = planning.plan(
            self._keys, self._settings.limits, payloads, notify=notify, trace=trace, track=track
        )
        out: list[StreamEntryRef | None] = [None] * count
        for batch in batches:
            for call in planning.calls(self._keys, batch, q.max_backlog, q.dedupe_window):
                _too_many(q, call)
                ids = await self._attempt(call)
                for slot, handle in zip(
                    call.slots, planning.handles(call.stream, ids, notify=notify), strict=True
                ):
                    out[slot] = handle
        return [h for h in out if h is not None]

    async def _attempt(self, call: planning.ScriptCall) -> list[bytes]:
        attempts = _Attempts(self._settings.queue)
        while True:
            try:
                with translate_errors("enqueue"):
                    return await self._run(call)
            except (QueueFull, RedisUnavailable) as exc:
                await asyncio.sleep(attempts.after(exc))
                call = call.resent()

    async def _run(self, call: planning.ScriptCall) -> list[bytes]:
        q = self._settings.queue
        return _accepted(q, call, await self._runner.run(_calls(q, call), what="enqueue"))

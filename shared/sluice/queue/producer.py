"""Enqueueing jobs: the app-side write path (sync and asyncio shells over `plan` and `sending`).

An enqueue call is planned (limits, routing, encoding: `sluice.queue.plan`) into rounds of at
most one segment per partition stream, and each round is handed to the group committer
(`sluice.queue.commit`): concurrent calls share one enqueue.lua call per stream and one round
trip, and each caller gets its own handles or its own error. On a single server (or Sentinel)
the committer sends on a connection the producer keeps (`sluice.queue.wire`); on a Cluster,
through the vector runner (to the node that owns each stream, following redirections).

A send that fails in transit (timeout, dropped connection) is resent by each of its callers
with the same job ids, and enqueue.lua returns the first entry ids for jobs it already holds: a
job is never added twice. With `durability` set, the same connection then runs WAIT / WAITAOF,
so an accepted job is on a replica or fsynced to the AOF before enqueue returns. cache-warm jobs
first get their versions, reserved from the cache-fill streams of their keys
(`planning.version_requests`, one round trip), so within one call they count as enqueued before
its other jobs. The first enqueue checks the namespace's partition count (`sluice.queue.partitions`).

Idempotent XADD (Redis >= 8.6 ``IDMP``) would let a first send skip the dedupe bucket; the
servers this is tested on (8.2, 7.0) lack it, so the bucket is always written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from sluice import scripts
from sluice.errors import ConfigError, PayloadTooLarge, QueueFull, RedisUnavailable
from sluice.jobs.codec import encode
from sluice.jobs.models import JobEnvelope, Payload
from sluice.keys import Keys
from sluice.queue import plan as planning
from sluice.queue import sending
from sluice.queue.commit import AsyncCommitter, Committer, Reply
from sluice.queue.partitions import acheck_partitions, check_partitions
from sluice.queue.wire import AsyncHeldConnection, HeldConnection, holdable
from sluice.settings import QueueSettings, Settings
from sluice.stores import versions
from sluice.transport.runner import AsyncRunner, Call, Runner, is_cluster
from sluice.transport.translate import translate_errors
from sluice.types import StreamEntryRef

Ids = list[bytes | str]


class _Attempts:
    """When to try a segment again: room in a full stream (policy=wait), or a resend after
    a failure in transit (safe: deduplicated by job id)."""

    def __init__(self, queue: QueueSettings) -> None:
        self.queue = queue
        self.deadline = time.monotonic() + queue.backlog_wait
        self.full_delay = 0.005
        self.resends = 0

    def after(self, exc: BaseException) -> float:
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


class _Progress:
    """Which segments of one round still need a send, and what the accepted ones got."""

    def __init__(self, segments: Sequence[planning.Segment]) -> None:
        self.segments = list(segments)
        self.ids: list[Ids] = [[] for _ in segments]
        self.todo = list(range(len(segments)))

    def sending(self) -> list[planning.Segment]:
        return [self.segments[i] for i in self.todo]

    def take(self, replies: Sequence[Reply]) -> BaseException | None:
        """Keep the accepted segments' ids; the first refusal (those segments go again, resent)."""
        error: BaseException | None = None
        left = []
        for i, reply in zip(self.todo, replies, strict=True):
            if isinstance(reply, BaseException):
                error = error or reply
                left.append(i)
                self.segments[i] = self.segments[i].resent()
            else:
                self.ids[i] = reply
        self.todo = left
        return error

    def resend_all(self) -> None:
        for i in self.todo:
            self.segments[i] = self.segments[i].resent()


def _too_many(queue: QueueSettings, segment: planning.Segment) -> None:
    if len(segment.jobs) > queue.max_backlog:
        raise ConfigError(
            f"{len(segment.jobs)} jobs for one stream exceed SLUICE_QUEUE__MAX_BACKLOG="
            f"{queue.max_backlog}; enqueue in smaller batches"
        )


def _rounds(queue: QueueSettings, batches: Sequence[planning.StreamBatch]) -> list[list[planning.Segment]]:
    rounds = planning.rounds(batches)
    for segments in rounds:
        for segment in segments:
            _too_many(queue, segment)
    return rounds


def _place(out: list[StreamEntryRef | None], progress: _Progress, notify: bool) -> None:
    for segment, ids in zip(progress.segments, progress.ids, strict=True):
        for slot, handle in zip(
            segment.slots, planning.handles(segment.stream, ids, notify=notify), strict=True
        ):
            out[slot] = handle


def _requeued(settings: Settings, keys: Keys, envelope: JobEnvelope) -> planning.Segment:
    data = encode(envelope)
    limit = settings.limits.max_payload_bytes
    if len(data) > limit:
        raise PayloadTooLarge(
            f"encoded {envelope.kind} job (bytes)", len(data), limit, "SLUICE_LIMITS__MAX_PAYLOAD_BYTES"
        )
    stream = keys.stream_for(envelope.payload.kind, envelope.target_key())
    return planning.Segment(stream, [envelope.id], [data], [0])


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


def _held_commands(queue: QueueSettings, calls: Sequence[planning.ScriptCall]) -> list[tuple[Any, ...]]:
    return [sending.evalsha(c) for c in calls] + sending.durability_commands(queue)


def _noscript(replies: Sequence[Any], n: int) -> list[int]:
    return [i for i in range(n) if isinstance(replies[i], NoScriptError)]


_LOAD = ("SCRIPT", "LOAD", scripts.source(sending.SCRIPT))


def _loaded(replies: Sequence[Any]) -> None:
    if isinstance(replies[0], ResponseError):
        raise replies[0]  # e.g. NOPERM: the user may not load scripts


def _merge(replies: list[Any], missing: Sequence[int], again: Sequence[Any], n: int) -> list[Any]:
    """Replies after resending the calls at `missing` (and the durability waits) once the script
    was loaded."""
    for i, reply in zip(missing, again, strict=False):
        replies[i] = reply
    return replies[:n] + list(again[len(missing) :])


class Producer:
    """Sync producer, safe to share between threads (their enqueues are group-committed)."""

    def __init__(self, redis: Any, settings: Settings, *, cluster: bool | None = None) -> None:
        self._settings = settings
        self._keys = Keys(settings.namespace, settings.queue.partitions)
        cluster = is_cluster(redis) if cluster is None else cluster
        self._runner = Runner(redis, cluster=cluster)
        self._held = None if cluster or not holdable(redis) else HeldConnection(redis)
        self._committer = Committer(self._send)
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
        self._check_partitions()
        if len(payloads) == 1 and payloads[0].kind != "cache-warm":  # the request path
            segment = planning.plan_one(
                self._keys, self._settings.limits, payloads[0], notify=notify, trace=trace, track=track
            )
            _too_many(self._settings.queue, segment)
            return planning.handles(segment.stream, self._commit([segment]).ids[0], notify=notify)
        requests = planning.version_requests(self._keys, self._settings.limits, payloads)
        if requests:
            replies = self._runner.run(_reserve_calls(requests), what="reserve versions for cache-warm jobs")
            payloads = planning.with_versions(payloads, requests, _reserved(requests, replies))
        batches, count = planning.plan(
            self._keys, self._settings.limits, payloads, notify=notify, trace=trace, track=track
        )
        out: list[StreamEntryRef | None] = [None] * count
        for segments in _rounds(self._settings.queue, batches):
            _place(out, self._commit(segments), notify)
        return [h for h in out if h is not None]

    def requeue(self, envelope: JobEnvelope) -> StreamEntryRef:
        """Enqueue an existing job again, as it is (a retried dead letter keeps its id and origin),
        on the stream its target key routes to; same backlog bound and resend dedupe as enqueue."""
        self._check_partitions()
        progress = self._commit([_requeued(self._settings, self._keys, envelope)])
        stream = progress.segments[0].stream
        return planning.handles(stream, progress.ids[0], notify=envelope.notify)[0]

    def close(self) -> None:
        """Give the producer's connection back to the pool."""
        if self._held is not None:
            self._held.close()

    def _check_partitions(self) -> None:
        if not self._checked:
            check_partitions(self._runner.redis, self._keys)
            self._checked = True

    def _commit(self, segments: Sequence[planning.Segment]) -> _Progress:
        attempts: _Attempts | None = None  # made on the first failure: a first send needs none
        progress = _Progress(segments)
        while progress.todo:
            try:
                with translate_errors("enqueue"):
                    replies = self._committer.submit(progress.sending())
            except RedisUnavailable as exc:
                attempts = attempts or _Attempts(self._settings.queue)
                time.sleep(attempts.after(exc))
                progress.resend_all()
                continue
            error = progress.take(replies)
            if error is not None:
                attempts = attempts or _Attempts(self._settings.queue)
                time.sleep(attempts.after(error))
        return progress

    def _send(self, segments: list[planning.Segment]) -> list[Reply]:
        """One group-commit send (the committer's leader runs it)."""
        q = self._settings.queue
        calls = sending.script_calls(self._keys, q, segments)
        if self._held is None:
            replies = self._runner.run(sending.runner_calls(q, calls), what="enqueue")
            waits_each = True
        else:
            commands = _held_commands(q, calls)
            replies = self._held.execute(commands)
            missing = _noscript(replies, len(calls))
            if missing:  # the server lost its scripts (restart, failover, SCRIPT FLUSH)
                _loaded(self._held.execute([_LOAD]))
                again = self._held.execute([commands[i] for i in missing] + commands[len(calls) :])
                replies = _merge(replies, missing, again, len(calls))
            waits_each = False
        return sending.in_order(q, calls, replies, segments, waits_each=waits_each)


class AsyncProducer:
    """asyncio producer over `redis.asyncio` (one event loop's); same routing, limits, dedupe,
    durability, group commit and errors as `Producer`."""

    def __init__(self, redis: Any, settings: Settings, *, cluster: bool | None = None) -> None:
        self._settings = settings
        self._keys = Keys(settings.namespace, settings.queue.partitions)
        cluster = is_cluster(redis) if cluster is None else cluster
        self._runner = AsyncRunner(redis, cluster=cluster)
        self._held = None if cluster or not holdable(redis) else AsyncHeldConnection(redis)
        self._committer = AsyncCommitter(self._send)
        self._checked = False

    async def enqueue_many(
        self,
        payloads: Sequence[Payload],
        *,
        notify: bool = False,
        trace: dict[str, str] | None = None,
        track: bool = False,
    ) -> list[StreamEntryRef]:
        if not self._checked:
            await acheck_partitions(self._runner.redis, self._keys)
            self._checked = True
        if len(payloads) == 1 and payloads[0].kind != "cache-warm":
            segment = planning.plan_one(
                self._keys, self._settings.limits, payloads[0], notify=notify, trace=trace, track=track
            )
            _too_many(self._settings.queue, segment)
            return planning.handles(segment.stream, (await self._commit([segment])).ids[0], notify=notify)
        requests = planning.version_requests(self._keys, self._settings.limits, payloads)
        if requests:
            calls = _reserve_calls(requests)
            replies = await self._runner.run(calls, what="reserve versions for cache-warm jobs")
            payloads = planning.with_versions(payloads, requests, _reserved(requests, replies))
        batches, count = planning.plan(
            self._keys, self._settings.limits, payloads, notify=notify, trace=trace, track=track
        )
        out: list[StreamEntryRef | None] = [None] * count
        for segments in _rounds(self._settings.queue, batches):
            _place(out, await self._commit(segments), notify)
        return [h for h in out if h is not None]

    async def aclose(self) -> None:
        if self._held is not None:
            await self._held.close()

    async def _commit(self, segments: Sequence[planning.Segment]) -> _Progress:
        attempts: _Attempts | None = None
        progress = _Progress(segments)
        while progress.todo:
            try:
                async with translate_errors("enqueue"):
                    replies = await self._committer.submit(progress.sending())
            except RedisUnavailable as exc:
                attempts = attempts or _Attempts(self._settings.queue)
                await asyncio.sleep(attempts.after(exc))
                progress.resend_all()
                continue
            error = progress.take(replies)
            if error is not None:
                attempts = attempts or _Attempts(self._settings.queue)
                await asyncio.sleep(attempts.after(error))
        return progress

    async def _send(self, segments: list[planning.Segment]) -> list[Reply]:
        q = self._settings.queue
        calls = sending.script_calls(self._keys, q, segments)
        if self._held is None:
            replies = await self._runner.run(sending.runner_calls(q, calls), what="enqueue")
            waits_each = True
        else:
            commands = _held_commands(q, calls)
            replies = await self._held.execute(commands)
            missing = _noscript(replies, len(calls))
            if missing:
                _loaded(await self._held.execute([_LOAD]))
                again = await self._held.execute([commands[i] for i in missing] + commands[len(calls) :])
                replies = _merge(replies, missing, again, len(calls))
            waits_each = False
        return sending.in_order(q, calls, replies, segments, waits_each=waits_each)

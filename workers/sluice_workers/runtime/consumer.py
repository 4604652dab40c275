"""The consumer loop: read a batch, hand it to its handler, acknowledge after the writes.

Every entry leaves through one of three doors, all in `_finish`: acknowledged as applied,
scheduled for retry (it stays pending and becomes claimable after a backoff), or copied to the
dead-letter stream and acknowledged. Nothing else acknowledges, so nothing is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from sluice.errors import PermanentJobError, RedisFull, RedisUnavailable, SluiceError
from sluice.jobs.codec import Job
from sluice.types import EntryId, KeyT
from sluice_workers.handlers.base import Handler
from sluice_workers.runtime.leases import Leases
from sluice_workers.runtime.metrics import Metrics
from sluice_workers.runtime.outcomes import describe, judge
from sluice_workers.runtime.transport import Ack, Delivery, StreamTransport

log = logging.getLogger(__name__)

CLUSTER_BLOCK_MS = 50


@dataclass
class Summary:
    """What one consumer did; logged on exit."""

    applied: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    reclaimed: int = 0
    errors: int = 0

    def line(self) -> str:
        return (
            f"applied={dict(self.applied)} retried={dict(self.retried)} dead={dict(self.dead)} "
            f"reclaimed={self.reclaimed} transport_errors={self.errors}"
        )


class Consumer:
    """One consumer in the group; a worker process runs `concurrency` of them in threads."""

    def __init__(
        self,
        transport: StreamTransport,
        handlers: Mapping[str, Handler],
        streams: Sequence[KeyT],
        name: str,
        stop: threading.Event,
        leases: Leases,
        metrics: Metrics,
        *,
        cluster: bool = False,
    ) -> None:
        self.transport = transport
        self.handlers = handlers
        self.streams = list(streams)
        self.name = name
        self.stop = stop
        self.leases = leases
        self.metrics = metrics
        self.cluster = cluster
        self.settings = transport.settings.worker
        self.summary = Summary()
        self._rotation = 0
        self._applied: Counter[str] = Counter()
        self._dead_now: Counter[str] = Counter()

    def run(self) -> Summary:
        next_reclaim = 0.0
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    if time.monotonic() >= next_reclaim:
                        self._reclaim()
                        next_reclaim = time.monotonic() + self.settings.reclaim_interval
                    delivery = self._read()
                    if len(delivery):
                        self.process(delivery)
                    failures = 0
                except (RedisUnavailable, RedisFull) as e:  # entries in hand stay pending
                    failures += 1
                    self.summary.errors += 1
                    delay = min(5.0, 0.1 * 2 ** min(failures, 6))
                    what = "full" if isinstance(e, RedisFull) else "unavailable"
                    log.warning("%s: Redis %s (%s); retrying in %.1fs", self.name, what, e, delay)
                    self.stop.wait(delay)
                except SluiceError as e:
                    # e.g. NOGROUP after the server lost its data: recreate the groups and go on.
                    failures += 1
                    self.summary.errors += 1
                    log.exception("%s: %s; recreating consumer groups and continuing", self.name, e)
                    self.stop.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))
                    try:
                        self.transport.ensure_groups(self.streams)
                    except SluiceError as again:
                        log.warning("%s: could not recreate groups yet: %s", self.name, again)
                except Exception:
                    # A bug, not bad input (handlers' errors are sorted in _handle). Keep consuming:
                    # entries in hand stay pending and are reclaimed.
                    failures += 1
                    self.summary.errors += 1
                    log.exception("%s: unexpected error in the consumer loop; continuing", self.name)
                    self.stop.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))
        finally:
            log.info("consumer %s stopped: %s", self.name, self.summary.line())
        return self.summary

    # --- reading -----------------------------------------------------------------------------
    def _read(self) -> Delivery:
        count, block = self.settings.batch_size, self.settings.block_ms
        if not self.cluster or len(self.streams) == 1:
            return self.transport.read(self.name, self.streams, count, block)
        # A Cluster refuses one XREADGROUP over several slots: sweep without blocking, then block
        # briefly on one stream in rotation.
        for stream in self.streams:
            delivery = self.transport.read(self.name, [stream], count, None)
            if len(delivery):
                return delivery
        self._rotation = (self._rotation + 1) % len(self.streams)
        return self.transport.read(
            self.name, [self.streams[self._rotation]], count, min(block, CLUSTER_BLOCK_MS)
        )

    def _reclaim(self) -> None:
        idle_ms = int(self.settings.visibility_timeout * 1000)
        for stream in self.streams:
            delivery, _ = self.transport.reclaim(self.name, stream, idle_ms, self.settings.batch_size)
            if len(delivery):
                self.summary.reclaimed += len(delivery)
                log.info("%s: reclaimed %d idle entries from %s", self.name, len(delivery), stream)
                self.process(delivery)

    # --- processing --------------------------------------------------------------------------
    def process(self, delivery: Delivery) -> None:
        self._applied = Counter()
        self._dead_now = Counter()
        acks: list[Ack] = []
        for stream, error, raw in delivery.undecodable:
            self.transport.dead_letter(stream, error.entry_id, "unknown", describe(error), 1, raw)
            acks.append(Ack(stream, EntryId(error.entry_id), dead_reason=f"undecodable: {error.reason}"))
            self._count_dead("unknown")
        by_kind: dict[str, list[Job]] = defaultdict(list)
        for job in delivery.jobs:
            if job.deliveries > self.settings.max_deliveries:
                reason = (
                    f"poison: delivered {job.deliveries} times (max_deliveries="
                    f"{self.settings.max_deliveries}); the worker handling it probably crashed"
                )
                acks.append(self._dead(job, reason))
            else:
                by_kind[job.envelope.kind].append(job)
        for kind, jobs in by_kind.items():
            acks.extend(self._handle(kind, jobs))
        if acks:
            self.transport.ack(acks)
            self.transport.record(self._applied, self._dead_now)

    def _handle(self, kind: str, jobs: list[Job]) -> list[Ack]:
        started = time.perf_counter()
        handler = self.handlers.get(kind)
        failures: dict[tuple[str, EntryId], BaseException]
        by_stream: dict[str, list[str]] = defaultdict(list)
        for j in jobs:
            by_stream[j.stream].append(j.entry_id)
        with ExitStack() as held:
            for stream, ids in by_stream.items():
                held.enter_context(self.leases.hold(self.name, stream, ids))
            if handler is None:
                err = PermanentJobError(f"this worker has no handler for kind {kind!r}")
                failures = {(j.stream, j.entry_id): err for j in jobs}
            else:
                failures = {}
                for part in _unique_ids(jobs):
                    failures.update(_by_stream(part, self._run_handler(handler, part)))
        acks: list[Ack] = []
        for job in jobs:
            exc = failures.get((job.stream, job.entry_id))
            if exc is None:
                acks.append(Ack(job.stream, job.entry_id, notify=job.envelope.notify))
                self.summary.applied[kind] += 1
                self._applied[kind] += 1
                self.metrics.processed.labels(kind).inc()
                continue
            verdict = judge(exc, job.deliveries, self.settings)
            if verdict.retry:
                log.warning(
                    "%s %s failed (retry in %.2fs): %s", kind, job.entry_id, verdict.delay, verdict.reason
                )
                self.transport.delay(self.name, job.stream, job.entry_id, verdict.delay)
                self.summary.retried[kind] += 1
                self.metrics.retried.labels(kind).inc()
            else:
                acks.append(self._dead(job, verdict.reason))
        self.metrics.batch_seconds.labels(kind).observe(time.perf_counter() - started)
        return acks

    def _run_handler(self, handler: Handler, jobs: list[Job]) -> dict[EntryId, BaseException]:
        try:
            return dict(handler.handle(jobs))
        except (RedisUnavailable, RedisFull):
            raise  # the loop backs off; entries stay pending and are reclaimed
        except Exception as batch_error:
            if len(jobs) == 1:
                return {jobs[0].entry_id: batch_error}
        # The batch failed as a whole: run the jobs one by one to find the ones at fault.
        failures: dict[EntryId, BaseException] = {}
        for job in jobs:
            try:
                failures.update(handler.handle([job]))
            except (RedisUnavailable, RedisFull):
                raise
            except Exception as e:
                failures[job.entry_id] = e
        return failures

    def _dead(self, job: Job, reason: str) -> Ack:
        kind = job.envelope.kind
        log.error("%s %s dead-lettered: %s", kind, job.entry_id, reason)
        raw = {b"job": job.envelope.model_dump_json(exclude_none=True).encode()}
        self.transport.dead_letter(job.stream, job.entry_id, kind, reason, job.deliveries, raw)
        self._count_dead(kind)
        return Ack(job.stream, job.entry_id, notify=job.envelope.notify, dead_reason=reason)

    def _count_dead(self, kind: str) -> None:
        self.summary.dead[kind] += 1
        self._dead_now[kind] += 1
        self.metrics.dead.labels(kind).inc()


def _unique_ids(jobs: list[Job]) -> list[list[Job]]:
    """Split a batch so no handler call sees one entry id twice (ids are unique per stream only,
    and handlers report failures by entry id)."""
    parts: list[tuple[set[str], list[Job]]] = []
    for job in jobs:
        for ids, part in parts:
            if job.entry_id not in ids:
                ids.add(job.entry_id)
                part.append(job)
                break
        else:
            parts.append(({job.entry_id}, [job]))
    return [part for _, part in parts]


def _by_stream(
    jobs: list[Job], failures: Mapping[EntryId, BaseException]
) -> dict[tuple[str, EntryId], BaseException]:
    return {(j.stream, j.entry_id): failures[j.entry_id] for j in jobs if j.entry_id in failures}

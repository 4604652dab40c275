"""The consumer loop: read a batch, hand it to its handler, acknowledge after the writes.

Every entry leaves through one of three doors, all in `_finish`: acknowledged as applied,
released for retry (it stays pending and becomes claimable after a backoff), or dead-lettered and
acknowledged in the same script. Nothing else acknowledges, so nothing is lost. Each handler
call's entries are finished as soon as that call returns, so a later failure in the same batch
cannot strand work already written.

An attempt that fails because Redis is unreachable, full or reconfiguring is not the job's fault:
its entries are released with their delivery given back, so a long outage never makes healthy
jobs look like poison. A timeout alone proves nothing (a job can cause it), so after a timeout
the delivery is given back only if Redis then also fails to answer a PING.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from sluice.connection.secrecy import scrub
from sluice.errors import PermanentJobError, RedisFull, RedisTimeout, RedisUnavailable, SluiceError
from sluice.jobs.codec import Job
from sluice.types import EntryId, KeyT
from sluice_workers.handlers.base import Handler
from sluice_workers.runtime.leases import Leases
from sluice_workers.runtime.metrics import Metrics
from sluice_workers.runtime.outcomes import describe, judge
from sluice_workers.runtime.transport import Ack, Delivery, Release, StreamTransport

log = logging.getLogger(__name__)

CLUSTER_BLOCK_MS = 50
RECLAIM_SCANS = 20  # XAUTOCLAIM calls per stream and round at most (each scans 10 x count entries)
GIVE_BACK_PAUSE = 0.2  # seconds before entries handed back after an outage are claimable


@dataclass
class _GiveBack:
    """Entries in hand when the transport failed, to be released once Redis answers again."""

    jobs: list[Job]
    confirmed: bool  # the failure was Redis's (not a timeout that a job could have caused)


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
        reclaimer: bool = True,
    ) -> None:
        self.transport = transport
        self.handlers = handlers
        self.streams = list(streams)
        self.name = name
        self.stop = stop
        self.leases = leases
        self.metrics = metrics
        self.cluster = cluster
        self.reclaimer = reclaimer  # one consumer per process reclaims (process.py picks it)
        self.settings = transport.settings.worker
        self._secrets = transport.settings.secret_values()  # scrubbed from every failure reason
        self.summary = Summary()
        self._rotation = 0
        self._active = len(self.streams)  # streams that had entries in the last cluster sweep
        self._cursors: dict[str, str] = {}
        self._applied: Counter[str] = Counter()
        self._dead_now: Counter[str] = Counter()
        self._in_hand: dict[tuple[str, str], Job] = {}
        self._give_back: _GiveBack | None = None

    def run(self) -> Summary:
        next_reclaim = 0.0
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    if self._give_back is not None:
                        self._return_in_hand()
                    if self.reclaimer and time.monotonic() >= next_reclaim:
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
        # A Cluster refuses one XREADGROUP over several slots: read every stream in one pipeline
        # (a round trip per node), starting at a rotating stream and sharing the batch among the
        # streams that had work, so a flood on one stream never starves the others.
        self._rotation = (self._rotation + 1) % len(self.streams)
        order = self.streams[self._rotation :] + self.streams[: self._rotation]
        share = max(1, -(-count // max(1, self._active)))
        delivery = self.transport.sweep(self.name, [(s, share) for s in order])
        if len(delivery):
            self._active = len({j.stream for j in delivery.jobs} | {u[0] for u in delivery.undecodable})
            return delivery
        self._active = len(self.streams)
        return self.transport.read(self.name, [order[0]], count, min(block, CLUSTER_BLOCK_MS))

    def _reclaim(self) -> None:
        """Claim entries idle past the visibility timeout, going on where the last round stopped
        (a pending list deep in busy entries is scanned across rounds, never only its head)."""
        idle_ms = int(self.settings.visibility_timeout * 1000)
        for stream in self.streams:
            cursor = self._cursors.get(stream, "0-0")
            for _ in range(RECLAIM_SCANS):
                delivery, cursor = self.transport.reclaim(
                    self.name, stream, idle_ms, self.settings.batch_size, cursor
                )
                self._cursors[stream] = cursor
                if len(delivery):
                    self.summary.reclaimed += len(delivery)
                    log.info("%s: reclaimed %d idle entries from %s", self.name, len(delivery), stream)
                    self.process(delivery)
                    break
                if cursor == "0-0":
                    break

    def _return_in_hand(self) -> None:
        """After a transport failure: release the entries that were in hand, giving their
        delivery back when the failure was Redis's (see the module docstring)."""
        pending = self._give_back
        assert pending is not None
        if not pending.confirmed:
            if not self.transport.answers():  # Redis is down: the timeout was not the job's doing
                pending.confirmed = True
                raise RedisUnavailable("Redis does not answer a PING after a timeout")
            self._give_back = None  # Redis answers at once: the timeout may be the job's; count it
            return
        by_stream: dict[str, list[Release]] = defaultdict(list)
        for job in pending.jobs:
            by_stream[job.stream].append(Release(job.entry_id, GIVE_BACK_PAUSE, job.deliveries, True))
        for stream, items in by_stream.items():
            self.transport.release(self.name, stream, items)
        log.info("%s: handed back %d entries after a transport failure", self.name, len(pending.jobs))
        self._give_back = None

    # --- processing --------------------------------------------------------------------------
    def process(self, delivery: Delivery) -> None:
        self._applied = Counter()
        self._dead_now = Counter()
        self._in_hand = {(j.stream, j.entry_id): j for j in delivery.jobs}
        try:
            first: list[Ack] = []
            for stream, error, _raw in delivery.undecodable:
                reason = scrub(f"undecodable: {describe(error)}", self._secrets)
                log.error("entry %s of %s dead-lettered: %s", error.entry_id, stream, reason)
                first.append(Ack(stream, EntryId(error.entry_id), dead_reason=reason, kind="unknown"))
                self._count_dead("unknown")
            by_kind: dict[str, list[Job]] = defaultdict(list)
            for job in delivery.jobs:
                if job.deliveries > self.settings.max_deliveries:
                    reason = (
                        f"poison: delivered {job.deliveries} times (max_deliveries="
                        f"{self.settings.max_deliveries}); the worker handling it probably crashed"
                    )
                    first.append(self._dead(job, reason))
                else:
                    by_kind[job.envelope.kind].append(job)
            self._finish(first, {})
            for kind, jobs in by_kind.items():
                self._handle(kind, jobs)
        except (RedisUnavailable, RedisFull) as e:
            if self._in_hand:
                confirmed = not isinstance(e, RedisTimeout)
                self._give_back = _GiveBack(list(self._in_hand.values()), confirmed)
            raise
        finally:
            self._in_hand = {}
            if self._applied or self._dead_now:
                try:
                    self.transport.record(self._applied, self._dead_now)
                except SluiceError as e:  # statistics only; the entries are finished
                    log.warning("%s: could not record throughput: %s", self.name, e)

    def _finish(self, acks: list[Ack], releases: dict[str, list[Release]]) -> None:
        """Acknowledge (and dead-letter) `acks`, then release the retries; entries leave the
        in-hand set as their door closes, so a failure here gives back only what is still held."""
        if acks:
            self.transport.ack(acks)
            for a in acks:
                self._in_hand.pop((a.stream, a.entry_id), None)
        for stream, items in releases.items():
            for item in items:  # a retry counts as a delivery whatever happens to the release
                self._in_hand.pop((stream, item.entry_id), None)
            self.transport.release(self.name, stream, items)

    def _handle(self, kind: str, jobs: list[Job]) -> None:
        started = time.perf_counter()
        handler = self.handlers.get(kind)
        by_stream: dict[str, list[str]] = defaultdict(list)
        for j in jobs:
            by_stream[j.stream].append(j.entry_id)
        with ExitStack() as held:
            for stream, ids in by_stream.items():
                held.enter_context(self.leases.hold(self.name, stream, ids))
            if handler is None:
                err = PermanentJobError(f"this worker has no handler for kind {kind!r}")
                self._settle(kind, jobs, {(j.stream, j.entry_id): err for j in jobs})
            else:
                for part in _unique_ids(jobs):
                    self._settle(kind, part, _by_stream(part, self._run_handler(handler, part)))
        self.metrics.batch_seconds.labels(kind).observe(time.perf_counter() - started)

    def _settle(
        self, kind: str, jobs: list[Job], failures: Mapping[tuple[str, EntryId], BaseException]
    ) -> None:
        """Sort one handler call's jobs through the three doors and finish them at once."""
        acks: list[Ack] = []
        releases: dict[str, list[Release]] = defaultdict(list)
        for job in jobs:
            exc = failures.get((job.stream, job.entry_id))
            if exc is None:
                acks.append(Ack(job.stream, job.entry_id, notify=job.envelope.notify))
                self.summary.applied[kind] += 1
                self._applied[kind] += 1
                self.metrics.processed.labels(kind).inc()
                continue
            verdict = judge(exc, job.deliveries, self.settings, self._secrets)
            if verdict.retry:
                log.warning(
                    "%s %s failed (retry in %.2fs): %s", kind, job.entry_id, verdict.delay, verdict.reason
                )
                releases[job.stream].append(Release(job.entry_id, verdict.delay))
                self.summary.retried[kind] += 1
                self.metrics.retried.labels(kind).inc()
            else:
                acks.append(self._dead(job, verdict.reason))
        self._finish(acks, releases)

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
        self._count_dead(kind)
        return Ack(
            job.stream,
            job.entry_id,
            notify=job.envelope.notify,
            dead_reason=reason,
            kind=kind,
            attempts=job.deliveries,
            pending=self.transport.keys.pending(job.stream, job.envelope.target_key()),
        )

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

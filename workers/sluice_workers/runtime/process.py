"""One worker process: consumer threads, lease renewal, heartbeat, signals.

Shutdown is warm, then cold: the first SIGTERM/SIGINT lets every consumer finish the batch in
hand and stop reading; a second one exits at once (entries in hand are reclaimed by others).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from sluice.connection.capabilities import Capabilities, probe
from sluice.connection.factory import connect
from sluice.errors import ConfigError, RedisFull, RedisUnavailable, SluiceError
from sluice.keys import Keys
from sluice.queue.partitions import check_partitions
from sluice.settings import Settings
from sluice.types import JOB_KINDS, JobKind, KeyT
from sluice_workers.handlers.base import Handler
from sluice_workers.handlers.registry import build_handlers
from sluice_workers.runtime.consumer import Consumer, Summary
from sluice_workers.runtime.governor import Governor
from sluice_workers.runtime.health import Heartbeat, worker_id
from sluice_workers.runtime.leases import Leases
from sluice_workers.runtime.metrics import Metrics
from sluice_workers.runtime.transport import StreamTransport

log = logging.getLogger(__name__)


@dataclass
class ProcessSummary:
    consumers: list[Summary]

    def line(self) -> str:
        total = Summary()
        for s in self.consumers:
            total.applied.update(s.applied)
            total.retried.update(s.retried)
            total.dead.update(s.dead)
            total.reclaimed += s.reclaimed
            total.errors += s.errors
        return total.line()


def streams_for(settings: Settings) -> list[KeyT]:
    keys = Keys(settings.namespace, settings.queue.partitions)
    kinds: list[JobKind] = [k for k in JOB_KINDS if k in settings.worker.kinds]
    return [s for kind in kinds for s in keys.streams(kind)]


def install_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning(
                "second %s: exiting now; entries in hand will be reclaimed", signal.Signals(signum).name
            )
            os._exit(1)
        log.info("%s: finishing the batch in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _start(
    redis: Any, settings: Settings, streams: list[KeyT], stop: threading.Event
) -> tuple[Capabilities, StreamTransport] | None:
    """Probe and create the groups, waiting (with backoff) for a Redis that is not up yet."""
    delay = 0.2
    while not stop.is_set():
        try:
            caps = probe(redis)
            check_partitions(redis, Keys(settings.namespace, settings.queue.partitions))
            transport = StreamTransport(redis, settings, caps)
            transport.ensure_groups(streams)
            _warn_other_groups(transport, streams)
            return caps, transport
        except (RedisUnavailable, RedisFull) as e:  # full: XGROUP CREATE needs memory
            log.warning("waiting for Redis (%s); next try in %.1fs", e, delay)
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return None


def _warn_other_groups(transport: StreamTransport, streams: list[KeyT]) -> None:
    others = sorted({g for stream in streams[:1] for g in transport.other_groups(stream)})
    if others:
        log.warning(
            "the job streams have other consumer groups %s besides %r: each group gets every job, and "
            "an entry is deleted only when all have acknowledged it; destroy a group no worker uses "
            "any more (XGROUP DESTROY <stream> <group>) or its backlog keeps growing",
            others,
            transport.group,
        )


def validate(settings: Settings) -> None:
    """The settings errors a worker refuses to start with (ConfigError); no round trip."""
    if settings.worker.block_ms / 1000 >= settings.redis.socket_timeout:
        raise ConfigError(
            f"SLUICE_WORKER__BLOCK_MS={settings.worker.block_ms} must be shorter than "
            f"SLUICE_REDIS__SOCKET_TIMEOUT={settings.redis.socket_timeout}s, or every blocking read times out"
        )
    unknown = sorted(set(settings.worker.kinds) - set(JOB_KINDS))
    if unknown:
        raise ConfigError(f"unknown job kinds {unknown}; choose from {list(JOB_KINDS)}")


def run_process(
    settings: Settings,
    index: int = 0,
    stop: threading.Event | None = None,
    *,
    handlers: Mapping[str, Handler] | None = None,
) -> ProcessSummary:
    """Run consumers until `stop` is set (by a signal when called from the CLI).

    `handlers` replaces the ones built from settings (embedding a worker in another program).
    """
    stop = stop or threading.Event()
    validate(settings)
    redis = connect(settings.redis)
    streams = streams_for(settings)
    started = _start(redis, settings, streams, stop)
    if started is None:
        redis.close()
        return ProcessSummary([])
    caps, transport = started
    wid = worker_id(index)
    governor = (
        Governor(redis, transport.keys, settings.governor, wid, cluster=caps.cluster)
        if settings.governor.enabled
        else None
    )
    if handlers is None:
        handlers = build_handlers(redis, settings, cluster=caps.cluster, pacer=governor)
    metrics = Metrics()
    if settings.worker.metrics_port is not None:
        metrics.serve(settings.worker.metrics_port + index)
    leases = Leases(transport, interval=settings.worker.visibility_timeout / 3)

    def sample_streams() -> None:
        for stream in streams:
            lag, pending = transport.group_state(stream)
            if lag is not None:
                metrics.lag.labels(stream).set(lag)
            metrics.pending.labels(stream).set(pending)

    heartbeat = Heartbeat(
        redis,
        transport.keys,
        wid,
        settings.worker.heartbeat_interval,
        {
            "kinds": settings.worker.kinds,
            "metrics_port": None
            if settings.worker.metrics_port is None
            else settings.worker.metrics_port + index,
        },
        on_beat=sample_streams if settings.worker.metrics_port is not None else None,
    )
    consumers = [
        Consumer(
            transport,
            handlers,
            streams,
            f"{wid}-c{i}",
            stop,
            leases,
            metrics,
            cluster=caps.cluster,
            reclaimer=i == 0,  # one reclaimer per process: the others only read
        )
        for i in range(settings.worker.concurrency)
    ]
    threads = [threading.Thread(target=c.run, name=c.name, daemon=True) for c in consumers]
    log.info(
        "worker %s: %d consumer(s) on %d stream(s), redis %s",
        wid,
        len(consumers),
        len(streams),
        ".".join(map(str, caps.version)),
    )
    leases.start()
    heartbeat.start()
    try:
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
        leases.stop()
        heartbeat.stop()
        summary = ProcessSummary([c.summary for c in consumers])
        if governor is not None:
            _forget(governor, redis, wid)
        log.info("worker %s stopped: %s", wid, summary.line())
        redis.close()
    return summary


def _forget(governor: Governor, redis: Any, wid: str) -> None:
    if governor.waits:
        log.info(
            "worker %s: the governor paused writes %d times (%.1fs)", wid, governor.waits, governor.waited_s
        )
    try:
        governor.forget(redis)
    except SluiceError as e:  # bookkeeping only
        log.warning("worker %s: could not drop its governor counter: %s", wid, e)

"""What `sluice status`, `client.status()` and the dashboard show: one source of truth.

Bounded reads only: per stream XLEN / XINFO GROUPS / XINFO CONSUMERS, the workers registry and
a few per-minute counters. Never KEYS, never an unbounded scan.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from sluice.keys import Keys
from sluice.ops import governor
from sluice.ops.governor import GovernorStatus
from sluice.ops.workers import live_workers
from sluice.transport.translate import translate_errors
from sluice.types import JOB_KINDS

THROUGHPUT_MINUTES = 5


@dataclass(frozen=True, slots=True)
class ConsumerStatus:
    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True, slots=True)
class StreamStatus:
    stream: str
    kind: str
    partition: int
    length: int
    lag: int | None
    pending: int
    last_delivered: str | None
    consumers: list[ConsumerStatus]


@dataclass(frozen=True, slots=True)
class Status:
    namespace: str
    at: float
    streams: list[StreamStatus]
    dead_letters: int
    workers: list[dict[str, Any]]
    throughput: dict[str, list[int]] = field(default_factory=dict)  # kind -> applied per minute, oldest first
    governor: GovernorStatus = field(default_factory=GovernorStatus)

    def totals(self) -> dict[str, int]:
        return {
            "backlog": sum(s.length for s in self.streams),
            "pending": sum(s.pending for s in self.streams),
            "dead_letters": self.dead_letters,
            "workers": len(self.workers),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals()}


def _t(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _stream(redis: Any, keys: Keys, group: str, kind: str, p: int) -> StreamStatus:
    stream = keys.stream(kind, p)  # type: ignore[arg-type]
    length, lag, pending, last, consumers = 0, None, 0, None, []
    try:
        length = int(redis.xlen(stream))
        for g in redis.xinfo_groups(stream) if length or redis.exists(stream) else []:
            if _t(g["name"]) != group:
                continue
            pending = int(g["pending"])
            last = _t(g["last-delivered-id"])
            lag = int(g["lag"]) if g.get("lag") is not None else None
            consumers = [
                ConsumerStatus(_t(c["name"]), int(c["pending"]), int(c["idle"]))
                for c in redis.xinfo_consumers(stream, group)
            ]
    except ResponseError as e:
        if "no such key" not in str(e).lower():
            raise
    return StreamStatus(stream, kind, p, length, lag, pending, last, consumers)


def throughput(redis: Any, keys: Keys, minutes: int = THROUGHPUT_MINUTES) -> dict[str, list[int]]:
    now = int(time.time() // 60)
    span = list(range(now - minutes + 1, now + 1))
    pipe = redis.pipeline(transaction=False)
    for kind in JOB_KINDS:
        for m in span:
            pipe.hget(keys.stats(kind, m), "applied")
    values = pipe.execute()
    out: dict[str, list[int]] = {}
    for i, kind in enumerate(JOB_KINDS):
        out[kind] = [int(v or 0) for v in values[i * len(span) : (i + 1) * len(span)]]
    return out


def _dead_letters(redis: Any, keys: Keys) -> int:
    pipe = redis.pipeline(transaction=False)
    for key in keys.dead_letter_streams():
        pipe.xlen(key)
    return sum(int(n) for n in pipe.execute())


def collect(redis: Any, keys: Keys, group: str) -> Status:
    """Read the state of every job stream of a namespace."""
    with translate_errors("read status"):
        streams = [_stream(redis, keys, group, kind, p) for kind in JOB_KINDS for p in range(keys.partitions)]
        dead = _dead_letters(redis, keys)
        workers = live_workers(redis, keys)
        rates = throughput(redis, keys)
    return Status(keys.namespace, time.time(), streams, dead, workers, rates, governor.read(redis, keys))

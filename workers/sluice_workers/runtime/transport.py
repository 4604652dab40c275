"""The worker's only door to Redis for job streams: groups, reads, reclaims, acks, dead letters.

Replies are parsed into `Job`s / `Delivery`s here; the consumer loop never sees raw replies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from sluice.connection.capabilities import Capabilities
from sluice.errors import JobDecodeError, RedisFull, RedisUnavailable
from sluice.jobs.codec import Job, decode
from sluice.keys import Keys
from sluice.scripts import Scripts
from sluice.settings import Settings
from sluice.transport.translate import translate_errors
from sluice.types import EntryId, KeyT

DEAD_MARKER_TTL_MS = 7 * 24 * 3600 * 1000


@dataclass(slots=True)
class Delivery:
    """One batch read from the streams: decoded jobs, and entries that failed to decode."""

    jobs: list[Job] = field(default_factory=list)
    undecodable: list[tuple[str, JobDecodeError, dict[bytes, bytes] | None]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.jobs) + len(self.undecodable)


@dataclass(frozen=True, slots=True)
class Ack:
    """How one entry leaves the pending list: applied, or dead-lettered with a reason."""

    stream: str
    entry_id: EntryId
    notify: bool = False
    dead_reason: str | None = None
    kind: str = ""
    attempts: int = 1
    pending: str | None = None  # dead: its target key's pending set (the id becomes "dead:<id>" there)


@dataclass(frozen=True, slots=True)
class Release:
    """An entry handed back to the group, claimable again after `pause` seconds."""

    entry_id: EntryId
    pause: float
    deliveries: int = 0
    give_back: bool = False  # the attempt failed in transport: do not count its delivery


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class StreamTransport:
    """Stream commands for one worker process (thread-safe: redis-py pools connections)."""

    def __init__(self, redis: Any, settings: Settings, caps: Capabilities) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.namespace, settings.queue.partitions)
        self.group = settings.queue.group
        self.caps = caps
        self._scripts = Scripts(redis)
        # server ms - local ms per stream (each stream lives on one node), from reclaim replies
        self._clock_offset_ms: dict[str, int] = {}

    # --- setup -------------------------------------------------------------------------------
    def ensure_groups(self, streams: Sequence[KeyT]) -> None:
        """Create each stream's group from id 0, so jobs enqueued before any worker are read."""
        for stream in streams:
            with translate_errors("create consumer group"):
                try:
                    self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
                except ResponseError as e:
                    if "BUSYGROUP" not in str(e):
                        raise

    def group_state(self, stream: KeyT) -> tuple[int | None, int]:
        """(lag, pending) of our group on one stream, for the metrics gauges."""
        with translate_errors("read group state"):
            for g in self.redis.xinfo_groups(stream):
                if _text(g["name"]) == self.group:
                    lag = g.get("lag")
                    return (int(lag) if lag is not None else None), int(g["pending"])
        return None, 0

    # --- reading -----------------------------------------------------------------------------
    def read(self, consumer: str, streams: Sequence[KeyT], count: int, block_ms: int | None) -> Delivery:
        with translate_errors("read jobs"):
            reply = self.redis.xreadgroup(
                self.group, consumer, {s: ">" for s in streams}, count=count, block=block_ms
            )
        return self._parse_read(reply, deliveries=1)

    def _parse_read(self, reply: Any, deliveries: int) -> Delivery:
        out = Delivery()
        for stream_name, entries in reply or []:
            stream = _text(stream_name)
            for entry_id, fields in entries:
                self._add(out, stream, _text(entry_id), fields, deliveries)
        return out

    def _add(self, out: Delivery, stream: str, eid: str, fields: Any, deliveries: int) -> None:
        try:
            job = decode(stream, eid, fields)
        except JobDecodeError as e:
            out.undecodable.append((stream, e, fields))
            return
        out.jobs.append(Job(job.stream, job.entry_id, job.envelope, deliveries))

    def sweep(self, consumer: str, counts: Sequence[tuple[KeyT, int]]) -> Delivery:
        """Non-blocking reads of several streams in one pipeline (one round trip per node on a
        Cluster, where one XREADGROUP cannot span slots)."""
        pipe = self.redis.pipeline(transaction=False)
        for stream, count in counts:
            pipe.xreadgroup(self.group, consumer, {stream: ">"}, count=count)
        with translate_errors("read jobs"):
            replies = pipe.execute()
        out = Delivery()
        for reply in replies:
            for stream_name, entries in reply or []:
                for entry_id, fields in entries:
                    self._add(out, _text(stream_name), _text(entry_id), fields, 1)
        return out

    def reclaim(
        self, consumer: str, stream: KeyT, min_idle_ms: int, count: int, cursor: str = "0-0"
    ) -> tuple[Delivery, str]:
        """Claim entries idle for `min_idle_ms`, scanning the pending list from `cursor`.

        Returns them with their exact delivery counts (reclaim.lua) and the cursor to go on from
        ("0-0" once the scan has wrapped). An entry whose count cannot be read counts as
        delivered too often, never as delivered once.
        """
        sent = time.time()
        deadline = 0
        offset = self._clock_offset_ms.get(stream)
        if offset is not None:
            timeout_ms = int(self.settings.redis.socket_timeout * 1000)
            deadline = int(sent * 1000) + offset + timeout_ms
        with translate_errors("reclaim jobs"):
            reply = self._scripts["reclaim"](
                keys=[stream], args=[self.group, consumer, min_idle_ms, cursor, count, deadline]
            )
        # The server's clock against ours (midpoint of the call), for the next call's deadline.
        self._clock_offset_ms[stream] = int(reply[2]) - int((sent + time.time()) * 500)
        out = Delivery()
        for eid, fields, times in reply[1]:
            delivered = int(times)
            if delivered < 1:
                delivered = self.settings.worker.max_deliveries + 1
            self._add(out, stream, _text(eid), _pairs(fields), delivered)
        return out, _text(reply[0])

    def renew(self, consumer: str, stream: str, ids: Sequence[str]) -> None:
        """Reset the idle time of entries in hand (a lease) without counting a delivery."""
        if ids:
            with translate_errors("renew lease"):
                self.redis.xclaim(stream, self.group, consumer, 0, list(ids), justid=True)

    def release(self, consumer: str, stream: str, items: Sequence[Release]) -> int:
        """Hand entries back: claimable again after each one's pause; with `give_back`, the
        delivery they were read with is not counted (release.lua)."""
        if not items:
            return 0
        visibility_ms = int(self.settings.worker.visibility_timeout * 1000)
        args: list[Any] = [self.group, consumer]
        for item in items:
            idle = max(0, visibility_ms - int(item.pause * 1000))
            args += [item.entry_id, idle, item.deliveries if item.give_back else 0]
        with translate_errors("release jobs"):
            return int(self._scripts["release"](keys=[stream], args=args))

    def answers(self) -> bool:
        """True if Redis answers a PING now."""
        try:
            with translate_errors("ping"):
                self.redis.ping()
        except (RedisUnavailable, RedisFull):
            return False
        return True

    def other_groups(self, stream: KeyT) -> list[str]:
        """Consumer groups on `stream` besides ours (entries are deleted once all have acked)."""
        with translate_errors("read consumer groups"):
            return [
                _text(g["name"]) for g in self.redis.xinfo_groups(stream) if _text(g["name"]) != self.group
            ]

    def record(self, applied: Mapping[str, int], dead: Mapping[str, int]) -> None:
        """Per-minute counters for `sluice status` (throughput), kept two hours."""
        minute = int(time.time() // 60)
        pipe = self.redis.pipeline(transaction=False)
        for field_name, counts in (("applied", applied), ("dead", dead)):
            for kind, n in counts.items():
                if n:
                    key = self.keys.stats(kind, minute)
                    pipe.hincrby(key, field_name, n)
                    pipe.expire(key, 7200)
        with translate_errors("record stats"):
            pipe.execute()

    def ack(self, acks: Sequence[Ack]) -> int:
        """Finish entries (ack.lua): acknowledge, dead-letter, signal and delete, one script call
        per stream; an entry already acknowledged is left alone, so a resend has no second effect."""
        by_stream: dict[str, list[Ack]] = {}
        for a in acks:
            by_stream.setdefault(a.stream, []).append(a)
        mode = "xackdel" if self.caps.xackdel else "xack"
        worker = self.settings.worker
        signal_ttl = int(self.settings.queue.signal_ttl * 1000)
        now_ms = int(time.time() * 1000)
        total = 0
        for stream, items in by_stream.items():
            keys: list[str] = [stream, self.keys.dead_letter_stream(stream)]
            args: list[Any] = [
                self.group,
                mode,
                signal_ttl,
                DEAD_MARKER_TTL_MS,
                worker.dead_letter_maxlen,
                now_ms,
            ]
            for a in items:
                dead = a.dead_reason is not None
                flags = (
                    ("d" if dead else "") + ("p" if dead and a.pending else "") + ("n" if a.notify else "")
                )
                if dead:
                    keys.append(self.keys.dead_marker(stream, a.entry_id))
                    if a.pending:
                        keys.append(a.pending)
                if a.notify:
                    keys.append(self.keys.done_signal(stream, a.entry_id))
                args += [a.entry_id, flags, (a.dead_reason or "")[:2000], a.kind, a.attempts]
            with translate_errors("acknowledge jobs"):
                total += int(self._scripts["ack"](keys=keys, args=args))
        return total


def _pairs(fields: Any) -> dict[bytes, bytes]:
    """A script returns an entry's fields as a flat list; decode() wants a mapping."""
    if isinstance(fields, dict):
        return fields
    flat = list(fields)
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}

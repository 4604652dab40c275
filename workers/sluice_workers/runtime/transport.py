"""The worker's only door to Redis for job streams: groups, reads, reclaims, acks, dead letters.

Replies are parsed into `Job`s / `Delivery`s here; the consumer loop never sees raw replies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from sluice.connection.capabilities import Capabilities
from sluice.connection.translate import translate_errors
from sluice.errors import JobDecodeError
from sluice.jobs.codec import Job, decode
from sluice.keys import Keys
from sluice.scripts import Scripts
from sluice.settings import Settings
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
    """How one entry leaves the pending list."""

    stream: str
    entry_id: EntryId
    notify: bool = False
    dead_reason: str | None = None


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

    def reclaim(
        self, consumer: str, stream: KeyT, min_idle_ms: int, count: int
    ) -> tuple[Delivery, dict[str, int]]:
        """XAUTOCLAIM idle entries to `consumer`; returns them with their delivery counts."""
        with translate_errors("reclaim jobs"):
            reply = self.redis.xautoclaim(stream, self.group, consumer, min_idle_ms, "0-0", count=count)
            entries = reply[1] if reply else []
            entries = [(eid, f) for eid, f in entries if f is not None]
            if not entries:
                return Delivery(), {}
            first, last = _text(entries[0][0]), _text(entries[-1][0])
            pend = self.redis.xpending_range(
                stream, self.group, first, last, len(entries) + 10, consumername=consumer
            )
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pend}
        out = Delivery()
        for eid, fields in entries:
            sid = _text(eid)
            self._add(out, stream, sid, fields, counts.get(sid, 1))
        return out, counts

    def renew(self, consumer: str, stream: str, ids: Sequence[str]) -> None:
        """Reset the idle time of entries in hand (a lease) without counting a delivery."""
        if ids:
            with translate_errors("renew lease"):
                self.redis.xclaim(stream, self.group, consumer, 0, list(ids), justid=True)

    def delay(self, consumer: str, stream: str, entry_id: str, delay_s: float) -> None:
        """Make an entry claimable again after `delay_s` (retry with backoff, the entry stays pending)."""
        visibility_ms = int(self.settings.worker.visibility_timeout * 1000)
        idle = max(0, visibility_ms - int(delay_s * 1000))
        with translate_errors("schedule retry"):
            self.redis.xclaim(stream, self.group, consumer, 0, [entry_id], idle=idle, justid=True)

    # --- finishing ---------------------------------------------------------------------------
    def dead_letter(
        self, stream: str, entry_id: str, kind: str, reason: str, attempts: int, raw: Any
    ) -> None:
        """Copy an entry to the dead-letter stream (before it is acknowledged)."""
        payload = raw.get(b"job", b"") if isinstance(raw, dict) else b""
        fields = {
            "stream": stream,
            "entry_id": entry_id,
            "kind": kind,
            "error": reason[:2000],
            "attempts": str(attempts),
            "at": str(int(time.time() * 1000)),
            "job": payload if isinstance(payload, bytes) else json.dumps(payload),
        }
        with translate_errors("dead-letter"):
            self.redis.xadd(
                self.keys.dead_letters(),
                fields,
                maxlen=self.settings.worker.dead_letter_maxlen,
                approximate=True,
            )

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
        """Acknowledge and delete entries, writing signals/dead markers first (ack.lua)."""
        by_stream: dict[str, list[Ack]] = {}
        for a in acks:
            by_stream.setdefault(a.stream, []).append(a)
        mode = "xackdel" if self.caps.xackdel else "xack"
        signal_ttl = int(self.settings.queue.signal_ttl * 1000)
        total = 0
        for stream, items in by_stream.items():
            keys: list[str] = [stream]
            args: list[Any] = [self.group, mode, signal_ttl, DEAD_MARKER_TTL_MS]
            for a in items:
                flags = ("d" if a.dead_reason is not None else "") + ("n" if a.notify else "")
                if a.dead_reason is not None:
                    keys.append(self.keys.dead_marker(stream, a.entry_id))
                if a.notify:
                    keys.append(self.keys.done_signal(stream, a.entry_id))
                args += [a.entry_id, flags, a.dead_reason or ""]
            with translate_errors("acknowledge jobs"):
                total += int(self._scripts["ack"](keys=keys, args=args))
        return total

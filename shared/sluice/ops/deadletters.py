"""The dead letters, for operators: list, show, retry, purge (bounded reads only).

Each job stream has its own dead-letter stream beside it (same hash tag: the worker dead-letters
and acknowledges in one script); the single stream of earlier releases is read too.

A retried entry goes through the enqueue path (backlog bound, resend dedupe) as a new stream
entry that keeps the job's identity: its version is the original entry's, so a job that was in
fact applied before it was dead-lettered has no second effect, and one that was not applies in
its original place in the key's order (a newer write or clear of the same key still wins). The
original handle stays failed; the new one is returned.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from sluice.errors import ConfigError, SluiceError
from sluice.jobs.models import JobEnvelope
from sluice.keys import Keys
from sluice.queue.producer import Producer
from sluice.transport.translate import translate_errors
from sluice.types import EntryId, KeyT, StreamEntryRef

PAGE = 500
SCAN_LIMIT = 100_000  # entries examined at most by one filtered command


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str  # id in the dead-letter stream
    stream: str  # original stream
    entry_id: str  # original entry id
    kind: str
    error: str
    attempts: int
    at_ms: int
    job: bytes
    key: str = ""  # the dead-letter stream that holds it

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.at_ms / 1000

    def as_dict(self, *, with_job: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "stream": self.stream,
            "entry_id": self.entry_id,
            "kind": self.kind,
            "error": self.error,
            "attempts": self.attempts,
            "at_ms": self.at_ms,
        }
        if with_job:
            d["job"] = self.job.decode(errors="replace")
        return d


def _t(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def parse(entry_id: Any, fields: dict[bytes, bytes], key: str = "") -> DeadLetter:
    f = {_t(k): v for k, v in fields.items()}

    def num(name: str) -> int:
        try:
            return int(_t(f.get(name, b"0")))
        except ValueError:
            return 0

    job = f.get("job", b"")
    return DeadLetter(
        _t(entry_id),
        _t(f.get("stream", b"")),
        _t(f.get("entry_id", b"")),
        _t(f.get("kind", b"")),
        _t(f.get("error", b"")),
        num("attempts"),
        num("at"),
        job if isinstance(job, bytes) else str(job).encode(),
        key,
    )


def _before(entry_id: str) -> str | None:
    """The stream id just below `entry_id` (None below the first possible id)."""
    ms, seq = entry_id.split("-")
    if int(seq) > 0:
        return f"{ms}-{int(seq) - 1}"
    if int(ms) > 0:
        return f"{int(ms) - 1}-18446744073709551615"
    return None


class DeadLetters:
    """Every dead-letter stream of a namespace; `producer` is needed only to retry."""

    def __init__(self, redis: Any, keys: Keys, producer: Producer | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._streams: list[KeyT] = keys.dead_letter_streams()
        self._producer = producer

    def count(self) -> int:
        pipe = self._redis.pipeline(transaction=False)
        for key in self._streams:
            pipe.xlen(key)
        with translate_errors("read dead letters"):
            return sum(int(n) for n in pipe.execute())

    def _newest_first(self, key: str) -> Iterator[DeadLetter]:
        end: str | None = "+"
        while end is not None:
            with translate_errors("read dead letters"):
                page = self._redis.xrevrange(key, max=end, min="-", count=PAGE)
            if not page:
                return
            for eid, fields in page:
                yield parse(eid, fields, key)
            end = _before(_t(page[-1][0]))

    def iter(
        self, *, kind: str | None = None, older_than: float | None = None, newer_than: float | None = None
    ) -> Iterator[DeadLetter]:
        """Newest first across all dead-letter streams, filtered; examines at most SCAN_LIMIT."""
        now = time.time()
        merged = heapq.merge(
            *(self._newest_first(k) for k in self._streams), key=lambda d: d.at_ms, reverse=True
        )
        for seen, d in enumerate(merged):
            if seen >= SCAN_LIMIT:
                return
            if kind and d.kind != kind:
                continue
            if older_than is not None and d.age(now) < older_than:
                continue
            if newer_than is not None and d.age(now) > newer_than:
                continue
            yield d

    def recent(self, limit: int = 50, **filters: Any) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        for d in self.iter(**filters):
            out.append(d)
            if len(out) >= limit:
                break
        return out

    def get(self, ident: str) -> DeadLetter:
        """By dead-letter id, or by the original entry id."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key in self._streams:
                pipe.xrange(key, min=ident, max=ident, count=1)
            with translate_errors("read dead letters"):
                found = pipe.execute()
        except (ResponseError, SluiceError):  # not a stream id: look it up as an original id below
            found = []
        for key, entries in zip(self._streams, found, strict=False):
            if entries:
                eid, fields = entries[0]
                return parse(eid, fields, key)
        for d in self.iter():
            if ident in (d.entry_id, d.id):
                return d
        raise SluiceError(f"no dead letter with id {ident!r}; list them with `sluice dlq list`")

    def retry(self, letters: Sequence[DeadLetter]) -> list[tuple[str, EntryId]]:
        """Enqueue each job again (keeping its identity, see the module docstring), then delete
        the dead letter."""
        if self._producer is None:
            raise ConfigError("retrying dead letters needs a producer: DeadLetters(redis, keys, producer)")
        out: list[tuple[str, EntryId]] = []
        for d in letters:
            envelope = _envelope(d)
            stream = self._keys.stream_for(envelope.payload.kind, envelope.target_key())
            # The original version compares only with ids of the stream it came from.
            origin = (envelope.origin or d.entry_id) if stream == d.stream else None
            again = envelope.model_copy(update={"origin": origin, "attempt": envelope.attempt + 1})
            handle: StreamEntryRef = self._producer.requeue(again)
            with translate_errors("retry dead letter"):
                self._redis.xdel(d.key or self._keys.dead_letters(), d.id)
            out.append((handle.stream, handle.entry_id))
        return out

    def purge(self, letters: Sequence[DeadLetter]) -> int:
        if not letters:
            return 0
        by_key: dict[str, list[str]] = {}
        for d in letters:
            by_key.setdefault(d.key or self._keys.dead_letters(), []).append(d.id)
        with translate_errors("purge dead letters"):
            return sum(int(self._redis.xdel(key, *ids)) for key, ids in by_key.items())


def _envelope(d: DeadLetter) -> JobEnvelope:
    if not d.job or not d.stream:
        raise SluiceError(f"dead letter {d.id} has no job payload to retry; purge it instead")
    try:
        return JobEnvelope.model_validate_json(d.job)
    except ValueError as e:
        raise SluiceError(
            f"dead letter {d.id} holds no valid job ({str(e)[:200]}); it can only be purged"
        ) from None

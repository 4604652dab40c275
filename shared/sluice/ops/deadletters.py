"""The dead-letter stream, for operators: list, show, retry, purge (bounded reads only).

A retried entry is enqueued again as a *new* job on its original stream (a new version): it
applies after whatever was written since it failed. The original handle stays failed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from sluice.connection.translate import translate_errors
from sluice.errors import SluiceError
from sluice.keys import Keys
from sluice.types import EntryId

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


def parse(entry_id: Any, fields: dict[bytes, bytes]) -> DeadLetter:
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
    )


class DeadLetters:
    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._key = keys.dead_letters()

    def count(self) -> int:
        with translate_errors("read dead letters"):
            return int(self._redis.xlen(self._key))

    def iter(
        self, *, kind: str | None = None, older_than: float | None = None, newer_than: float | None = None
    ) -> Iterator[DeadLetter]:
        """Newest first, filtered; examines at most SCAN_LIMIT entries."""
        now = time.time()
        end, seen = "+", 0
        while seen < SCAN_LIMIT:
            with translate_errors("read dead letters"):
                page = self._redis.xrevrange(self._key, max=end, min="-", count=PAGE)
            if not page:
                return
            for eid, fields in page:
                seen += 1
                d = parse(eid, fields)
                if kind and d.kind != kind:
                    continue
                if older_than is not None and d.age(now) < older_than:
                    continue
                if newer_than is not None and d.age(now) > newer_than:
                    continue
                yield d
            ms, seq = _t(page[-1][0]).split("-")
            if int(seq) > 0:
                end = f"{ms}-{int(seq) - 1}"
            elif int(ms) > 0:
                end = f"{int(ms) - 1}-18446744073709551615"
            else:
                return

    def recent(self, limit: int = 50, **filters: Any) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        for d in self.iter(**filters):
            out.append(d)
            if len(out) >= limit:
                break
        return out

    def get(self, ident: str) -> DeadLetter:
        """By dead-letter id, or by the original entry id."""
        with translate_errors("read dead letters"):
            try:
                found = self._redis.xrange(self._key, min=ident, max=ident, count=1)
            except ResponseError:  # not a stream id: look it up as an original id below
                found = []
        if found:
            return parse(*found[0])
        for d in self.iter():
            if ident in (d.entry_id, d.id):
                return d
        raise SluiceError(f"no dead letter with id {ident!r}; list them with `sluice dlq list`")

    def retry(self, letters: Sequence[DeadLetter]) -> list[tuple[str, EntryId]]:
        """Enqueue each job again on its original stream, then delete the dead letter."""
        out: list[tuple[str, EntryId]] = []
        for d in letters:
            if not d.job or not d.stream:
                raise SluiceError(f"dead letter {d.id} has no job payload to retry; purge it instead")
            with translate_errors("retry dead letter"):
                new_id = self._redis.xadd(d.stream, {"job": d.job})
                self._redis.xdel(self._key, d.id)
            out.append((d.stream, EntryId(_t(new_id))))
        return out

    def purge(self, letters: Sequence[DeadLetter]) -> int:
        if not letters:
            return 0
        with translate_errors("purge dead letters"):
            return int(self._redis.xdel(self._key, *[d.id for d in letters]))

"""Read-only access to the source keys: SCAN, pipelined reads with PTTL, FT.INFO.

Only read commands are sent, so a migration never changes the data it copies (a test compares
a DUMP of every source key before and after). Replies are RESP2 (sluice's connections).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.exceptions as rex

from sluice.migrate.records import SourceError
from sluice.transport.translate import translate_errors

SCAN_COUNT = 500
READ_CHUNK = 200
_GLOB = re.compile(r"([*?\[\]\\])")
DTYPES = {"FLOAT32": np.float32, "FLOAT64": np.float64, "FLOAT16": np.float16}


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def glob_escape(prefix: str) -> str:
    """`prefix` as a literal in a SCAN MATCH pattern."""
    return _GLOB.sub(r"\\\1", prefix)


def ttl_of(pttl: Any) -> float | None:
    """Seconds left from a PTTL reply; None for a key without expiry (or one gone meanwhile)."""
    ms = int(pttl)
    return ms / 1000 if ms > 0 else None


def chunked(items: Iterable[str], size: int = READ_CHUNK) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def scan(redis: Any, match: str, type_: str | None = None) -> Iterator[str]:
    """Keys matching `match` (a pattern), each once, in no particular order."""
    seen: set[str] = set()
    with translate_errors("scan the source keys"):
        for raw in redis.scan_iter(match=match, count=SCAN_COUNT, _type=type_):
            key = text(raw)
            if key not in seen:  # SCAN may return a key twice while the table is resized
                seen.add(key)
                yield key


@dataclass(frozen=True, slots=True)
class Read:
    """One source key's value (None: the key vanished meanwhile) and the seconds it has left."""

    key: str
    value: Any
    ttl: float | None


def _reads(redis: Any, keys: Sequence[str], command: tuple[str, ...], what: str) -> list[Read]:
    with translate_errors(f"read the source {what}"):
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command(command[0], key, *command[1:])
            pipe.pttl(key)
        replies = pipe.execute(raise_on_error=False)
    out = []
    for i, key in enumerate(keys):
        value, pttl = replies[2 * i], replies[2 * i + 1]
        if isinstance(value, rex.ResponseError):
            raise SourceError(f"source key {key!r} is not a {what} ({value}); narrow the source prefix")
        out.append(Read(key, value, ttl_of(pttl) if not isinstance(pttl, Exception) else None))
    return out


def hashes(redis: Any, keys: Sequence[str]) -> list[Read]:
    """HGETALL of each key as {field: bytes}; vanished keys are left out."""
    out = []
    for r in _reads(redis, keys, ("HGETALL",), "hash"):
        pairs = r.value if isinstance(r.value, list) else list(_flatten(r.value))
        fields = {text(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}
        if fields:
            out.append(Read(r.key, fields, r.ttl))
    return out


def _flatten(value: Any) -> Iterator[Any]:
    for k, v in (value or {}).items():
        yield k
        yield v


def documents(redis: Any, keys: Sequence[str]) -> list[Read]:
    """JSON.GET of each key (the root document); vanished keys are left out."""
    out = []
    for r in _reads(redis, keys, ("JSON.GET", "$"), "JSON document"):
        if r.value is None:
            continue
        # RESP2 gives the JSON text; a client with JSON reply callbacks gives it parsed
        parsed = r.value if isinstance(r.value, list | dict) else json.loads(text(r.value))
        out.append(Read(r.key, parsed[0] if isinstance(parsed, list) and parsed else parsed, r.ttl))
    return out


def lists(redis: Any, keys: Sequence[str]) -> list[Read]:
    """LRANGE 0 -1 of each key (head first); vanished keys are left out."""
    return [
        Read(r.key, [text(v) for v in r.value], r.ttl)
        for r in _reads(redis, keys, ("LRANGE", "0", "-1"), "list")
        if r.value
    ]


def vector_of(raw: Any, dtype: str) -> list[float] | None:
    """A stored vector (bytes in a hash, a list in JSON) as floats; None if its type is not readable."""
    if isinstance(raw, list):
        return [float(x) for x in raw]
    np_type = DTYPES.get(dtype.upper())
    if np_type is None or not isinstance(raw, bytes):
        return None
    vector = np.frombuffer(raw, dtype=np_type).astype(float).tolist()
    return vector  # type: ignore[no-any-return]

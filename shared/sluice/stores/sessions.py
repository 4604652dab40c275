"""The session index: which conversations exist, when each was last written, how many messages.

Three sorted sets on one hash tag (`Keys.history_sessions`, `sessions_names`, `sessions_expires`),
updated by the history handler after each batch (history_index.lua) and read by
`client.sessions(...)`. Listing by prefix pages through the lexical set (``ZRANGE … BYLEX LIMIT``,
never ``KEYS`` or ``SCAN``), then reads each listed session's last write, size and tombstone in
one more round trip. The index may still name a session that expired, or was deleted while an
older batch was being applied: listing checks every session against the conversation itself and
skips such entries, and the worker's `sweep` removes them (sessions whose expiry passed first,
plus a slow walk over all names). Everything here is a sans-I/O plan (`sluice.transport.runner`):
the same code serves sync and asyncio callers, standalone and Cluster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sluice.errors import InvalidArgument
from sluice.keys import Keys
from sluice.transport.runner import Call, Plan
from sluice.vectors.backend import check

MAX_ROUNDS: Final = 8
"""Listing rounds per page: a page skips dead entries and reads on, up to this many batches."""
MAX_PAGE: Final = 10_000


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One listed session: `last_activity` is when its newest write was enqueued (epoch seconds)."""

    session_id: str
    last_activity: float
    messages: int

    @property
    def last_activity_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.last_activity, tz=dt.UTC)


@dataclass(frozen=True, slots=True)
class SessionPage:
    """Sessions in name order; pass `cursor` back for the next page (None: this was the last)."""

    sessions: list[SessionInfo]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class DeadSession:
    """A listed session that no longer exists; `seen` bounds the conditional removal from the index."""

    session_id: str
    seen: int
    vectors: dict[str, str] = field(default_factory=dict)  # message ref -> semantic index


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep found: dead sessions, corrected expiries, and where the walk goes on."""

    dead: list[DeadSession]
    expiry: list[tuple[str, int]]
    cursor: str | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _index_call(keys: Keys, op: str, args: Sequence[Any]) -> Call:
    index = (keys.history_sessions(), keys.sessions_names(), keys.sessions_expires())
    return Call((op, *args), route=index[0], script="history_index", keys=index)


def touch_call(keys: Keys, touches: Sequence[tuple[str, int, int]]) -> Call | None:
    """(session, last write ms, expiry ms or 0) for each applied write."""
    return _index_call(keys, "touch", [x for t in touches for x in t]) if touches else None


def drop_call(keys: Keys, drops: Sequence[tuple[str, int]], *, prune: bool = False) -> Call | None:
    """Forget sessions (deleted at ms, or seen dead with last write ms) unless written since."""
    if not drops:
        return None
    return _index_call(keys, "prune" if prune else "drop", [x for d in drops for x in d])


def expiry_call(keys: Keys, expiries: Sequence[tuple[str, int]]) -> Call | None:
    return _index_call(keys, "expiry", [x for e in expiries for x in e]) if expiries else None


def _bounds(prefix: str, cursor: str | None) -> tuple[bytes, bytes]:
    """BYLEX bounds of names starting with `prefix`, after `cursor` (UTF-8 never holds 0xff)."""
    low = b"[" + prefix.encode() if prefix else b"-"
    if cursor is not None and cursor.encode() >= prefix.encode():
        low = b"(" + cursor.encode()
    high = b"(" + prefix.encode() + b"\xff" if prefix else b"+"
    return low, high


def _status_calls(keys: Keys, session: str) -> list[Call]:
    history, meta = keys.history(session), keys.history_meta(session)
    active = keys.history_sessions()
    return [
        Call(("ZSCORE", active, session), route=active),
        Call(("ZCARD", history), route=history),
        Call(("HMGET", meta, "cleared", "deleted"), route=meta),
    ]


def _alive(size: int, meta: Sequence[Any]) -> bool:
    """Messages, or an emptied session (a clear) that is not a delete's tombstone."""
    cleared, deleted = [*meta, None, None][:2]
    return size > 0 or (cleared is not None and deleted is None)


def list_sessions(
    keys: Keys, prefix: str = "", cursor: str | None = None, count: int = 100
) -> Plan[SessionPage]:
    """One page of live sessions whose id starts with `prefix`, in name order, after `cursor`."""
    if not 1 <= count <= MAX_PAGE:
        raise InvalidArgument(f"count must be between 1 and {MAX_PAGE}, got {count}")
    names_key = keys.sessions_names()
    found: list[SessionInfo] = []
    start = cursor
    for _ in range(MAX_ROUNDS):
        want = count - len(found)
        low, high = _bounds(prefix, start)
        [reply] = yield [Call(("ZRANGE", names_key, low, high, "BYLEX", "LIMIT", 0, want), route=names_key)]
        names = [_text(n) for n in check(reply, "list sessions")]
        if not names:
            return SessionPage(found, None)
        replies = yield [c for n in names for c in _status_calls(keys, n)]
        for i, name in enumerate(names):
            score, size, meta = (check(r, f"read session {name!r}") for r in replies[3 * i : 3 * i + 3])
            if _alive(int(size), meta):
                found.append(SessionInfo(name, float(score or 0) / 1000, int(size)))
        start = names[-1]
        if len(names) < want:
            return SessionPage(found, None)
        if len(found) >= count:
            break
    return SessionPage(found, start)


def _hash(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):
        return {_text(k): _text(v) for k, v in reply.items()}
    items = list(reply or [])
    return {_text(k): _text(v) for k, v in zip(items[::2], items[1::2], strict=True)}


def _expiry(now_ms: int, ttls: Sequence[int]) -> int | None:
    """New expiry of a live session from its keys' PTTLs: 0 = no TTL, None = unknown."""
    present = [t for t in ttls if t != -2]
    if any(t == -1 for t in present):
        return 0
    return now_ms + max(present) if present else None


def sweep(
    keys: Keys, now_ms: int, *, expired: int = 100, walk: int = 100, cursor: str | None = None
) -> Plan[Sweep]:
    """Find dead sessions: those whose expiry passed, then the next `walk` names after `cursor`."""
    expires, names_key = keys.sessions_expires(), keys.sessions_names()
    low = b"(" + cursor.encode() if cursor else b"-"
    first = yield [
        Call(("ZRANGE", expires, "-inf", now_ms, "BYSCORE", "LIMIT", 0, expired), route=expires),
        Call(("ZRANGE", names_key, low, b"+", "BYLEX", "LIMIT", 0, walk), route=names_key),
    ]
    due = [_text(n) for n in check(first[0], "read session expiries")]
    walked = [_text(n) for n in check(first[1], "walk session names")]
    candidates = list(dict.fromkeys(due + walked))
    if not candidates:
        return Sweep([], [], None)
    calls: list[Call] = []
    for s in candidates:
        history, meta, vdocs = keys.history(s), keys.history_meta(s), keys.history_vdocs(s)
        calls += _status_calls(keys, s)
        calls += [
            Call(("PTTL", history), route=history),
            Call(("PTTL", meta), route=meta),
            Call(("HGETALL", vdocs), route=vdocs),
        ]
    replies = yield calls
    dead: list[DeadSession] = []
    fixed: list[tuple[str, int]] = []
    due_set = set(due)
    for i, s in enumerate(candidates):
        score, size, meta, ttl_h, ttl_m, vdocs = (
            check(r, f"read session {s!r}") for r in replies[6 * i : 6 * i + 6]
        )
        if not _alive(int(size), meta):
            dead.append(DeadSession(s, int(float(score or 0)), _hash(vdocs)))
        elif s in due_set and (new := _expiry(now_ms, [int(ttl_h), int(ttl_m)])) is not None:
            fixed.append((s, new))
    next_cursor = walked[-1] if len(walked) == walk else None
    return Sweep(dead, fixed, next_cursor)

"""The conversation store: one sorted set per session, written only through history_write.lua.

Reads are one round trip (`ZRANGE`). Writes carry the job's version, so the worker can apply a
job any number of times, in any order, and the session reads the same. Every applied write also
updates the session index (`sluice.stores.sessions`) in the same round trip's wake: one more
script call per batch, on the index's own slot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import redis.exceptions as rex
from langchain_core.messages import BaseMessage

from sluice.errors import StoreCorrupted
from sluice.keys import Keys
from sluice.stores import messages as codec
from sluice.stores.sessions import drop_call, touch_call
from sluice.stores.versions import padded
from sluice.transport.runner import Call, Runner
from sluice.transport.translate import ServerErrors, translate_errors
from sluice.types import parse_entry_id
from sluice.vectors.backend import check

HistoryOp = Literal["append", "clear", "delete"]
TOMBSTONE_TTL: Final = 24 * 3600.0
"""Seconds a deleted session's tombstone stops redelivered older appends from reviving it."""
REF_WIDTH: Final = 36
"""``<29-character version>:<nnnnnn>``: what identifies one stored message."""


@dataclass(frozen=True, slots=True)
class HistoryWrite:
    """One job's effect on one session."""

    session_id: str
    version: str  # entry id
    op: HistoryOp
    messages: Sequence[dict[str, Any]]
    ttl: float | None = None
    max_messages: int | None = None
    index: str | None = None  # semantic index the new messages get vectors in


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What history_write.lua did: `status`, what is left, and the vectors whose messages went away."""

    status: Literal["superseded", "applied", "deleted"]
    count: int
    floor: str = ""  # the trimming floor: messages below it are not kept
    removed: list[tuple[str, str]] = field(default_factory=list)  # (index, message ref)

    def kept(self, ref: str) -> bool:
        return self.status == "applied" and ref >= self.floor


def message_ref(version: str, position: int) -> str:
    """The stored message's identity: ``<padded version>:<position>`` (also its vector's id prefix)."""
    return f"{padded(version)}:{position:06d}"


def _member_body(member: bytes | str) -> bytes | str:
    """The message JSON of a stored member ``<ref>:<json>`` (bytes stay bytes: no decoding copy)."""
    sep = member[REF_WIDTH : REF_WIDTH + 1]
    if sep not in (b":", ":"):
        text = member.decode(errors="replace") if isinstance(member, bytes) else member
        raise StoreCorrupted(f"history member {text[:60]!r} is not in sluice's format")
    return member[REF_WIDTH + 1 :]


def _wrong_type(key: str) -> StoreCorrupted:
    return StoreCorrupted(f"{key} is not a sluice conversation (wrong Redis type); delete or rename that key")


def parse(reply: Sequence[bytes | str], key: str) -> list[BaseMessage]:
    return codec.decode_many([_member_body(m) for m in reply], key)


def read_call(keys: Keys, session_id: str, last: int | None = None) -> Call:
    """The session's messages (the last `last` ones), oldest first: parse the reply with `parse_read`."""
    key = keys.history(session_id)
    return Call(("ZRANGE", key, -last if last else 0, -1), route=key)


def parse_read(reply: Any, key: str) -> list[BaseMessage]:
    """The messages of a `read_call` reply (an error reply raises, by name)."""
    if isinstance(reply, rex.ResponseError) and ServerErrors.matches(reply, ServerErrors.WRONGTYPE):
        raise _wrong_type(key)
    check(reply, "read conversation")  # any other server error, as the sluice error it is
    if isinstance(reply, BaseException):
        raise reply
    return parse(reply, key)


def find_call(keys: Keys, session_id: str, ref: str) -> Call:
    """The one stored message with this ref, if it is still there (trimmed, cleared or expired: none)."""
    key = keys.history(session_id)
    return Call(("ZRANGE", key, f"[{ref}:", f"({ref};", "BYLEX", "LIMIT", 0, 1), route=key)


def _result(reply: Any, key: str) -> WriteResult:
    if isinstance(reply, rex.ResponseError):
        if ServerErrors.matches(reply, ServerErrors.WRONGTYPE):
            raise StoreCorrupted(
                f"a key of conversation {key} has the wrong Redis type; delete or rename it"
            ) from None
        check(reply, "write conversation")
    code, count, floor, *pairs = reply
    text = [p.decode() if isinstance(p, bytes) else str(p) for p in pairs]
    floor = floor.decode() if isinstance(floor, bytes) else str(floor)
    status: Literal["superseded", "applied", "deleted"] = ("superseded", "applied", "deleted")[int(code)]
    return WriteResult(status, int(count), floor, list(zip(text[::2], text[1::2], strict=True)))


class HistoryStore:
    """Sync access to conversation stores (the worker writes, the facade reads)."""

    def __init__(self, redis: Any, keys: Keys, *, cluster: bool = False) -> None:
        self._redis = redis
        self._keys = keys
        self.runner = Runner(redis, cluster=cluster)

    @property
    def keys(self) -> Keys:
        return self._keys

    def _call(self, w: HistoryWrite) -> Call:
        keys = (
            self._keys.history(w.session_id),
            self._keys.history_meta(w.session_id),
            self._keys.history_vdocs(w.session_id),
        )
        ttl_ms = int(w.ttl * 1000) if w.ttl else 0
        args: list[Any] = [
            padded(w.version), w.op, ttl_ms, w.max_messages or 0, int(TOMBSTONE_TTL * 1000), w.index or "",
        ]  # fmt: skip
        args.extend(codec.encode(m) for m in w.messages)
        return Call(tuple(args), route=keys[0], script="history_write", keys=keys)

    def write(
        self, writes: Sequence[HistoryWrite], *, pipeline: bool = True, then: Sequence[Call] = ()
    ) -> list[WriteResult]:
        """Apply writes (one script call each, one round trip per node), then update the session index,
        with the calls `then` in the same round trip (a worker marks the jobs applied there).

        `pipeline=False` sends one write per round trip (kept for callers that need it).
        """
        if not writes:
            return []
        calls = [self._call(w) for w in writes]
        replies: list[Any] = []
        for start in range(0, len(calls), len(calls) if pipeline else 1):
            chunk = calls[start : start + (len(calls) if pipeline else 1)]
            replies += self.runner.run(chunk, what="write conversations")
        results = [_result(r, c.route) for r, c in zip(replies, calls, strict=True)]
        self._index(writes, results, then)
        return results

    def _index(
        self, writes: Sequence[HistoryWrite], results: Sequence[WriteResult], then: Sequence[Call]
    ) -> None:
        now_ms = int(time.time() * 1000)
        touches: list[tuple[str, int, int]] = []
        drops: list[tuple[str, int]] = []
        for w, r in zip(writes, results, strict=True):
            at = parse_entry_id(w.version)[0]
            if r.status == "applied":
                touches.append((w.session_id, at, now_ms + int(w.ttl * 1000) if w.ttl else 0))
            elif r.status == "deleted":
                drops.append((w.session_id, at))
        calls = [c for c in (touch_call(self._keys, touches), drop_call(self._keys, drops)) if c]
        for reply in self.runner.run([*calls, *then]):
            check(reply, "update the session index")

    def read(self, session_id: str, last: int | None = None) -> list[BaseMessage]:
        key = self._keys.history(session_id)
        with translate_errors("read conversation"):
            try:
                reply = self._redis.zrange(key, -last if last else 0, -1)
            except rex.ResponseError as e:
                if ServerErrors.matches(e, ServerErrors.WRONGTYPE):
                    raise _wrong_type(key) from None
                raise
        return parse(reply, key)

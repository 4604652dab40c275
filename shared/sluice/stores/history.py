"""The conversation store: one sorted set per session, written only through history_write.lua.

Reads are one round trip (`ZRANGE`). Writes carry the job's version, so the worker can apply a
job any number of times, in any order, and the session reads the same.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from redis.exceptions import ResponseError

from sluice.connection.translate import translate_errors
from sluice.errors import StoreCorrupted
from sluice.keys import Keys
from sluice.scripts import Scripts
from sluice.stores import messages as codec
from sluice.stores.versions import padded


@dataclass(frozen=True, slots=True)
class HistoryWrite:
    """One job's effect on one session."""

    session_id: str
    version: str  # entry id
    op: str  # "append" | "clear"
    messages: Sequence[dict[str, Any]]
    ttl: float | None = None
    max_messages: int | None = None


def _member_text(member: bytes | str) -> str:
    text = member.decode() if isinstance(member, bytes) else member
    # "<version>:<nnnnnn>:<json>": the version holds one '-' and no ':'
    first = text.find(":")
    second = text.find(":", first + 1)
    if first < 0 or second < 0:
        raise StoreCorrupted(f"history member {text[:60]!r} is not in sluice's format")
    return text[second + 1 :]


def _wrong_type(key: str) -> StoreCorrupted:
    return StoreCorrupted(f"{key} is not a sluice conversation (wrong Redis type); delete or rename that key")


def parse(reply: Sequence[bytes | str], key: str) -> list[BaseMessage]:
    return codec.decode_many([_member_text(m) for m in reply], key)


class HistoryStore:
    """Sync access to conversation stores (the worker writes, the facade reads)."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = Scripts(redis)

    def _args(self, w: HistoryWrite) -> tuple[list[str], list[Any]]:
        keys: list[str] = [self._keys.history(w.session_id), self._keys.history_meta(w.session_id)]
        ttl_ms = int(w.ttl * 1000) if w.ttl else 0
        args: list[Any] = [padded(w.version), w.op, ttl_ms, w.max_messages or 0]
        args.extend(codec.encode(m) for m in w.messages)
        return keys, args

    def write(self, writes: Sequence[HistoryWrite], *, pipeline: bool = True) -> None:
        """Apply writes (one script call each, pipelined where the client allows)."""
        if not writes:
            return
        script = self._scripts["history_write"]
        with translate_errors("write conversation"):
            try:
                if pipeline:
                    pipe = self._redis.pipeline(transaction=False)
                    for w in writes:
                        keys, args = self._args(w)
                        script(keys=keys, args=args, client=pipe)
                    pipe.execute()
                else:
                    for w in writes:
                        keys, args = self._args(w)
                        script(keys=keys, args=args)
            except ResponseError as e:
                if "WRONGTYPE" in str(e):
                    raise StoreCorrupted(
                        f"a conversation key of one of sessions {sorted({w.session_id for w in writes})[:5]} "
                        "has the wrong Redis type; delete or rename it"
                    ) from None
                raise
            self._touch_index([w.session_id for w in writes])

    def _touch_index(self, sessions: Sequence[str]) -> None:
        now = int(time.time() * 1000)
        self._redis.zadd(self._keys.history_sessions(), dict.fromkeys(sessions, now))

    def read(self, session_id: str, last: int | None = None) -> list[BaseMessage]:
        key = self._keys.history(session_id)
        start = -last if last else 0
        with translate_errors("read conversation"):
            try:
                reply = self._redis.zrange(key, start, -1)
            except ResponseError as e:
                if "WRONGTYPE" in str(e):
                    raise _wrong_type(key) from None
                raise
        return parse(reply, key)


class AsyncHistoryStore:
    """asyncio reads of conversation stores."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def read(self, session_id: str, last: int | None = None) -> list[BaseMessage]:
        key = self._keys.history(session_id)
        start = -last if last else 0
        with translate_errors("read conversation"):
            try:
                reply = await self._redis.zrange(key, start, -1)
            except ResponseError as e:
                if "WRONGTYPE" in str(e):
                    raise _wrong_type(key) from None
                raise
        return parse(reply, key)

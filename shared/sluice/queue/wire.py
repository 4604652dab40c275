"""The producer's own connection: enqueue calls sent pre-packed, in one round trip (sync and asyncio).

For standalone and Sentinel-managed clients (a Cluster goes through `sluice.transport.runner`).
The producer keeps one connection of the client's pool for itself, used by one sender at a time
(the group committer's leader, `sluice.queue.commit`), so an enqueue skips what redis-py does
per command around the round trip: the pool checkout (a lock, a poll of the socket to see it is
clean, bookkeeping) and the command encoder, which together cost about as much client time as
the round trip itself for a small XADD. It also skips redis-py's retry, which would resend a
first send as it is, without the dedupe lookups; the producer resends itself (`resent`).

A connection error or timeout gives the connection back to the pool, disconnected, and is raised
(the next call checks out another); error replies come back as `ResponseError` values in place. The pool's `close` /
`disconnect` closes this connection too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import ResponseError

Command = Sequence[Any]


_PACKED: dict[str | int, bytes] = {}  # the arguments that repeat: names, keys, counts, flags
_MAX_PACKED = 4096


def _packed(arg: str | int) -> bytes:
    data = arg.encode() if isinstance(arg, str) else b"%d" % arg
    if len(_PACKED) >= _MAX_PACKED:
        _PACKED.clear()
    out = _PACKED[arg] = b"$%d\r\n%b\r\n" % (len(data), data)
    return out


def pack(commands: Sequence[Command]) -> bytes:
    """RESP arrays of bulk strings, as redis-py would send them, for bytes, str and int arguments.
    bytes (the encoded jobs) are packed as they come; str and int are remembered packed."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for arg in command:
            kind = type(arg)
            if kind is bytes:
                parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
            elif kind is str or kind is int:
                parts.append(_PACKED.get(arg) or _packed(arg))
            else:
                raise TypeError(f"an enqueue command argument must be bytes, str or int, not {kind.__name__}")
    return b"".join(parts)


def holdable(client: Any) -> bool:
    """True for a client whose pool can lend the producer a connection (not a Cluster, not a
    single-connection client, which has no pool to borrow from)."""
    return isinstance(client, redis.Redis | redis.asyncio.Redis) and client.connection is None


class HeldConnection:
    """One connection of a sync client's pool, kept by the producer (re-taken after a fork)."""

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        self._conn: Any = None
        self._pid = 0

    def _connection(self) -> Any:
        if self._conn is None or self._pid != os.getpid():
            self._conn = self._pool.get_connection()  # a forked child takes its own
            self._pid = os.getpid()
        return self._conn

    def execute(self, commands: Sequence[Command]) -> list[Any]:
        """The replies, in order; one round trip."""
        conn = self._connection()
        try:
            conn.send_packed_command([pack(commands)])
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as e:
                    replies.append(e)
            return replies
        except BaseException:
            # replies may be left unread: drop the connection. The next call takes a new one from
            # the pool, whose checkout reconnects the way the pool does (a Sentinel pool asks the
            # sentinels for the primary again: after a failover the old address is a replica).
            conn.disconnect()
            self._pool.release(conn)
            self._conn = None
            raise

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._pool.release(self._conn)
        self._conn = None


class AsyncHeldConnection:
    """`HeldConnection` for a `redis.asyncio` client (one event loop's, as its producer is)."""

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        self._conn: Any = None

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        if self._conn is None:
            self._conn = await self._pool.get_connection()
        conn = self._conn
        try:
            await conn.send_packed_command([pack(commands)])
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as e:
                    replies.append(e)
            return replies
        except BaseException:
            self._conn = None
            await conn.disconnect(nowait=True)
            await self._pool.release(conn)
            raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._pool.release(self._conn)
        self._conn = None

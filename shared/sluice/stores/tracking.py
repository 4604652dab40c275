"""An in-process cache of hot values, invalidated by the server (RESP3 client-side caching).

`TrackedReads` owns one RESP3 connection with ``CLIENT TRACKING ON`` (default mode): the server
remembers the keys read on it and pushes an invalidation when any client changes, deletes or
expires one of them. Before serving a value from memory the connection is polled (no round
trip) and pending invalidations are applied, so a value changed by another client is not served
once its invalidation has reached this process. Values also carry the TTL read with them
(``GET`` + ``PTTL``, one round trip) and are dropped locally at that deadline, without waiting
for the server's lazy expiry.

Anything wrong with the connection (closed, reconnected, failover) empties the local cache:
tracking state lives on the connection, so a new connection knows nothing we hold. Standalone
and Sentinel-managed servers only (a Cluster would need one tracked connection per node).
Thread-safe; sync only (asyncio lookups go to Redis).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from redis.exceptions import RedisError, ResponseError

from sluice.errors import InvalidArgument
from sluice.transport.translate import translate_errors

log = logging.getLogger(__name__)

T = TypeVar("T")
MISSING: Final = object()
"""Returned by `TrackedReads.get` when the key is not held locally."""


class TrackedReads(Generic[T]):
    """Hot keys kept in memory; `get` never does a round trip, `fetch` does one and tracks the key."""

    def __init__(self, redis_resp3: Any, *, max_entries: int = 10_000, max_age: float | None = None) -> None:
        if max_entries < 1:
            raise InvalidArgument(
                f"local_cache (max_entries) must be at least 1 entry, or 0/None for none; not {max_entries}"
            )
        self._redis = redis_resp3
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: OrderedDict[str, tuple[T, float]] = OrderedDict()
        self._inflight: dict[str, object] = {}
        self._conn: Any = None
        self._poller: Any = None  # poll object on the tracked socket: a cheap "anything to read?"
        self._lock = threading.RLock()
        self.invalidations = 0
        self.local_hits = 0

    # --- reading ---------------------------------------------------------------------------------
    def get(self, key: str) -> T | object:
        """The value held for `key`, or `MISSING`; applies pending invalidations first."""
        with self._lock:
            if not self._entries:
                return MISSING
            self._drain()
            item = self._entries.get(key)
            if item is None:
                return MISSING
            value, deadline = item
            if deadline and time.monotonic() >= deadline:
                del self._entries[key]
                return MISSING
            self._entries.move_to_end(key)
            self.local_hits += 1
            return value

    def fetch(self, key: str, parse: Callable[[Any], T | None]) -> T | None:
        """Read `key` on the tracked connection; keep the parsed value unless it changed meanwhile."""
        token = object()
        with self._lock:
            conn = self._connection()
            self._drain()
            self._inflight[key] = token
            try:
                with translate_errors("read a tracked cache key"):
                    conn.send_packed_command(conn.pack_commands([("GET", key), ("PTTL", key)]))
                    try:
                        raw: Any = conn.read_response()
                    except ResponseError as e:  # e.g. WRONGTYPE: not a value this cache can hold
                        log.warning("tracked read of %s: %s; treated as a miss", key, e)
                        raw = None
                    pttl = int(conn.read_response())
            except BaseException:
                self._reset()
                raise
        value = parse(raw)  # decoding outside the lock
        with self._lock:
            self._drain()
            if self._inflight.get(key) is not token:
                return value  # invalidated while in flight, or the connection was reset: do not keep
            del self._inflight[key]
            if value is not None and pttl != -2:
                self._keep(key, value, pttl)
        return value

    def _keep(self, key: str, value: T, pttl: int) -> None:
        ages = [a for a in (pttl / 1000 if pttl > 0 else None, self.max_age) if a is not None]
        deadline = time.monotonic() + min(ages) if ages else 0.0
        self._entries[key] = (value, deadline)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._inflight.pop(key, None)

    def clear_local(self) -> None:
        with self._lock:
            self._entries.clear()
            self._inflight.clear()

    # --- the tracked connection ----------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None:
            with translate_errors("open the tracked cache connection"):
                conn = self._redis.connection_pool.get_connection()
                try:
                    self._enable_tracking(conn)
                except BaseException:
                    self._redis.connection_pool.release(conn)
                    raise
            conn.register_connect_callback(self._on_reconnect)
            self._conn = conn
        return self._conn

    def _enable_tracking(self, conn: Any) -> None:
        conn._parser.set_invalidation_push_handler(self._on_invalidate)
        conn.send_command("CLIENT", "TRACKING", "ON")
        conn.read_response()
        sock = getattr(conn, "_sock", None)
        self._poller = None
        if sock is not None and hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)

    def _readable(self, conn: Any) -> bool:
        """Pending input, without a read attempt where possible (this runs on every local hit)."""
        buffer = getattr(conn._parser, "_buffer", None)
        if self._poller is None or buffer is None:
            return bool(conn.can_read(timeout=0))  # e.g. the hiredis parser: let redis-py look
        return bool(buffer.unread_bytes()) or bool(self._poller.poll(0))

    def _on_reconnect(self, conn: Any) -> None:
        # redis-py reconnected under us: the new connection tracks nothing we hold.
        with self._lock:
            self._entries.clear()
            self._inflight.clear()
            self._enable_tracking(conn)

    def _on_invalidate(self, push: list[Any]) -> None:
        keys = push[1] if len(push) > 1 else None
        self.invalidations += 1
        if keys is None:  # FLUSHDB / FLUSHALL, or the server dropped its tracking table
            self._entries.clear()
            self._inflight.clear()
            return
        for k in keys:
            name = k.decode() if isinstance(k, bytes) else str(k)
            self._entries.pop(name, None)
            self._inflight.pop(name, None)

    def _drain(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while self._readable(conn):
                conn.read_response(push_request=True, disconnect_on_error=True)
        except (RedisError, OSError) as e:
            log.warning("tracked cache connection lost (%s); local entries dropped", e)
            self._reset()

    def _reset(self) -> None:
        self._entries.clear()
        self._inflight.clear()
        conn, self._conn, self._poller = self._conn, None, None
        if conn is not None:
            conn.deregister_connect_callback(self._on_reconnect)
            conn.disconnect()
            self._redis.connection_pool.release(conn)

    def close(self) -> None:
        """Drop the local entries and the tracked connection."""
        with self._lock:
            self._reset()

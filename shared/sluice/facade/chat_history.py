"""LangChain `BaseChatMessageHistory` over sluice: appends enqueue, reads are one ZRANGE.

By default a history reads its own writes: `messages`, `get_recent` and `relevant` first wait
(bounded by `wait_timeout`) for the pending appends, clears and deletes *of this session* made
through the same `Client` — by this object or another one for the same session, so that
``RunnableWithMessageHistory(chain, lambda sid: client.chat_history(sid))``, which builds a new
history per call, still sees the previous turn. Writes to other sessions are never waited for.
`read_your_writes=False` makes appends fire-and-forget, for logging-style use. ``write="buffered"``
returns from an append before the job is enqueued (a background thread sends it within about a
millisecond; see `sluice.facade.buffer` for what that trades away). `ttl` (seconds) is
refreshed on every write; `max_messages` keeps the newest ones. `delete()` removes the session
(through the queue, so it lands after this object's earlier appends). With `embedder=` (a
settings name) or `semantic=True` the workers also index each message for `relevant(query, k)`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from sluice.errors import ConfigError, JobFailed
from sluice.facade.buffer import buffer_for, tickets_for
from sluice.facade.memory import Recall
from sluice.facade.pending import PendingWrites
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import AsyncHistoryStore, HistoryOp, HistoryStore
from sluice.stores.messages import to_compact_dicts

if TYPE_CHECKING:
    from sluice.facade.client import Client


WriteMode = Literal["sync", "buffered"]
_PENDING: weakref.WeakKeyDictionary[Client, PendingWrites] = weakref.WeakKeyDictionary()
_PENDING_LOCK = threading.Lock()


def shared_pending(client: Client) -> PendingWrites:
    """The pending history writes of one client, by session (shared by its history objects)."""
    with _PENDING_LOCK:
        pending = _PENDING.get(client)
        if pending is None:
            pending = _PENDING[client] = PendingWrites()
        return pending


class ChatHistory(BaseChatMessageHistory):
    """Use `client.chat_history(session_id)`; works with `RunnableWithMessageHistory`."""

    def __init__(
        self,
        client: Client,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        embedder: str | None = None,
        write: WriteMode = "sync",
    ) -> None:
        if write not in ("sync", "buffered"):
            raise ValueError(f"write must be 'sync' or 'buffered', not {write!r}")
        if not session_id:
            raise ValueError("session_id must be a non-empty string")
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive seconds, or None for a session that does not expire")
        if max_messages is not None and max_messages < 1:
            raise ValueError("max_messages must be at least 1, or None to keep every message")
        self.client = client
        self.session_id = session_id
        self.ttl = ttl
        self.max_messages = max_messages
        self.read_your_writes = read_your_writes
        self.wait_timeout = wait_timeout
        self.embedder = embedder
        self.write: WriteMode = write
        self.recall = Recall(client, embedder) if embedder else None
        self._pending = shared_pending(client)
        self._tickets = tickets_for(client)
        self._store: HistoryStore | None = None

    def _payload(self, op: HistoryOp, messages: Sequence[BaseMessage] = ()) -> HistoryAppendPayload:
        return HistoryAppendPayload(
            session_id=self.session_id,
            op=op,
            messages=to_compact_dicts(messages),
            ttl=self.ttl,
            max_messages=self.max_messages,
            embedder=self.embedder,
        )

    def _sync_store(self) -> HistoryStore:
        if self._store is None:
            self._store = HistoryStore(self.client.redis, self.client.keys)
        return self._store

    def _no_recall(self) -> ConfigError:
        return ConfigError(
            f"session {self.session_id!r} is not indexed for recall; make the history with "
            "client.chat_history(session_id, embedder='<settings embedder>') or semantic=True"
        )

    # --- sync ----------------------------------------------------------------------------------
    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        self._settle()
        return self._sync_store().read(self.session_id)

    def get_recent(self, k: int) -> list[BaseMessage]:
        """The last `k` messages, oldest first (one round trip)."""
        if k < 1:
            raise ValueError("k must be at least 1")
        self._settle()
        return self._sync_store().read(self.session_id, last=k)

    def relevant(
        self, query: str, k: int = 4, *, distance_threshold: float | None = None
    ) -> list[BaseMessage]:
        """The `k` past messages of this session most similar to `query`, nearest first."""
        return [m for m, _ in self.relevant_with_scores(query, k, distance_threshold=distance_threshold)]

    def relevant_with_scores(
        self, query: str, k: int = 4, *, distance_threshold: float | None = None
    ) -> list[tuple[BaseMessage, float]]:
        """Like `relevant`, with each message's cosine distance to the query."""
        if self.recall is None:
            raise self._no_recall()
        self._settle()
        found = self.recall.search(query, k, self.session_id, distance_threshold)
        return [(f.message, f.distance) for f in found]

    def _enqueue(self, op: HistoryOp, messages: Sequence[BaseMessage] = ()) -> None:
        if self.recall is not None and op == "append":
            self.recall.open()  # the workers write into the index: it must exist first
        handles = self.client.producer.enqueue_many(
            [self._payload(op, messages)], notify=self.read_your_writes
        )
        if self.read_your_writes:
            self._pending.add(self.session_id, handles)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if messages:
            self._enqueue("append", messages)

    def clear(self) -> None:
        self._enqueue("clear")

    def delete(self) -> None:
        """Remove the session: its messages, its vectors and its entry in `client.sessions()`."""
        self._enqueue("delete")

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every write this object made is applied."""
        self._settle(timeout)

    def _buffered(self, timeout: float) -> None:
        """Wait until this session's buffered jobs are enqueued; then they are pending like others."""
        handles, error = self._tickets.resolve(self.session_id, timeout)
        if handles and self.read_your_writes:
            self._pending.add(self.session_id, handles)
        if error is not None:
            raise error

    def _settle(self, timeout: float | None = None) -> None:
        self._buffered(self._timeout(timeout))
        pending = self._pending.for_keys([self.session_id])
        if pending:
            try:
                self.client.wait(pending, timeout or self.wait_timeout)
            except JobFailed:
                self._pending.done(pending)  # reported once; a timeout keeps them pending
                raise
            self._pending.done(pending)

    # --- asyncio -------------------------------------------------------------------------------
    async def aget_messages(self) -> list[BaseMessage]:
        await self._asettle()
        return await AsyncHistoryStore(self.client.async_redis, self.client.keys).read(self.session_id)

    async def aget_recent(self, k: int) -> list[BaseMessage]:
        if k < 1:
            raise ValueError("k must be at least 1")
        await self._asettle()
        return await AsyncHistoryStore(self.client.async_redis, self.client.keys).read(
            self.session_id, last=k
        )

    async def arelevant(
        self, query: str, k: int = 4, *, distance_threshold: float | None = None
    ) -> list[BaseMessage]:
        if self.recall is None:
            raise self._no_recall()
        await self._asettle()
        found = await self.recall.asearch(query, k, self.session_id, distance_threshold)
        return [f.message for f in found]

    async def _aenqueue(self, op: HistoryOp, messages: Sequence[BaseMessage] = ()) -> None:
        if self.recall is not None and op == "append":
            await self.recall.aopen()
        if self._buffer(op, messages):
            return
        handles = await self.client.aproducer.enqueue_many(
            [self._payload(op, messages)], notify=self.read_your_writes
        )
        if self.read_your_writes:
            self._pending.add(self.session_id, handles)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if messages:
            await self._aenqueue("append", messages)

    async def aclear(self) -> None:
        await self._aenqueue("clear")

    async def adelete(self) -> None:
        await self._aenqueue("delete")

    async def aflush(self) -> None:
        await self._asettle()

    async def _asettle(self) -> None:
        if self.write == "buffered":
            await asyncio.to_thread(self._buffered, self._timeout())
        pending = self._pending.for_keys([self.session_id])
        if pending:
            try:
                await self.client.await_(pending, self.wait_timeout)
            except JobFailed:
                self._pending.done(pending)
                raise
            self._pending.done(pending)

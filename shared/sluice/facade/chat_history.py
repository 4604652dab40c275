"""LangChain `BaseChatMessageHistory` over sluice: appends enqueue, reads are one ZRANGE.

By default a history reads its own writes: `messages`, `get_recent` and `relevant` first wait
(bounded by `wait_timeout`) for the pending appends, clears and deletes *of this session* made
through the same `Client` — by this object or another one for the same session, so that
``RunnableWithMessageHistory(chain, lambda sid: client.chat_history(sid))``, which builds a new
history per call, still sees the previous turn. Writes to other sessions are never waited for.
When the workers are late past `wait_timeout`, the read goes on without those writes and logs a
warning (``on_timeout="warn"``, the default: a conversation keeps answering while its workers
are down, and later turns do not wait again until they catch up); ``on_timeout="raise"`` raises
`WaitTimeout` instead. `flush()` always raises. `read_your_writes=False` makes appends
fire-and-forget, for logging-style use. Appends enqueue in the call (``write="enqueued"``);
``write="buffered"`` returns from an append before the job is enqueued (a background thread sends it within about a
millisecond; see `sluice.facade.buffer` for what that trades away). `ttl` (seconds) is
refreshed on every write; `max_messages` keeps the newest ones. `delete()` removes the session
(through the queue, so it lands after this object's earlier appends). With `embedder=` (a
settings name) or `semantic=True` the workers also index each message for `relevant(query, k)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, RemoveMessage

from sluice.core import check_timeout
from sluice.errors import ConfigError, InvalidArgument, InvalidArgumentType, JobFailed
from sluice.facade.buffer import buffer_for, writes_for
from sluice.facade.memory import Recall
from sluice.facade.pending import await_writes, wait_for_writes
from sluice.facade.policy import OnTimeout, WriteMode, check_count, check_ttl, on_timeout_policy, write_mode
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import AsyncHistoryStore, HistoryOp, HistoryStore
from sluice.stores.messages import NOT_KEPT, to_compact_dicts

if TYPE_CHECKING:
    from sluice.core import Core


def _checked(messages: Sequence[BaseMessage]) -> Sequence[BaseMessage]:
    """`messages`, refused by name unless each is a message a conversation keeps."""
    if isinstance(messages, (str, BaseMessage)):
        raise InvalidArgumentType("add_messages takes a list of LangChain messages, not one message or a str")
    for m in messages:
        if not isinstance(m, BaseMessage):
            raise InvalidArgumentType(
                f"add_messages takes LangChain messages (BaseMessage), not {type(m).__name__}"
            )
        if isinstance(m, RemoveMessage):
            raise InvalidArgument(f"{NOT_KEPT}; use clear() or delete() to remove messages")
    return messages


class ChatHistory(BaseChatMessageHistory):
    """Use `client.chat_history(session_id)`; works with `RunnableWithMessageHistory`."""

    def __init__(
        self,
        client: Core,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        embedder: str | None = None,
        write: WriteMode | str = "enqueued",
        on_timeout: OnTimeout = "warn",
    ) -> None:
        self.write: WriteMode = write_mode(write, "chat_history", ("enqueued", "buffered"))
        if not isinstance(session_id, str):
            raise InvalidArgumentType(f"session_id must be a string, not {type(session_id).__name__}")
        if not session_id:
            raise InvalidArgument("session_id must be a non-empty string")
        self.client = client
        self.session_id = session_id
        self.ttl = check_ttl(ttl, "sessions")
        self.max_messages = check_count(max_messages, "max_messages", none="to keep every message")
        self.read_your_writes = read_your_writes
        self.wait_timeout = None if wait_timeout is None else check_timeout(wait_timeout, "wait_timeout")
        self.on_timeout: OnTimeout = on_timeout_policy(on_timeout, "chat_history")
        self.embedder = embedder
        self.recall = Recall(client, embedder) if embedder else None
        self._writes = writes_for(client)
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
        check_count(k, "k")
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

    def _timeout(self, timeout: float | None = None) -> float:
        if timeout is not None:
            return check_timeout(timeout)
        return self.client.wait_budget(self.wait_timeout)

    def _buffer(self, op: HistoryOp, messages: Sequence[BaseMessage]) -> bool:
        """Buffer the job (write="buffered"); False when it is to be enqueued in the call."""
        if self.write != "buffered":
            return False
        payload = self._payload(op, messages)
        ticket = buffer_for(self.client).submit(payload, self.read_your_writes, self._timeout())
        if self.read_your_writes:  # fire-and-forget keeps nothing (a failed send is logged)
            self._writes.add(self.session_id, [ticket])
        return True

    def _enqueue(self, op: HistoryOp, messages: Sequence[BaseMessage] = ()) -> None:
        if self.recall is not None and op == "append":
            self.recall.open()  # the workers write into the index: it must exist first
        if self._buffer(op, messages):
            return
        handles = self.client.producer.enqueue_many(
            [self._payload(op, messages)], notify=self.read_your_writes
        )
        if self.read_your_writes:
            self._writes.add(self.session_id, handles)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if _checked(messages):
            self._enqueue("append", messages)

    def clear(self) -> None:
        self._enqueue("clear")

    def delete(self) -> None:
        """Remove the session: its messages, its vectors and its entry in `client.sessions()`."""
        self._enqueue("delete")

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every write to this session is applied; raises `WaitTimeout` or `JobFailed`."""
        self._settle(timeout, "raise")

    def _settle(self, timeout: float | None = None, policy: OnTimeout | None = None) -> None:
        budget = self._timeout(timeout)
        pending = self._writes.handles(self.session_id, budget)
        if not pending:
            return
        try:
            applied = wait_for_writes(self.client, pending, {}, budget, policy or self.on_timeout, self._what)
        except JobFailed:
            self._writes.done(self.session_id, pending)  # reported once; a timeout keeps them
            raise
        if applied:
            self._writes.done(self.session_id, pending)

    @property
    def _what(self) -> str:
        return f"chat history {self.session_id!r}"

    # --- asyncio -------------------------------------------------------------------------------
    async def aget_messages(self) -> list[BaseMessage]:
        await self._asettle()
        return await AsyncHistoryStore(self.client.async_redis, self.client.keys).read(self.session_id)

    async def aget_recent(self, k: int) -> list[BaseMessage]:
        check_count(k, "k")
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
            self._writes.add(self.session_id, handles)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if _checked(messages):
            await self._aenqueue("append", messages)

    async def aclear(self) -> None:
        await self._aenqueue("clear")

    async def adelete(self) -> None:
        await self._aenqueue("delete")

    async def aflush(self, timeout: float | None = None) -> None:
        await self._asettle(timeout, "raise")

    async def _asettle(self, timeout: float | None = None, policy: OnTimeout | None = None) -> None:
        budget = self._timeout(timeout)
        if self.write == "buffered":  # a buffered job is resolved by a thread: wait off the loop
            pending = await asyncio.to_thread(self._writes.handles, self.session_id, budget)
        else:
            pending = self._writes.handles(self.session_id, budget)
        if not pending:
            return
        try:
            applied = await await_writes(
                self.client, pending, {}, budget, policy or self.on_timeout, self._what
            )
        except JobFailed:
            self._writes.done(self.session_id, pending)
            raise
        if applied:
            self._writes.done(self.session_id, pending)

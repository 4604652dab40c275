"""LangChain `BaseChatMessageHistory` over sluice: appends enqueue, reads are one ZRANGE.

By default the object reads its own writes: `messages` first waits (bounded by `wait_timeout`)
for this object's pending appends and clears to be applied. `read_your_writes=False` makes it
fire-and-forget, for logging-style use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from sluice.errors import JobFailed
from sluice.facade.pending import PendingWrites
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import AsyncHistoryStore, HistoryStore
from sluice.stores.messages import to_dicts

if TYPE_CHECKING:
    from sluice.facade.client import Client


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
    ) -> None:
        if not session_id:
            raise ValueError("session_id must be a non-empty string")
        self.client = client
        self.session_id = session_id
        self.ttl = ttl
        self.max_messages = max_messages
        self.read_your_writes = read_your_writes
        self.wait_timeout = wait_timeout
        self._pending = PendingWrites()
        self._store: HistoryStore | None = None

    def _payload(
        self, op: Literal["append", "clear"], messages: Sequence[BaseMessage] = ()
    ) -> HistoryAppendPayload:
        return HistoryAppendPayload(
            session_id=self.session_id,
            op=op,
            messages=to_dicts(messages),
            ttl=self.ttl,
            max_messages=self.max_messages,
        )

    def _sync_store(self) -> HistoryStore:
        if self._store is None:
            self._store = HistoryStore(self.client.redis, self.client.keys)
        return self._store

    # --- sync ----------------------------------------------------------------------------------
    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        self._settle()
        return self._sync_store().read(self.session_id)

    def get_recent(self, k: int) -> list[BaseMessage]:
        """The last `k` messages (one round trip)."""
        self._settle()
        return self._sync_store().read(self.session_id, last=k)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        handles = self.client.producer.enqueue_many(
            [self._payload("append", messages)], notify=self.read_your_writes
        )
        if self.read_your_writes:
            self._pending.add(self.session_id, handles)

    def clear(self) -> None:
        handles = self.client.producer.enqueue_many([self._payload("clear")], notify=self.read_your_writes)
        if self.read_your_writes:
            self._pending.add(self.session_id, handles)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every write this object made is applied."""
        self._settle(timeout)

    def _settle(self, timeout: float | None = None) -> None:
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

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        handles = await self.client.aproducer.enqueue_many(
            [self._payload("append", messages)], notify=self.read_your_writes
        )
        if self.read_your_writes:
            self._pending.add(self.session_id, handles)

    async def aclear(self) -> None:
        handles = await self.client.aproducer.enqueue_many(
            [self._payload("clear")], notify=self.read_your_writes
        )
        if self.read_your_writes:
            self._pending.add(self.session_id, handles)

    async def _asettle(self) -> None:
        pending = self._pending.for_keys([self.session_id])
        if pending:
            try:
                await self.client.await_(pending, self.wait_timeout)
            except JobFailed:
                self._pending.done(pending)
                raise
            self._pending.done(pending)

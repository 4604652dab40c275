"""LangChain `BaseChatMessageHistory` over sluice: appends enqueue, reads are one ZRANGE.

By default a history reads its writes: `messages`, `get_recent` and `relevant` first wait
(bounded by `wait_timeout`) for every append, clear and delete *of this session* that Redis has
accepted — made through this `Client` or by another app process (a replica behind the same load
balancer), so that turn 2 of a conversation served elsewhere than turn 1 still sees turn 1, and
``RunnableWithMessageHistory(chain, lambda sid: client.chat_history(sid))``, which builds a new
history per call, sees the previous turn. The check is the session's pending set
(`sluice.facade.history_reads`), read in the same round trip as the messages: nothing more to pay
when nothing is pending. Writes to other sessions are never waited for. When the workers are late past `wait_timeout`, the read goes on without those writes and logs a
warning (``on_timeout="warn"``, the default: a conversation keeps answering while its workers
are down, and later turns do not wait again until they catch up); ``on_timeout="raise"`` raises
`WaitTimeout` instead. `flush()` always raises. `read_your_writes=False` makes appends
fire-and-forget (untracked) and reads wait for nothing, for logging-style use. Appends enqueue in the call (``write="enqueued"``);
``write="buffered"`` returns from an append before the job is enqueued (a background thread sends it within about a
millisecond; see `sluice.facade.buffer` for what that trades away). `ttl` (seconds) is
refreshed on every write; `max_messages` keeps the newest ones. `delete()` removes the session
(through the queue, so it lands after this object's earlier appends). With `embedder=` (a
settings name) or `semantic=True` the workers also index each message for `relevant(query, k)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, RemoveMessage

from sluice.core import check_timeout
from sluice.errors import ConfigError, InvalidArgument, InvalidArgumentType
from sluice.facade.buffer import buffer_for, writes_for
from sluice.facade.history_reads import HistoryReads
from sluice.facade.memory import Recall
from sluice.facade.policy import OnTimeout, WriteMode, check_count, check_ttl, on_timeout_policy, write_mode
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import HistoryOp, parse_read, read_call
from sluice.stores.messages import NOT_KEPT, to_compact_dicts
from sluice.transport.runner import AsyncRunner, Call, Runner

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
        self._reads = HistoryReads(client, session_id, self._writes, what=self._what)
        self._runner: Runner | None = None
        self._arunner: AsyncRunner | None = None

    def _payload(self, op: HistoryOp, messages: Sequence[BaseMessage] = ()) -> HistoryAppendPayload:
        return HistoryAppendPayload(
            session_id=self.session_id,
            op=op,
            messages=to_compact_dicts(messages),
            ttl=self.ttl,
            max_messages=self.max_messages,
            embedder=self.embedder,
        )

    def _sync_runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(self.client.redis, cluster=self.client.capabilities.cluster)
        return self._runner

    async def _async_runner(self) -> AsyncRunner:
        """The running event loop's runner (each loop has its own connections)."""
        redis = self.client.async_redis
        if self._arunner is None or self._arunner.redis is not redis:
            self._arunner = AsyncRunner(redis, cluster=(await self.client.acapabilities()).cluster)
        return self._arunner

    def _read_call(self, last: int | None = None) -> Call:
        return read_call(self.client.keys, self.session_id, last)

    def _no_recall(self) -> ConfigError:
        return ConfigError(
            f"session {self.session_id!r} is not indexed for recall; make the history with "
            "client.chat_history(session_id, embedder='<settings embedder>') or semantic=True"
        )

    # --- sync ----------------------------------------------------------------------------------
    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        call = self._read_call()
        (reply,) = self._read([call])
        return parse_read(reply, call.route)

    def get_recent(self, k: int) -> list[BaseMessage]:
        """The last `k` messages, oldest first (one round trip)."""
        check_count(k, "k")
        call = self._read_call(k)
        (reply,) = self._read([call])
        return parse_read(reply, call.route)

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
        self._read([])  # the pending set alone (the search is another round trip)
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
            [self._payload(op, messages)], notify=self.read_your_writes, track=self.read_your_writes
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
        """Wait until every accepted write to this session is applied (by any process); raises
        `WaitTimeout` or `JobFailed` (a write of this client that was dead-lettered)."""
        self._read([], timeout, "raise")

    def _read(
        self, calls: Sequence[Call], timeout: float | None = None, policy: OnTimeout | None = None
    ) -> list[Any]:
        """Replies to `calls` once every accepted write to the session is applied."""
        runner = self._sync_runner()
        if not self.read_your_writes:
            return runner.run(calls)
        budget = self._timeout(timeout)
        own = self._writes.handles(self.session_id, budget)
        return self._reads.read(runner, own, calls, budget, policy or self.on_timeout)

    @property
    def _what(self) -> str:
        return f"chat history {self.session_id!r}"

    # --- asyncio -------------------------------------------------------------------------------
    async def aget_messages(self) -> list[BaseMessage]:
        call = self._read_call()
        (reply,) = await self._aread([call])
        return parse_read(reply, call.route)

    async def aget_recent(self, k: int) -> list[BaseMessage]:
        check_count(k, "k")
        call = self._read_call(k)
        (reply,) = await self._aread([call])
        return parse_read(reply, call.route)

    async def arelevant(
        self, query: str, k: int = 4, *, distance_threshold: float | None = None
    ) -> list[BaseMessage]:
        if self.recall is None:
            raise self._no_recall()
        await self._aread([])
        found = await self.recall.asearch(query, k, self.session_id, distance_threshold)
        return [f.message for f in found]

    async def _aenqueue(self, op: HistoryOp, messages: Sequence[BaseMessage] = ()) -> None:
        if self.recall is not None and op == "append":
            await self.recall.aopen()
        if self._buffer(op, messages):
            return
        handles = await self.client.aproducer.enqueue_many(
            [self._payload(op, messages)], notify=self.read_your_writes, track=self.read_your_writes
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
        await self._aread([], timeout, "raise")

    async def _aread(
        self, calls: Sequence[Call], timeout: float | None = None, policy: OnTimeout | None = None
    ) -> list[Any]:
        runner = await self._async_runner()
        if not self.read_your_writes:
            return await runner.run(calls)
        budget = self._timeout(timeout)
        if self.write == "buffered":  # a buffered job is resolved by a thread: wait off the loop
            own = await asyncio.to_thread(self._writes.handles, self.session_id, budget)
        else:
            own = self._writes.handles(self.session_id, budget)
        return await self._reads.aread(runner, own, calls, budget, policy or self.on_timeout)

"""LangGraph `BaseCheckpointSaver` over sluice: writes are jobs, reads are one round trip.

`put` and `put_writes` enqueue a ``checkpoint`` job routed by thread id (so a thread's writes are
applied in order, once, by the workers) and return; with LangGraph's ``durability="sync"`` (or
``write="applied"``) they return only once the job is applied, so a failed write fails the step.
A read (`get_tuple`, `list`) sees every write to its thread that Redis accepted, from any process
(`sluice.facade.consistency`): a thread started on one app replica continues on another. It reads
the checkpoint, its blobs and its pending writes in one script call, in the same round trip as
the check for pending writes. `ttl` (seconds) applies per thread, refreshed on every write and,
with `refresh_on_read`, on every read. `read_your_writes=False` makes writes fire-and-forget.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from sluice.errors import ConfigError, InvalidArgument
from sluice.facade import checkpoint_codec as codec
from sluice.facade.consistency import ReplicaReads
from sluice.jobs.models import CheckpointPayload
from sluice.stores import checkpoints as store
from sluice.transport.runner import AsyncRunner, Call, Runner
from sluice.types import StreamEntryRef

if TYPE_CHECKING:
    from sluice.core import Core

WriteMode = Literal["auto", "applied", "enqueued"]
PAGE = 50  # checkpoints per listing call


class SluiceCheckpointer(BaseCheckpointSaver[str]):
    """Use `client.checkpointer()`; pass it to `StateGraph.compile(checkpointer=...)`."""

    def __init__(
        self,
        client: Core,
        *,
        ttl: float | None = None,
        refresh_on_read: bool = True,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        write: WriteMode = "auto",
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        if write not in ("auto", "applied", "enqueued"):
            raise InvalidArgument(f"write must be 'auto', 'applied' or 'enqueued', not {write!r}")
        if ttl is not None and ttl <= 0:
            raise InvalidArgument("ttl must be positive seconds, or None for threads that do not expire")
        self.client = client
        self.ttl = ttl
        self.refresh_on_read = refresh_on_read
        self.read_your_writes = read_your_writes
        self.write: WriteMode = write
        self.reads = ReplicaReads(client, "checkpoint", enabled=read_your_writes, timeout=wait_timeout)
        self._runner: Runner | None = None
        self._arunner: AsyncRunner | None = None

    # --- plumbing ----------------------------------------------------------------------------
    def _sync_runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(self.client.redis, cluster=self.client.capabilities.cluster)
        return self._runner

    async def _async_runner(self) -> AsyncRunner:
        """The running event loop's runner (each loop has its own connections)."""
        redis = self.client.async_redis
        if self._arunner is None or self._arunner.redis is not redis:
            caps = await self.client.acapabilities()
            self._arunner = AsyncRunner(redis, cluster=caps.cluster)
        return self._arunner

    def _waits(self, config: RunnableConfig | None) -> bool:
        """Does this write return only once applied? LangGraph's durability="sync" says so."""
        if self.write != "auto":
            return self.write == "applied"
        conf = (config or {}).get("configurable") or {}
        return bool(conf.get(codec.DURABILITY_KEY) == "sync")

    def _refresh(self, thread_id: str) -> list[Call]:
        if self.ttl and self.refresh_on_read:
            return store.refresh_calls(self.client.keys, thread_id, self.ttl)
        return []

    def _read_call(self, thread_id: str, ns: str, checkpoint_id: str | None) -> Call:
        keys = self.client.keys
        if checkpoint_id:
            return store.get_call(keys, thread_id, ns, [checkpoint_id])
        return store.latest_call(keys, thread_id, ns)

    def _chunks(self, payloads: Sequence[CheckpointPayload]) -> Iterator[Sequence[CheckpointPayload]]:
        """Enqueue calls of at most SLUICE_LIMITS__MAX_BATCH_JOBS jobs (a copy makes many)."""
        size = self.client.settings.limits.max_batch_jobs
        for start in range(0, len(payloads), size):
            yield payloads[start : start + size]

    def _enqueued(self, payloads: Sequence[CheckpointPayload], handles: Sequence[StreamEntryRef]) -> None:
        for p, h in zip(payloads, handles, strict=True):
            self.reads.wrote(codec.target(p.thread_id), [h])

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        return codec.next_version(current)

    # --- sync --------------------------------------------------------------------------------
    def _read(self, thread_id: str, calls: Sequence[Call]) -> Sequence[Any]:
        replies = self.reads.read(
            self._sync_runner(), codec.target(thread_id), [*calls, *self._refresh(thread_id)]
        )
        return replies[: len(calls)]

    def _enqueue(self, payloads: Sequence[CheckpointPayload], config: RunnableConfig | None = None) -> None:
        waits = self._waits(config)
        for chunk in self._chunks(payloads):
            handles = self.client.producer.enqueue_many(
                chunk, notify=self.read_your_writes or waits, track=self.read_your_writes
            )
            self._enqueued(chunk, handles)
            if waits:
                self.client.wait(handles, self.reads.timeout)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = codec.thread_of(config)
        (reply,) = self._read(thread_id, [self._read_call(thread_id, ns, checkpoint_id)])
        found = store.parse_read(reply, thread_id).checkpoints
        return codec.to_tuple(self.serde, thread_id, found[0]) if found else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        thread_id, ns, cid, before_id = _listing(config, before)
        left = limit
        cursor = b""
        first = True
        while left is None or left > 0:
            call = _list_call(self.client.keys, thread_id, ns, cid, before_id, cursor, left, filter)
            if first:
                (reply,) = self._read(thread_id, [call])
                first = False
            else:
                (reply,) = self._sync_runner().run([call])
            result = store.parse_read(reply, thread_id)
            for s in _matching(result.checkpoints, filter, cid):
                yield codec.to_tuple(self.serde, thread_id, s)
                if left is not None:
                    left -= 1
            if cid or not result.cursor:
                return
            cursor = result.cursor

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        payload = codec.put_payload(self.serde, config, checkpoint, metadata, new_versions, self.ttl)
        self._enqueue([payload], config)
        return codec.config_of(payload.thread_id, payload.ns, checkpoint["id"])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._enqueue(
            [codec.writes_payload(self.serde, config, writes, task_id, task_path, self.ttl)], config
        )

    def delete_thread(self, thread_id: str) -> None:
        self._enqueue([CheckpointPayload(thread_id=str(thread_id), op="delete")])

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._enqueue([_prune(t, strategy) for t in thread_ids])

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) of these runs, in every thread that has some.

        Waits first for this saver's own pending writes, so its runs' checkpoints are indexed;
        writes another process has not yet seen applied are not waited for."""
        runs = [str(r) for r in run_ids]
        if not runs:
            return
        self.reads.settle_own()
        replies = self._sync_runner().run(store.runs_calls(self.client.keys, runs))
        self._enqueue(codec.run_deletions(runs, replies))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        stored = [s for page in self._all(str(source_thread_id)) for s in page]
        if stored:
            self._enqueue(codec.copies(stored, str(target_thread_id), self.ttl))

    def _all(self, thread_id: str) -> Iterator[Sequence[store.StoredCheckpoint]]:
        cursor = b""
        first = True
        while True:
            call = store.list_call(self.client.keys, thread_id, None, cursor=cursor, limit=PAGE)
            if first:
                (reply,) = self._read(thread_id, [call])
                first = False
            else:
                (reply,) = self._sync_runner().run([call])
            result = store.parse_read(reply, thread_id)
            yield result.checkpoints
            if not result.cursor:
                return
            cursor = result.cursor

    def flush(self, thread_id: str) -> None:
        """Wait until every accepted write to the thread is applied."""
        self.reads.flush(codec.target(str(thread_id)))

    # --- asyncio -----------------------------------------------------------------------------
    async def _aread(self, thread_id: str, calls: Sequence[Call]) -> Sequence[Any]:
        runner = await self._async_runner()
        replies = await self.reads.aread(runner, codec.target(thread_id), [*calls, *self._refresh(thread_id)])
        return replies[: len(calls)]

    async def _aenqueue(
        self, payloads: Sequence[CheckpointPayload], config: RunnableConfig | None = None
    ) -> None:
        waits = self._waits(config)
        for chunk in self._chunks(payloads):
            handles = await self.client.aproducer.enqueue_many(
                chunk, notify=self.read_your_writes or waits, track=self.read_your_writes
            )
            self._enqueued(chunk, handles)
            if waits:
                await self.client.await_wait(handles, self.reads.timeout)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = codec.thread_of(config)
        (reply,) = await self._aread(thread_id, [self._read_call(thread_id, ns, checkpoint_id)])
        found = store.parse_read(reply, thread_id).checkpoints
        return codec.to_tuple(self.serde, thread_id, found[0]) if found else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        thread_id, ns, cid, before_id = _listing(config, before)
        left = limit
        cursor = b""
        first = True
        while left is None or left > 0:
            call = _list_call(self.client.keys, thread_id, ns, cid, before_id, cursor, left, filter)
            if first:
                (reply,) = await self._aread(thread_id, [call])
                first = False
            else:
                (reply,) = await (await self._async_runner()).run([call])
            result = store.parse_read(reply, thread_id)
            for s in _matching(result.checkpoints, filter, cid):
                yield codec.to_tuple(self.serde, thread_id, s)
                if left is not None:
                    left -= 1
            if cid or not result.cursor:
                return
            cursor = result.cursor

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        payload = codec.put_payload(self.serde, config, checkpoint, metadata, new_versions, self.ttl)
        await self._aenqueue([payload], config)
        return codec.config_of(payload.thread_id, payload.ns, checkpoint["id"])

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        payload = codec.writes_payload(self.serde, config, writes, task_id, task_path, self.ttl)
        await self._aenqueue([payload], config)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._aenqueue([CheckpointPayload(thread_id=str(thread_id), op="delete")])

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._aenqueue([_prune(t, strategy) for t in thread_ids])

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = [str(r) for r in run_ids]
        if not runs:
            return
        await self.reads.asettle_own()
        replies = await (await self._async_runner()).run(store.runs_calls(self.client.keys, runs))
        await self._aenqueue(codec.run_deletions(runs, replies))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        thread_id = str(source_thread_id)
        stored: builtins.list[store.StoredCheckpoint] = []
        cursor = b""
        while True:
            call = store.list_call(self.client.keys, thread_id, None, cursor=cursor, limit=PAGE)
            if not stored and not cursor:
                (reply,) = await self._aread(thread_id, [call])
            else:
                (reply,) = await (await self._async_runner()).run([call])
            result = store.parse_read(reply, thread_id)
            stored += result.checkpoints
            if not result.cursor:
                break
            cursor = result.cursor
        if stored:
            await self._aenqueue(codec.copies(stored, str(target_thread_id), self.ttl))

    async def aflush(self, thread_id: str) -> None:
        runner = await self._async_runner()
        await self.reads.aread(runner, codec.target(str(thread_id)), [])


def _listing(
    config: RunnableConfig | None, before: RunnableConfig | None
) -> tuple[str, str | None, str | None, str | None]:
    """(thread, namespace or None = all, checkpoint id, before id) of a listing."""
    if config is None:
        raise ConfigError(
            "sluice lists the checkpoints of one thread: pass config={'configurable': {'thread_id': ...}}"
        )
    thread_id, _, cid = codec.thread_of(config)
    ns = (config.get("configurable") or {}).get("checkpoint_ns")
    return thread_id, None if ns is None else str(ns), cid, get_checkpoint_id(before) if before else None


def _list_call(
    keys: Any,
    thread_id: str,
    ns: str | None,
    cid: str | None,
    before: str | None,
    cursor: bytes,
    left: int | None,
    filter: dict[str, Any] | None,
) -> Call:
    if cid:
        return store.get_call(keys, thread_id, ns or "", [cid])
    try:
        return store.list_call(
            keys, thread_id, ns, before=before, cursor=cursor, limit=min(left or PAGE, PAGE), filter=filter
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"list(filter=...) takes JSON values only: {e}") from None


def _matching(
    found: list[store.StoredCheckpoint], filter: dict[str, Any] | None, cid: str | None
) -> list[store.StoredCheckpoint]:
    """A listing by checkpoint id filters here; other listings were filtered by the script."""
    if not cid or not filter:
        return found
    return [s for s in found if all(s.metadata.get(k) == v for k, v in filter.items())]


def _prune(thread_id: str, strategy: str) -> CheckpointPayload:
    if strategy not in ("keep_latest", "delete"):
        raise InvalidArgument(f"prune strategy must be 'keep_latest' or 'delete', not {strategy!r}")
    return CheckpointPayload(thread_id=str(thread_id), op="prune" if strategy == "keep_latest" else "delete")

"""`sluice.Client`: the app's one entry point (connections, enqueue, wait, status, facades).

Building a Client does no I/O; connections open on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sluice.core import Core
from sluice.errors import ConfigError
from sluice.ops.status import Status, collect

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langgraph.checkpoint.serde.base import SerializerProtocol
    from langgraph.store.base import IndexConfig, TTLConfig

    from sluice.facade.chat_history import ChatHistory
    from sluice.facade.checkpointer import SluiceCheckpointer
    from sluice.facade.checkpointer import WriteMode as CheckpointWriteMode
    from sluice.facade.llm_cache import LLMCache
    from sluice.facade.memory import MemoryRetriever
    from sluice.facade.policy import OnTimeout, WriteMode
    from sluice.facade.semantic_cache import SemanticCache
    from sluice.facade.store import SluiceStore
    from sluice.facade.vectorstore import SluiceVectorStore
    from sluice.stores.sessions import SessionPage
    from sluice.stores.verify import Verifier
    from sluice.vectors.backend import BackendChoice
    from sluice.vectors.schema import Algorithm, IndexSchema


class Client(Core):
    """Use `Client.from_url(url, namespace=...)`, `Client(settings)` or `Client.from_redis(r)`."""

    def status(self) -> Status:
        return collect(self.redis, self.keys, self.settings.queue.group)

    # --- facades ---------------------------------------------------------------------------------
    def chat_history(
        self,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        embedder: str | None = None,
        semantic: bool = False,
        write: WriteMode | str = "enqueued",
        on_timeout: OnTimeout = "warn",
    ) -> ChatHistory:
        """A LangChain `BaseChatMessageHistory` whose appends go through the workers.

        `embedder` (a settings name) or `semantic=True` (the only settings embedder) also indexes
        each message for `history.relevant(query, k)`; that needs RediSearch or Redis 8.
        ``write="enqueued"`` (default) enqueues each append in the call; ``"buffered"`` returns before
        the job is enqueued (see `sluice.facade.buffer`). `on_timeout`: see `sluice.facade.policy`.
        """
        from sluice.facade.chat_history import ChatHistory
        from sluice.facade.memory import FEATURE, resolve_embedder
        from sluice.vectors.backend import choose

        name = resolve_embedder(self, embedder, semantic)
        if name is not None:
            choose(self.capabilities, "auto", FEATURE)
        return ChatHistory(
            self,
            session_id,
            ttl=ttl,
            max_messages=max_messages,
            read_your_writes=read_your_writes,
            wait_timeout=wait_timeout,
            embedder=name,
            write=write,
            on_timeout=on_timeout,
        )

    def checkpointer(
        self,
        *,
        ttl: float | None = None,
        refresh_on_read: bool = True,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        write: CheckpointWriteMode = "auto",
        serde: SerializerProtocol | None = None,
    ) -> SluiceCheckpointer:
        """A LangGraph `BaseCheckpointSaver` whose writes go through the workers (`pip install
        'sluice[langgraph]'`). `ttl` (seconds) expires idle threads; `write="applied"` makes every
        write wait until applied ("auto": when LangGraph runs with durability="sync")."""
        try:
            from sluice.facade.checkpointer import SluiceCheckpointer
        except ImportError as e:  # the optional extra is missing
            raise ConfigError(
                f"the checkpointer needs LangGraph ({e.name or e}): pip install 'sluice[langgraph]'"
            ) from None
        return SluiceCheckpointer(
            self,
            ttl=ttl,
            refresh_on_read=refresh_on_read,
            read_your_writes=read_your_writes,
            wait_timeout=wait_timeout,
            write=write,
            serde=serde,
        )

    def store(
        self,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        ef_runtime: int = 100,
    ) -> SluiceStore:
        """A LangGraph `BaseStore` (long-term memory) whose puts go through the workers (`pip install
        'sluice[langgraph]'`). `index={"dims": n, "embed": <settings embedder name or Embeddings>,
        "fields": [...]}` enables semantic search (Vector Sets, Redis 8); `ttl` is LangGraph's
        `TTLConfig` (minutes)."""
        try:
            from sluice.facade.store import SluiceStore
        except ImportError as e:  # the optional extra is missing
            raise ConfigError(
                f"the store needs LangGraph ({e.name or e}): pip install 'sluice[langgraph]'"
            ) from None
        if index is not None:
            self.capabilities.require("vector_sets", "the store's semantic search")
        return SluiceStore(
            self,
            index=index,
            ttl=ttl,
            read_your_writes=read_your_writes,
            wait_timeout=wait_timeout,
            ef_runtime=ef_runtime,
        )

    def memory_retriever(
        self,
        *,
        session_id: str | Sequence[str] | None = None,
        embedder: str | None = None,
        k: int = 4,
        distance_threshold: float | None = None,
    ) -> MemoryRetriever:
        """A LangChain `BaseRetriever` over past messages of one session, several, or all (None)."""
        from sluice.facade.memory import FEATURE, MemoryRetriever, Recall, resolve_embedder
        from sluice.facade.policy import check_count
        from sluice.vectors.backend import choose

        check_count(k, "k")
        name = resolve_embedder(self, embedder, True)
        assert name is not None
        choose(self.capabilities, "auto", FEATURE)
        sessions = [session_id] if isinstance(session_id, str) else session_id
        return MemoryRetriever(
            recall=Recall(self, name),
            sessions=list(sessions) if sessions is not None else None,
            k=k,
            distance_threshold=distance_threshold,
        )

    def sessions(self, prefix: str = "", *, cursor: str | None = None, count: int = 100) -> SessionPage:
        """One page of conversations (id, last activity, message count) whose id starts with `prefix`.

        Pass `page.cursor` back for the next page; None means the listing is complete. Never KEYS/SCAN.
        """
        from sluice.stores.sessions import list_sessions
        from sluice.transport.runner import Runner, drive

        runner = Runner(self.redis, cluster=self.capabilities.cluster)
        return drive(list_sessions(self.keys, prefix, cursor, count), runner)

    async def asessions(
        self, prefix: str = "", *, cursor: str | None = None, count: int = 100
    ) -> SessionPage:
        from sluice.stores.sessions import list_sessions
        from sluice.transport.runner import AsyncRunner, adrive

        runner = AsyncRunner(self.async_redis, cluster=(await self.acapabilities()).cluster)
        return await adrive(list_sessions(self.keys, prefix, cursor, count), runner)

    def llm_cache(
        self,
        *,
        name: str = "default",
        ttl: float | None = None,
        write: WriteMode | str = "enqueued",
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        local_cache: int | None = None,
        local_max_age: float | None = None,
        record_hits: bool = True,
        on_timeout: OnTimeout = "warn",
    ) -> LLMCache:
        """A LangChain `BaseCache` (exact match); `local_cache=N` keeps N hot entries in process.

        ``write="enqueued"`` (default) enqueues a fill for the workers; ``"direct"`` writes it in the
        call. `on_timeout`: see `sluice.facade.policy`.
        """
        from sluice.facade.llm_cache import LLMCache
        from sluice.stores.tracking import TrackedReads

        tracked = None
        if local_cache:
            tracked = TrackedReads[Any](self.tracking_redis(), max_entries=local_cache, max_age=local_max_age)
        return LLMCache(
            self,
            name=name,
            ttl=ttl,
            write=write,
            read_your_writes=read_your_writes,
            wait_timeout=wait_timeout,
            tracked=tracked,
            record_hits=record_hits,
            on_timeout=on_timeout,
        )

    def vectorstore(
        self, index: str, embeddings: Embeddings | str, *, schema: IndexSchema | None = None, **options: Any
    ) -> SluiceVectorStore:
        """A LangChain `VectorStore` filled by the workers (options: see `SluiceVectorStore`)."""
        from sluice.facade.vectorstore import SluiceVectorStore

        return SluiceVectorStore(self, index, embeddings, schema=schema, **options)

    def semantic_cache(
        self,
        embeddings: Embeddings,
        *,
        embedder: str | None = None,
        name: str = "semantic",
        distance_threshold: float = 0.2,
        ttl: float | None = None,
        refresh_on_hit: bool = False,
        backend: BackendChoice = "auto",
        algorithm: Algorithm = "hnsw",
        ef_runtime: int = 100,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        verify_embedder: bool = True,
        on_timeout: OnTimeout = "warn",
        verify: Verifier | bool = True,
    ) -> SemanticCache:
        """A LangChain `BaseCache` serving similar prompts (cosine distance <= `distance_threshold`).

        `embeddings` (any LangChain `Embeddings`) embeds prompts in the app, and the fills carry its
        vectors: no settings entry is needed. `embedder` names a settings embedder only for jobs the
        workers start themselves (cache-warm, refresh-ahead); `verify_embedder` then checks once, on
        several probe texts, that it gives the app's vectors. `verify` takes a second look at each
        vector candidate before it is served: True = the built-in `KeyTerms` (differing numbers, dates,
        negation, entities or key words refuse it), False = none, or a callable ``(query, cached) ->
        bool | Verdict``; ``lookup_with_score(..., explain=True)`` says why. Needs RediSearch or Redis 8.
        """
        from sluice.facade.semantic_cache import SemanticCache, resolve_embedder
        from sluice.vectors.backend import choose

        choose(self.capabilities, backend, "the semantic cache")
        return SemanticCache(
            self,
            embeddings,
            embedder=resolve_embedder(list(self.settings.embedders), embedder),
            name=name,
            distance_threshold=distance_threshold,
            ttl=ttl,
            refresh_on_hit=refresh_on_hit,
            backend=backend,
            algorithm=algorithm,
            ef_runtime=ef_runtime,
            read_your_writes=read_your_writes,
            wait_timeout=wait_timeout,
            verify_embedder=verify_embedder,
            on_timeout=on_timeout,
            verify=verify,
        )

    def close(self) -> None:
        """Close the connections sluice opened (an app's own clients stay open)."""
        if self._owned(self._redis):
            self._redis.close()

    async def aclose(self) -> None:
        """Close the running event loop's asyncio connections (other loops' close with their loop)."""
        await self._loops.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

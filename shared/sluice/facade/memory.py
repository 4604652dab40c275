"""Semantic recall over conversations: `history.relevant(query, k)` and `client.memory_retriever(...)`.

The modern form of LangChain's `VectorStoreRetrieverMemory`. A history made with
``client.chat_history(session_id, embedder="hashing")`` (or ``semantic=True``: the only embedder
in the settings) asks the workers to embed and index each message it appends, in the index
``history.<embedder>`` with a per-session tag; `Recall` embeds queries in the app with the same
settings embedder, searches (filtered to one, some or all sessions inside the vector query) and
returns the messages as their conversations hold them now. Needs RediSearch or Redis 8 Vector
Sets; elsewhere `CapabilityMissing` says what to run instead (plain history still works).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever

from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError
from sluice.stores.history_vectors import Recalled, index_name, recall, recall_schema, session_filter
from sluice.transport.runner import adrive, drive
from sluice.vectors.backend import VectorQuery, choose
from sluice.vectors.meta import IndexMeta
from sluice.vectors.session import IndexSession, check_dims

if TYPE_CHECKING:
    from sluice.core import Core

PROBE: Final = "sluice semantic history: dimension probe"
FEATURE: Final = "semantic recall over conversations"


def resolve_embedder(client: Core, embedder: str | None, semantic: bool) -> str | None:
    """The settings embedder a history indexes with: the one named, the only one (semantic=True), or None."""
    names = sorted(client.settings.embedders)
    if embedder is not None:
        if embedder not in names:
            raise ConfigError(
                f"no embedder named {embedder!r} in settings.embedders (known: {names}); add it under "
                "SLUICE_EMBEDDERS or name one of these"
            )
        return embedder
    if not semantic:
        return None
    if len(names) == 1:
        return names[0]
    raise ConfigError(
        f"semantic=True needs exactly one embedder in the settings; name one with embedder=... ({names})"
    )


def _candidates(k: int) -> int:
    # a few more than k: the nearest may be messages since trimmed, cleared or expired
    return max(2 * k, k + 4)


class Recall:
    """App side of semantic recall for one settings embedder (opens or creates its index once)."""

    def __init__(self, client: Core, embedder: str, embeddings: Embeddings | None = None) -> None:
        self.client = client
        self.embedder = embedder
        self.index = index_name(embedder)
        self._embeddings = embeddings
        self._session: IndexSession | None = None

    @property
    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            self._embeddings = EmbedderRegistry(self.client.settings.embedders).get(self.embedder)
        return self._embeddings

    def _index(self, dims: int) -> IndexSession:
        if self._session is None:
            self._session = IndexSession(
                self.client, self.index, schema=recall_schema(dims), backend="auto", embedder=self.embedder
            )
        return self._session

    def _query(
        self, meta: IndexMeta, vector: list[float], k: int, sessions: Any, threshold: float | None
    ) -> VectorQuery:
        check_dims(vector, meta, f"embedder {self.embedder!r}")
        return VectorQuery(
            vector, k=_candidates(k), filter=session_filter(sessions), distance_threshold=threshold
        )

    # --- sync ------------------------------------------------------------------------------------
    def open(self) -> IndexMeta:
        """Adopt or create the index (the workers write into it; it must exist before the first append)."""
        if self._session is not None and self._session.meta is not None:
            return self._session.meta
        choose(self.client.capabilities, "auto", FEATURE)
        dims = len(self.embeddings.embed_query(PROBE))
        return self._index(dims).open(lambda: dims)

    def search(
        self,
        query: str,
        k: int = 4,
        sessions: str | Sequence[str] | None = None,
        distance_threshold: float | None = None,
    ) -> list[Recalled]:
        meta = self.open()
        assert self._session is not None
        hits = self._session.search(
            self._query(meta, self.embeddings.embed_query(query), k, sessions, distance_threshold)
        )
        return drive(recall(self.client.keys, hits, k), self._session.runner)

    # --- asyncio ---------------------------------------------------------------------------------
    async def aopen(self) -> IndexMeta:
        if self._session is not None and self._session.meta is not None:
            return self._session.meta
        choose(await self.client.acapabilities(), "auto", FEATURE)
        dims = len(await self.embeddings.aembed_query(PROBE))

        async def known() -> int:
            return dims

        return await self._index(dims).aopen(known)

    async def asearch(
        self,
        query: str,
        k: int = 4,
        sessions: str | Sequence[str] | None = None,
        distance_threshold: float | None = None,
    ) -> list[Recalled]:
        meta = await self.aopen()
        assert self._session is not None
        vector = await self.embeddings.aembed_query(query)
        hits = await self._session.asearch(self._query(meta, vector, k, sessions, distance_threshold))
        return await adrive(recall(self.client.keys, hits, k), await self._session.arunner())


def to_document(found: Recalled) -> Document:
    m = found.message
    metadata = {"session_id": found.session_id, "type": m.type, "distance": found.distance}
    if m.id:
        metadata["message_id"] = m.id
    return Document(page_content=str(m.text), metadata=metadata)


class MemoryRetriever(BaseRetriever):
    """A `BaseRetriever` over past messages of one session, some, or all (`sessions=None`).

    Documents: the message text, with metadata ``session_id``, ``type``, ``distance`` (cosine,
    0 = same direction) and ``message_id`` when the message has one. Build it with
    `client.memory_retriever(...)`. It reads what the workers have applied; a history's own
    pending appends are waited for by `history.relevant`, not here (call `history.flush()` first).
    """

    recall: Recall
    sessions: list[str] | None = None
    k: int = 4
    distance_threshold: float | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        found = self.recall.search(query, self.k, self.sessions, self.distance_threshold)
        return [to_document(f) for f in found]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        found = await self.recall.asearch(query, self.k, self.sessions, self.distance_threshold)
        return [to_document(f) for f in found]

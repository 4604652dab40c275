"""What the two drop-in vector stores share: an index created on first use with the peer's
schema (or an existing one adopted as it is), ids that may carry the peer's key prefix, the
peers' filter expressions (`sluice.vectors.foreign_filters`), search results shaped as the peer
shapes them (`_shape`), MMR that returns at most ``fetch_k`` documents, and a retriever that
also knows ``similarity_distance_threshold``.

The peers write in the call, so their users build a second store on an index and search it at
once: every drop-in object of one `Client` and index shares the record of pending writes, and
a read through any of them waits for the writes made through all of them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Self

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStoreRetriever

from sluice.facade.client import Client
from sluice.facade.pending import ReadYourWrites
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.transport.runner import adrive, drive
from sluice.vectors import foreign_filters, ingest
from sluice.vectors.filters import Filter
from sluice.vectors.manager import read_meta
from sluice.vectors.meta import IndexMeta
from sluice.vectors.schema import IndexSchema

SchemaFor = Callable[[int], IndexSchema]
"""The schema of a new index, given the embeddings' size (asked only when the index is created)."""

_LOCK = threading.Lock()
_WRITES: weakref.WeakKeyDictionary[Client, dict[str, ReadYourWrites]] = weakref.WeakKeyDictionary()


def shared_writes(client: Client, index: str) -> ReadYourWrites:
    """The pending index writes of every drop-in store of `client` on `index`."""
    with _LOCK:
        per = _WRITES.setdefault(client, {})
        if index not in per:
            per[index] = ReadYourWrites(client, forget_on_timeout=False)
        return per[index]


class CompatVectorStore(SluiceVectorStore):
    def __init__(
        self,
        client: Client,
        index: str,
        embeddings: Embeddings,
        *,
        schema_for: SchemaFor,
        id_prefix: str = "",
        content_field: str = "text",
        embedder: str | None = None,
        relevance_score_fn: Callable[[float], float] | None = None,
    ) -> None:
        super().__init__(client, index, embeddings, embedder=embedder)
        self._pending = shared_writes(client, index)
        self._schema_for = schema_for
        self._id_prefix = id_prefix
        self._content_field = content_field
        self._relevance_fn = relevance_score_fn

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """The drop-ins' `from_texts` takes the originals' arguments: build through it, as
        LangChain's own `VectorStore.afrom_texts` does (the facade's form takes the facade's)."""
        if ids is not None:
            kwargs["ids"] = ids
        build: Any = cls.from_texts
        return await run_in_executor(None, build, texts, embedding, metadatas, **kwargs)

    # --- what the peers' callers pass and get back --------------------------------------------------
    def _filter(self, value: Any) -> Filter | None:
        """Also a redisvl / langchain-community expression or a query string, naming the peer's
        content field for the index's text field."""
        if isinstance(value, str) or foreign_filters.is_foreign(value):
            schema = self._meta().index_schema
            content = self._content_field
            rename = {content: schema.text_field} if schema.field(content) is None else {}
            value = foreign_filters.translate(value, rename)
        return super()._filter(value)

    def _shape(self, doc: Document, kwargs: dict[str, Any]) -> Document:
        """A search result as the peer returns it (each drop-in says how); `kwargs` of the search."""
        return doc

    def _order(self, found: list[Any], kwargs: dict[str, Any]) -> list[Any]:
        """The k nearest results (tuples led by the document) in the order the peer returns them."""
        return found

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        found = self._order(super().similarity_search_with_score_by_vector(embedding, k, **kwargs), kwargs)
        return [(self._shape(d, kwargs), score) for d, score in found]

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        found = await super().asimilarity_search_with_score_by_vector(embedding, k, **kwargs)
        return [(self._shape(d, kwargs), score) for d, score in self._order(found, kwargs)]

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """As the peers: choose among the `fetch_k` nearest, so never more than `fetch_k` documents."""
        found = super().max_marginal_relevance_search_by_vector(
            embedding, min(k, fetch_k), fetch_k, lambda_mult, **kwargs
        )
        return [self._shape(d, kwargs) for d in found]

    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        found = await super().amax_marginal_relevance_search_by_vector(
            embedding, min(k, fetch_k), fetch_k, lambda_mult, **kwargs
        )
        return [self._shape(d, kwargs) for d in found]

    def _probe(self) -> int:
        return len(self._embeddings.embed_query("dimension probe"))

    def _open(self) -> IndexMeta:
        if self.session.meta is None and self.session.schema is None and not self.exists():
            self.session.schema = self._schema_for(self._probe())
        return super()._open()

    async def _aopen(self) -> IndexMeta:
        if self.session.meta is None and self.session.schema is None:
            runner = await self.session.arunner()
            if await adrive(read_meta(self.client.keys, self.index), runner) is None:
                dims = len(await self._embeddings.aembed_query("dimension probe"))
                self.session.schema = self._schema_for(dims)
        return await super()._aopen()

    def exists(self) -> bool:
        """Whether the sluice index exists (created by this class, another one or a migration)."""
        return drive(read_meta(self.client.keys, self.index), self.session.runner) is not None

    def bare(self, ids: Iterable[str | None]) -> list[str]:
        """Ids without the peer's key prefix (``doc:<index>:<id>`` -> ``<id>``); None stays "" (a new id)."""
        p = self._id_prefix
        return [i[len(p) :] if p and i.startswith(p) else i for i in (i or "" for i in ids)]

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        embeddings: list[list[float]] | None = None,
        *,
        ids: list[str] | None = None,
        keys: list[str] | None = None,
        wait: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Enqueue documents (with precomputed `embeddings` if given); returns their ids at once."""
        texts = list(texts)
        if not texts:
            return []
        self._open()
        given = ids or keys
        out = ingest.new_ids(self.bare(given) if given else None, len(texts))  # "" -> a new uuid
        vectors = embeddings or (None if self.embedder else self._embeddings.embed_documents(texts))
        handles = self.client.producer.enqueue_many(
            self._payloads(texts, metadatas, out, vectors), notify=self.read_your_writes or wait
        )
        self._track(handles)
        if wait:
            self.client.wait(handles, self.wait_timeout)
        return out

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        wait: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        given = ids or kwargs.pop("keys", None)
        return await super().aadd_texts(texts, metadatas, ids=self.bare(given) if given else None, wait=wait)

    def delete(self, ids: list[str] | None = None, *, wait: bool = False, **kwargs: Any) -> bool | None:
        return True if not ids else super().delete(self.bare(ids), wait=wait)

    async def adelete(
        self, ids: list[str] | None = None, *, wait: bool = False, **kwargs: Any
    ) -> bool | None:
        return True if not ids else await super().adelete(self.bare(ids), wait=wait)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return super().get_by_ids(self.bare(ids))

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await super().aget_by_ids(self.bare(ids))

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return self._relevance_fn or super()._select_relevance_score_fn()

    def as_retriever(self, **kwargs: Any) -> RedisVectorStoreRetriever:
        tags = kwargs.pop("tags", None) or []
        tags.extend(self._get_retriever_tags())
        return RedisVectorStoreRetriever(vectorstore=self, tags=tags, **kwargs)


class RedisVectorStoreRetriever(VectorStoreRetriever):
    """LangChain's retriever plus ``search_type="similarity_distance_threshold"`` (the peers' extra)."""

    allowed_search_types: ClassVar[tuple[str, ...]] = (
        "similarity",
        "similarity_distance_threshold",
        "similarity_score_threshold",
        "mmr",
    )

    def _distance_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = self.search_kwargs | kwargs
        if merged.get("distance_threshold") is None:
            raise ValueError(
                "distance_threshold must be provided for similarity_distance_threshold retriever"
            )
        return merged

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "similarity_distance_threshold":
            return self.vectorstore.similarity_search(query, **self._distance_kwargs(kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "similarity_distance_threshold":
            return await self.vectorstore.asimilarity_search(query, **self._distance_kwargs(kwargs))
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)

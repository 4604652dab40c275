"""LangChain `VectorStore` over sluice: writes enqueue `index` jobs, reads query Redis directly.

Use `client.vectorstore(index, embeddings, schema=...)`. Who embeds documents:

- ``embedder="name"`` (or `embeddings` given as a settings name): the workers, in batches, through
  the embeddings cache; `embeddings` (an instance, or the named one) embeds queries.
- an `Embeddings` instance and no name: the app embeds in `add_texts` and the jobs carry vectors
  (a worker can only run embedders named in its settings, never code named by data).

Read-your-writes by default: a search, `get_by_ids` or MMR first waits (bounded by
`wait_timeout`) for this object's pending index jobs, and raises `WaitTimeout` when the workers
are later than that (``on_timeout="raise"``, the default: a search silently missing documents
just added is a wrong answer nobody notices; ``on_timeout="warn"`` searches without them, with a
warning). `read_your_writes=False` makes writes fire-and-forget, and `add_texts(..., wait=True)`
waits right away. Ids returned by `add_texts` work with `delete`
and `get_by_ids`. Filters: the DSL of `sluice.vectors.filters`, a mapping of field -> value, or a
redisvl / langchain-community filter expression (read by `sluice.vectors.foreign_filters`).
Hybrid search (BM25 over the text fused with KNN, RediSearch only): `hybrid_search`, or
``search_type="hybrid"`` in `search` and `as_retriever` (`sluice.vectors.hybrid`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from sluice.core import Core, check_timeout
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError, InvalidArgument
from sluice.facade.pending import ReadYourWrites
from sluice.facade.policy import OnTimeout, check_count, on_timeout_policy
from sluice.facade.retriever import SluiceRetriever
from sluice.types import StreamEntryRef
from sluice.vectors import foreign_filters, ingest
from sluice.vectors.backend import BackendChoice, VectorQuery
from sluice.vectors.documents import Hit
from sluice.vectors.filters import Filter, as_filter
from sluice.vectors.hybrid import Fused, HybridQuery
from sluice.vectors.meta import INDEX_NAME, IndexMeta
from sluice.vectors.schema import IndexSchema
from sluice.vectors.session import IndexSession, check_dims

_PENDING = "index"


def _doc(hit: Hit) -> Document:
    return Document(page_content=hit.text, metadata=hit.metadata, id=hit.doc_id)


def _relevance(metric: str) -> Callable[[float], float]:
    """Relevance in [0, 1] from our distances: cosine similarity, or a unit-vector scale for l2 / ip."""
    if metric == "l2":
        return lambda d: min(1.0, max(0.0, 1.0 - d / np.sqrt(2)))
    return lambda d: min(1.0, max(0.0, 1.0 - d))


class SluiceVectorStore(VectorStore):
    """A vector index filled by sluice workers; see the module docstring for embedding and consistency."""

    def __init__(
        self,
        client: Core,
        index: str,
        embeddings: Embeddings | str,
        *,
        schema: IndexSchema | None = None,
        embedder: str | None = None,
        backend: BackendChoice = "auto",
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        batch_size: int | None = None,
        ef_runtime: int | None = None,
        on_timeout: OnTimeout = "raise",
    ) -> None:
        if not isinstance(index, str) or not re.match(INDEX_NAME, index):
            raise InvalidArgument(f"index name {index!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if isinstance(embeddings, str):
            embedder = embedder or embeddings
            embeddings = EmbedderRegistry(client.settings.embedders).get(embeddings)
        elif embedder is not None:
            EmbedderRegistry(client.settings.embedders).spec(embedder)  # fail now on an unknown name
        self.client = client
        self.index = index
        self._embeddings = embeddings
        self.embedder = embedder
        self.read_your_writes = read_your_writes
        self.wait_timeout = None if wait_timeout is None else check_timeout(wait_timeout, "wait_timeout")
        self.on_timeout: OnTimeout = on_timeout_policy(on_timeout, "vectorstore")
        self.batch_size = check_count(batch_size, "batch_size", none="for the settings' batch size")
        self.ef_runtime = ef_runtime or (schema.vector.ef_runtime if schema else None)
        self.session = IndexSession(client, index, schema=schema, backend=backend, embedder=embedder)
        self._pending = ReadYourWrites(client, forget_on_timeout=False)

    @property
    def embeddings(self) -> Embeddings:
        return self._embeddings

    # --- shared logic ------------------------------------------------------------------------------
    def _payloads(self, texts: Sequence[str], metadatas: Any, ids: list[str], vectors: Any) -> list[Any]:
        limits = self.client.settings.limits
        docs = ingest.documents(texts, metadatas, ids, vectors, limits)
        return ingest.payloads(
            self.client.keys,
            limits,
            self.index,
            upserts=docs,
            embedder=self.embedder,
            batch_size=self.batch_size,
        )

    def _deletes(self, ids: Sequence[str]) -> list[Any]:
        return ingest.payloads(self.client.keys, self.client.settings.limits, self.index, deletes=list(ids))

    def _filter(self, value: Any) -> Filter | None:
        if foreign_filters.is_foreign(value):  # a redisvl / langchain-community expression
            value = foreign_filters.translate(value)
        return as_filter(value, self._meta().index_schema)

    def _meta(self) -> IndexMeta:
        assert self.session.meta is not None
        return self.session.meta

    def _query(
        self, vector: Sequence[float], k: int, kwargs: dict[str, Any], *, vectors: bool = False
    ) -> VectorQuery:
        check_count(k, "k")
        check_dims(vector, self._meta(), "the query embedder")
        return VectorQuery(
            vector=vector, k=k, filter=self._filter(kwargs.get("filter")),
            ef_runtime=kwargs.get("ef_runtime") or self.ef_runtime,
            distance_threshold=kwargs.get("distance_threshold"), with_vectors=vectors,
        )  # fmt: skip

    def _hybrid(self, query: str, vector: Sequence[float], k: int, kwargs: dict[str, Any]) -> HybridQuery:
        check_dims(vector, self._meta(), "the query embedder")
        flt, ef = self._filter(kwargs.pop("filter", None)), kwargs.pop("ef_runtime", None) or self.ef_runtime
        return HybridQuery.of(query, vector, k, flt, ef, kwargs)

    @staticmethod
    def _scored(fused: list[Fused]) -> list[tuple[Document, float]]:
        return [(_doc(f.hit), f.score) for f in fused]

    def as_retriever(self, **kwargs: Any) -> VectorStoreRetriever:
        """LangChain's retriever, plus ``search_type="hybrid"``."""
        tags = kwargs.pop("tags", None) or []
        tags.extend(self._get_retriever_tags())
        return SluiceRetriever(vectorstore=self, tags=tags, **kwargs)

    def _track(self, handles: list[StreamEntryRef]) -> None:
        if self.read_your_writes:
            self._pending.add(_PENDING, handles)

    async def _atrack(self, handles: list[StreamEntryRef]) -> None:
        if self.read_your_writes:
            await self._pending.aadd(_PENDING, handles)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _relevance(self.session.meta.index_schema.vector.metric if self.session.meta else "cosine")

    @staticmethod
    def _mmr(query: Sequence[float], hits: list[Hit], k: int, lambda_mult: float) -> list[Document]:
        if not hits:
            return []
        chosen = maximal_marginal_relevance(
            np.asarray(query, dtype=np.float32), [h.vector or [] for h in hits], lambda_mult=lambda_mult, k=k
        )
        return [_doc(hits[i]) for i in chosen]

    # --- sync ----------------------------------------------------------------------------------------
    def _open(self) -> IndexMeta:
        return self.session.open(lambda: len(self._embeddings.embed_query("dimension probe")))

    def _settle(self, policy: OnTimeout | None = None) -> None:
        # a failure is reported once; a timeout keeps the writes pending
        self._pending.settle(
            [_PENDING], self.wait_timeout, policy or self.on_timeout, f"vector store {self.index!r}"
        )

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        wait: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Enqueue documents; returns their ids at once (`wait=True`: after they are indexed)."""
        texts = list(texts)
        if not texts:
            return []
        self.session.suggest(metadatas)  # a new index without a schema infers its fields from them
        self._open()
        out = ingest.new_ids(ids, len(texts))
        vectors = None if self.embedder else self._embeddings.embed_documents(texts)
        handles = self.client.producer.enqueue_many(
            self._payloads(texts, metadatas, out, vectors), notify=self.read_your_writes or wait
        )
        self._track(handles)
        if wait:
            self.client.wait(handles, self.wait_timeout)
        return out

    def delete(self, ids: list[str] | None = None, *, wait: bool = False, **kwargs: Any) -> bool | None:
        """Enqueue deletes (a delete is not undone by an older, late upsert)."""
        if ids is None:
            raise InvalidArgument(
                "delete() needs ids; to remove every document drop the index (`sluice index drop`)"
            )
        if not ids:
            return True
        self._open()
        handles = self.client.producer.enqueue_many(self._deletes(ids), notify=self.read_your_writes or wait)
        self._track(handles)
        if wait:
            self.client.wait(handles, self.wait_timeout)
        return True

    def flush(self) -> None:
        """Wait until every write this object made is applied; raises `WaitTimeout` or `JobFailed`."""
        self._settle("raise")

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        self._open()
        self._settle()
        return [_doc(h) for h in self.session.get(list(ids)) if h is not None]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents and distances (cosine: 1 - cos; l2: euclidean; ip: 1 - ip), nearest first."""
        started = time.perf_counter()
        self._open()
        self._settle()
        found = [(_doc(h), h.distance) for h in self.session.search(self._query(embedding, k, kwargs))]
        self.client.foreground.note("vector", started)
        return found

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        self._open()
        return self.similarity_search_with_score_by_vector(self._embeddings.embed_query(query), k, **kwargs)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        self._open()
        self._settle()
        hits = self.session.search(self._query(embedding, max(k, fetch_k), kwargs, vectors=True))
        return self._mmr(embedding, hits, k, lambda_mult)

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        vector = self._embeddings.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, **kwargs)

    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """LangChain's `search`, plus ``search_type="hybrid"``."""
        if search_type == "hybrid":
            return self.hybrid_search(query, **kwargs)
        return super().search(query, search_type, **kwargs)

    def hybrid_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        """Documents matching `query` by words (BM25 over the text) or by meaning (KNN), fused, with
        their fused scores (higher is better). Options: `filter` (both legs), `fusion` ("rrf" or
        "linear"), `text_weight` (linear: 0-1, default 0.3), `rrf_constant` (60), `window`
        (candidates per leg, default max(k, 20)), `ef_runtime`. RediSearch only."""
        self._open()
        self._settle()
        hybrid = self._hybrid(query, self._embeddings.embed_query(query), k, kwargs)
        return self._scored(self.session.hybrid(hybrid))

    def hybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.hybrid_search_with_score(query, k, **kwargs)]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        client: Core | None = None,
        index: str = "default",
        url: str | None = None,
        **kwargs: Any,
    ) -> SluiceVectorStore:
        """Build a store (on `client`, or a new `Client.from_url(url)`) and enqueue `texts`."""
        store = cls(_client(client, url, kwargs), index, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # --- asyncio -------------------------------------------------------------------------------------
    async def _aopen(self) -> IndexMeta:
        async def dims() -> int:
            return len(await self._embeddings.aembed_query("dimension probe"))

        return await self.session.aopen(dims)

    async def _asettle(self, policy: OnTimeout | None = None) -> None:
        await self._pending.asettle(
            [_PENDING], self.wait_timeout, policy or self.on_timeout, f"vector store {self.index!r}"
        )

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        wait: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if not texts:
            return []
        self.session.suggest(metadatas)
        await self._aopen()
        out = ingest.new_ids(ids, len(texts))
        vectors = None if self.embedder else await self._embeddings.aembed_documents(texts)
        handles = await self.client.aproducer.enqueue_many(
            self._payloads(texts, metadatas, out, vectors), notify=self.read_your_writes or wait
        )
        await self._atrack(handles)
        if wait:
            await self.client.await_wait(handles, self.wait_timeout)
        return out

    async def adelete(
        self, ids: list[str] | None = None, *, wait: bool = False, **kwargs: Any
    ) -> bool | None:
        if ids is None:
            raise InvalidArgument(
                "adelete() needs ids; to remove every document drop the index (`sluice index drop`)"
            )
        if not ids:
            return True
        await self._aopen()
        handles = await self.client.aproducer.enqueue_many(
            self._deletes(ids), notify=self.read_your_writes or wait
        )
        await self._atrack(handles)
        if wait:
            await self.client.await_wait(handles, self.wait_timeout)
        return True

    async def aflush(self) -> None:
        await self._asettle("raise")

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        await self._aopen()
        await self._asettle()
        return [_doc(h) for h in await self.session.aget(list(ids)) if h is not None]

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        await self._aopen()
        await self._asettle()
        return [(_doc(h), h.distance) for h in await self.session.asearch(self._query(embedding, k, kwargs))]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        await self._aopen()
        vector = await self._embeddings.aembed_query(query)
        return await self.asimilarity_search_with_score_by_vector(vector, k, **kwargs)

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score_by_vector(embedding, k, **kwargs)]

    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        await self._aopen()
        await self._asettle()
        hits = await self.session.asearch(self._query(embedding, max(k, fetch_k), kwargs, vectors=True))
        return self._mmr(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        vector = await self._embeddings.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, **kwargs)

    async def asearch(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        if search_type == "hybrid":
            return await self.ahybrid_search(query, **kwargs)
        return await super().asearch(query, search_type, **kwargs)

    async def ahybrid_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        await self._aopen()
        await self._asettle()
        hybrid = self._hybrid(query, await self._embeddings.aembed_query(query), k, kwargs)
        return self._scored(await self.session.ahybrid(hybrid))

    async def ahybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in await self.ahybrid_search_with_score(query, k, **kwargs)]

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        client: Core | None = None,
        index: str = "default",
        url: str | None = None,
        **kwargs: Any,
    ) -> SluiceVectorStore:
        store = cls(_client(client, url, kwargs), index, embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


def _client(client: Core | None, url: str | None, kwargs: dict[str, Any]) -> Core:
    if client is not None:
        return client
    if url is None:
        raise ConfigError("from_texts needs client=<sluice Client> or url='redis://...'")
    return Core.from_url(url, namespace=kwargs.pop("namespace", "sluice"))

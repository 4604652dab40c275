"""langchain-community's `Redis` vector store, backed by sluice."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from sluice.compat.clients import client_for
from sluice.compat.community.schema import (
    generate_field_schema,
    metadata_names,
    read_schema,
    to_community,
    to_sluice,
)
from sluice.compat.vectors import CompatVectorStore, RedisVectorStoreRetriever
from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.migrate.legacy import safe_name
from sluice.vectors.session import IndexSession

__all__ = ["Redis", "RedisVectorStoreRetriever"]


def _url(kwargs: dict[str, Any]) -> str | None:
    return kwargs.pop("redis_url", None) or os.environ.get("REDIS_URL")


class Redis(CompatVectorStore):
    """Drop-in for ``langchain_community.vectorstores.redis.Redis`` (``from_texts``,
    ``from_existing_index``, ``as_retriever``).

    Search results are shaped as langchain-community shapes them: no ``Document.id``, and
    metadata holding ``id`` (the document's key ``<key_prefix>:<id>``) and the index schema's
    metadata fields (None where a document lacks one); ``return_metadata=False`` gives empty
    metadata. ``add_texts`` and ``from_texts_return_keys`` return those keys. Filters may be
    langchain-community's ``RedisFilter``/``RedisTag``/``RedisNum``/``RedisText`` expressions
    (or a query string of the kind they write), sluice's own (`sluice.vectors.filters`) or a
    dict of field -> value. MMR returns at most ``fetch_k`` documents.

    Differences on purpose:

    - Metadata values come back with the types they went in with (numbers stay numbers, lists
      stay lists) rather than as the strings a hash gives back; ``clean_metadata`` is accepted
      and ignored. ``get_by_ids`` (which the peer lacks) returns LangChain's standard documents.
    - Writes are enqueued for the workers; this object's next search waits for them. The data
      is sluice's (``doc:<index>:<id>`` keys are accepted as ids everywhere, but no Redis hash has
      that name): ``.client`` is the `sluice.Client` (its ``.redis`` is a redis-py client), and
      ``client.ft(index_name)`` finds no index.
    - An existing index (made before, or by ``sluice migrate``) is used with its own schema;
      ``index_schema``/``vector_schema`` shape only a new one. Names sluice cannot use become
      ``safe_name(index_name)`` (``cache:ab`` -> ``cache_ab``).
    - Filters sluice cannot express are refused with the reason (geo, ``ismissing``, fuzzy and
      several-word phrase matches), never sent as they are.
    - ``drop_index`` always removes the documents with the index; Redis connection kwargs are
      ignored (put them in the URL or ``SLUICE_REDIS__*``).
    """

    def __init__(
        self,
        redis_url: str | None,
        index_name: str,
        embedding: Embeddings,
        index_schema: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        vector_schema: Mapping[str, Any] | None = None,
        relevance_score_fn: Callable[[float], float] | None = None,
        key_prefix: str | None = None,
        *,
        client: Client | None = None,
        namespace: str | None = None,
        embedder: str | None = None,
        **kwargs: Any,
    ) -> None:
        fields = read_schema(index_schema)
        self._peer_fields = metadata_names(fields)
        self.index_name = index_name
        self.key_prefix = key_prefix if key_prefix is not None else f"doc:{index_name}"
        super().__init__(
            client_for(url=redis_url, client=client, namespace=namespace),
            safe_name(index_name),
            embedding,
            schema_for=lambda dims: to_sluice(fields, vector_schema, dims),
            id_prefix=self.key_prefix + ":",
            content_field=str(fields.get("content_key", "content")),
            embedder=embedder,
            relevance_score_fn=relevance_score_fn,
        )

    @property
    def schema(self) -> dict[str, Any]:
        """The index schema in langchain-community's dict form (opens the index)."""
        return to_community(self._open().index_schema)

    def write_schema(self, path: str | os.PathLike[str]) -> None:
        """Write `schema` to a YAML file (what ``from_existing_index(schema=path)`` reads)."""
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError("write_schema needs pyyaml (pip install pyyaml)") from None
        Path(path).write_text(yaml.safe_dump(self.schema), encoding="utf-8")

    def _key(self, doc_id: str) -> str:
        return self._id_prefix + doc_id

    def _shape(self, doc: Document, kwargs: dict[str, Any]) -> Document:
        if not kwargs.get("return_metadata", True):
            return Document(page_content=doc.page_content)
        names = dict.fromkeys([*self._meta().index_schema.field_names(), *self._peer_fields])
        metadata = {"id": self._key(doc.id or "")} | {n: doc.metadata.get(n) for n in names if n != "id"}
        return Document(page_content=doc.page_content, metadata=metadata)

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
        """Enqueue documents; returns their keys ``<key_prefix>:<id>`` at once."""
        out = super().add_texts(texts, metadatas, embeddings, ids=ids, keys=keys, wait=wait, **kwargs)
        return [self._key(i) for i in out]

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        wait: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        out = await super().aadd_texts(texts, metadatas, ids=ids, wait=wait, **kwargs)
        return [self._key(i) for i in out]

    @classmethod
    def from_texts_return_keys(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        index_name: str | None = None,
        index_schema: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        vector_schema: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[Redis, list[str]]:
        """Create the store (index ``index_name``, a new uuid if None) and enqueue `texts`."""
        url = _url(kwargs)
        keys = kwargs.pop("keys", None) or kwargs.pop("ids", None)
        kwargs.pop("generate", None)
        if metadatas and len(metadatas) != len(texts):
            raise ValueError("Number of metadatas must match number of texts")
        if metadatas and index_schema is None:
            index_schema = generate_field_schema(metadatas[0])
        store = cls(url, index_name or uuid.uuid4().hex, embedding, index_schema, vector_schema, **kwargs)
        return store, store.add_texts(texts, metadatas, ids=keys)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        index_name: str | None = None,
        index_schema: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        vector_schema: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Redis:
        store, _ = cls.from_texts_return_keys(
            texts, embedding, metadatas, index_name, index_schema, vector_schema, **kwargs
        )
        return store

    @classmethod
    def from_existing_index(
        cls,
        embedding: Embeddings,
        index_name: str,
        schema: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        key_prefix: str | None = None,
        **kwargs: Any,
    ) -> Redis:
        """The store over an index that exists; ValueError if it does not (as langchain-community)."""
        store = cls(_url(kwargs), index_name, embedding, schema, key_prefix=key_prefix, **kwargs)
        if not store.exists():
            raise ValueError(f"Redis failed to connect: Index {index_name} does not exist.")
        return store

    @staticmethod
    def drop_index(index_name: str, delete_documents: bool = True, **kwargs: Any) -> bool:
        """Drop the index and its documents (sluice keeps no documents without their index)."""
        url = _url(kwargs)
        if url is None and kwargs.get("client") is None:
            raise ConfigError("drop_index needs redis_url=... (or client=<sluice Client>)")
        sluice = client_for(url=url, client=kwargs.get("client"), namespace=kwargs.get("namespace"))
        return IndexSession(sluice, safe_name(index_name), schema=None, backend="auto", embedder=None).drop()

    def as_retriever(self, **kwargs: Any) -> RedisVectorStoreRetriever:
        return super().as_retriever(**kwargs)

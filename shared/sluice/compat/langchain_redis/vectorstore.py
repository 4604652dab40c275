"""langchain-redis's `RedisVectorStore`, backed by sluice."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from sluice.compat.clients import client_for
from sluice.compat.langchain_redis.config import RedisConfig
from sluice.compat.langchain_redis.index import SearchIndexView
from sluice.compat.vectors import CompatVectorStore
from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.migrate.legacy import safe_name

_SLUICE_KWARGS = ("client", "namespace", "embedder")


class RedisVectorStore(CompatVectorStore):
    """Drop-in for ``langchain_redis.RedisVectorStore(embeddings, config=RedisConfig(...))`` (or the
    config's fields as keyword arguments).

    As langchain-redis: search results have no ``Document.id`` (``get_by_ids`` sets it) and carry
    the document's metadata (``return_metadata=False``: none); ``add_texts`` returns the ids
    without the key prefix; filters may be redisvl ``FilterExpression``s (``Tag``, ``Num``,
    ``Text``, ``Timestamp``), query strings of the kind they write, sluice filters or a dict;
    MMR returns at most ``fetch_k`` documents; ``delete`` is False for no ids or when none of
    them existed; ``index`` answers redisvl's ``delete(drop=True)``, ``query(CountQuery(...))``,
    ``schema`` (``to_yaml``), ``exists()`` and ``client`` (`SearchIndexView`); ``ttl=0`` (no
    expiry) is accepted.

    Differences on purpose:

    - Writes are enqueued for the workers; this object's next search, ``get_by_ids``, MMR or
      count waits for them. ``add_texts`` returns the ids at once.
    - An existing index (made before, or by ``sluice migrate --from langchain-redis --what
      vectors``) is used with its own schema; the config shapes only a new one. Ids given with
      the key prefix (``<prefix>:<id>``) are accepted. Documents live in sluice's keys: no hash
      or JSON document is at ``<prefix>:<id>``.
    - Metadata comes back exactly as it went in (typed, no ``_metadata_json`` round trip); with a
      redisvl schema (`RedisConfig`), only its fields unless ``return_all=True``.
    - ``from_texts(..., ids=[...])`` uses the ids (langchain-redis 0.2.6 dropped them and made
      new ones); an index that redisvl made itself is not read (``sluice migrate`` copies it).
    - Filters sluice cannot express are refused with the reason (geo, ``ismissing``, tag
      wildcards, fuzzy and several-word phrase matches); ``sort_by`` and a positive
      per-document ``ttl`` are not offered (an error says so). ``with_vectors=True`` gives the
      peer's (document, distance, vector) triples.
    """

    def __init__(
        self, embeddings: Embeddings, config: RedisConfig | None = None, ttl: int | None = None, **kwargs: Any
    ) -> None:
        if ttl:  # langchain-redis (redisvl) reads 0 as "no expiry"
            raise ConfigError("ttl: sluice vector indexes keep documents until deleted; drop ttl=")
        own = {k: kwargs.pop(k) for k in _SLUICE_KWARGS if k in kwargs}
        self.config = config or RedisConfig(**kwargs)
        self.ttl = ttl
        sluice: Client = client_for(
            url=self.config.redis_url, redis=self.config.redis_client, client=own.get("client"),
            namespace=own.get("namespace"),
        )  # fmt: skip
        super().__init__(
            sluice,
            safe_name(self.config.store_index_name()),
            embeddings,
            schema_for=self.config.to_sluice,
            id_prefix=f"{self.config.key_prefix}:",
            content_field=self.config.content_field,
            embedder=own.get("embedder"),
        )
        self.index = SearchIndexView(self.index, self)
        self._schema_fields = self.config.schema_fields()

    def _shape(self, doc: Document, kwargs: dict[str, Any]) -> Document:
        if kwargs.get("return_all"):
            return Document(
                page_content=doc.page_content, metadata=doc.metadata, id=self._id_prefix + (doc.id or "")
            )
        metadata = doc.metadata if kwargs.get("return_metadata", True) else {}
        if self._schema_fields is not None:  # a redisvl schema: its fields only, as the peer
            metadata = {k: v for k, v in metadata.items() if k in self._schema_fields}
        return Document(page_content=doc.page_content, metadata=metadata)

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Any]:
        """(document, distance) pairs; (document, distance, vector) with ``with_vectors=True``."""
        if not kwargs.get("with_vectors"):
            return super().similarity_search_with_score_by_vector(embedding, k, **kwargs)
        self._open()
        self._settle()
        hits = self.session.search(self._query(embedding, k, kwargs, vectors=True))
        return [
            (
                self._shape(Document(page_content=h.text, metadata=h.metadata, id=h.doc_id), kwargs),
                h.distance,
                h.vector,
            )
            for h in hits
        ]

    def delete_counting(self, ids: list[str]) -> int:
        """Enqueue deletes of `ids`; how many of them existed (after this object's pending writes)."""
        if not ids:
            return 0
        self._open()
        self._settle()
        bare = self.bare(ids)
        existed = sum(h is not None for h in self.session.get(bare))
        super().delete(bare)
        return existed

    def delete(self, ids: list[str] | None = None, *, wait: bool = False, **kwargs: Any) -> bool | None:
        """As langchain-redis: False for no ids, else whether any of them existed."""
        existed = self.delete_counting(list(ids or []))
        if wait:
            self.flush()
        return existed > 0

    async def adelete(
        self, ids: list[str] | None = None, *, wait: bool = False, **kwargs: Any
    ) -> bool | None:
        if not ids:
            return False
        await self._aopen()
        await self._asettle()
        bare = self.bare(ids)
        existed = sum(h is not None for h in await self.session.aget(bare))
        await super().adelete(bare, wait=wait)
        return existed > 0

    @property
    def key_prefix(self) -> str | None:
        return self.config.key_prefix

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        config: RedisConfig | None = None,
        keys: list[str] | None = None,
        return_keys: bool = False,
        **kwargs: Any,
    ) -> Any:
        """The store with `texts` enqueued; ``(store, ids)`` with ``return_keys=True``."""
        ids = keys or kwargs.pop("ids", None)
        store = cls(embedding, config=config, **kwargs)
        out = store.add_texts(texts, metadatas, ids=ids)
        return (store, out) if return_keys or store.config.return_keys else store

    @classmethod
    def from_existing_index(cls, index_name: str, embedding: Embeddings, **kwargs: Any) -> RedisVectorStore:
        """The store over an index that exists (ValueError if it does not)."""
        store = cls(embedding, index_name=index_name, from_existing=True, **kwargs)
        if not store.exists():
            raise ValueError(f"index {index_name!r} does not exist")
        return store

    def similarity_search(
        self, query: str, k: int = 4, filter: Any = None, sort_by: str | None = None, **kwargs: Any
    ) -> list[Document]:
        if sort_by is not None:
            raise ConfigError("sort_by is not offered: results come nearest first")
        return super().similarity_search(query, k, filter=filter, **kwargs)

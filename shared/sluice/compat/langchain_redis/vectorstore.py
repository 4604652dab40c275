"""langchain-redis's `RedisVectorStore`, backed by sluice."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from sluice.compat.clients import client_for
from sluice.compat.langchain_redis.config import RedisConfig
from sluice.compat.langchain_redis.index import SearchIndexView
from sluice.compat.vectors import CompatVectorStore
from sluice.errors import ConfigError, InvalidArgument, InvalidArgumentType
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
    expiry) is accepted. ``sort_by`` orders the k nearest by a metadata field, as redisvl's
    KNN query with SORTBY does; ``with_vectors=True`` gives (document, distance, vector) triples.

    Differences on purpose:

    - Writes are enqueued for the workers; this object's next search, ``get_by_ids``, MMR or
      count waits for them. ``add_texts`` returns the ids at once.
    - An existing index (made before, or by ``sluice migrate --from langchain-redis --what
      vectors``) is used with its own schema; the config shapes only a new one. Ids given with
      the key prefix (``<prefix>:<id>``) are accepted. Documents live in sluice's keys, written
      by the workers in sluice's layout (index generations, shards): no hash or JSON document is
      at ``<prefix>:<id>``, so code reading those keys directly finds nothing.
    - Metadata comes back as it went in (typed: 22000 stays a number, lists stay lists) where the
      peer gave back a hash's or RediSearch's strings; with a redisvl schema (`RedisConfig`),
      only its fields unless ``return_all=True``.
    - ``from_texts(..., ids=[...])`` uses the ids, as LangChain's ``VectorStore.from_texts`` and
      ``from_documents`` mean them (langchain-redis 0.2.6 dropped them and made new ones); an
      index that redisvl made itself is not read (``sluice migrate`` copies it).
    - Filters sluice cannot express are refused with the reason (geo, ``ismissing``, tag
      wildcards, fuzzy and several-word phrase matches): sluice indexes have no geo fields,
      and its filter language has no fuzzy or phrase operators. A positive per-document
      ``ttl`` is not offered (an error says so): documents stay until deleted.
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
        found = [
            (Document(page_content=h.text, metadata=h.metadata, id=h.doc_id), h.distance, h.vector)
            for h in hits
        ]
        return [(self._shape(d, kwargs), distance, v) for d, distance, v in self._order(found, kwargs)]

    def _order(self, found: list[Any], kwargs: dict[str, Any]) -> list[Any]:
        """``sort_by``: the k nearest sorted by that metadata field, as redisvl's KNN query with
        SORTBY returns them (ascending unless ``(field, "DESC")``; the first field of a list, as
        RediSearch sorts by one; documents without the field last)."""
        spec = _sort_spec(kwargs.get("sort_by"))
        if spec is None:
            return found
        field, ascending = spec
        present = [r for r in found if r[0].metadata.get(field) is not None]
        absent = [r for r in found if r[0].metadata.get(field) is None]
        present.sort(key=lambda r: _sort_key(r[0].metadata[field]), reverse=not ascending)
        return present + absent

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
        self, query: str, k: int = 4, filter: Any = None, sort_by: Any = None, **kwargs: Any
    ) -> list[Document]:
        return super().similarity_search(query, k, filter=filter, sort_by=sort_by, **kwargs)


def _sort_spec(spec: Any) -> tuple[str, bool] | None:
    """redisvl's sort specification (a field, ``(field, "ASC"|"DESC")`` or a list of those) as
    (field, ascending) of its first field; None for none."""
    if isinstance(spec, list):
        spec = spec[0] if spec else None
    if spec is None:
        return None
    if isinstance(spec, str):
        return spec, True
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], str):
        direction = spec[1].upper()
        if direction not in ("ASC", "DESC"):
            raise InvalidArgument(f"sort_by direction must be 'ASC' or 'DESC', got {spec[1]!r}")
        return spec[0], direction == "ASC"
    raise InvalidArgumentType(
        f"sort_by takes a field name, (field, 'ASC'|'DESC') or a list of those; got {spec!r}"
    )


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers by value, before text (RediSearch sorts a numeric field numerically)."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))

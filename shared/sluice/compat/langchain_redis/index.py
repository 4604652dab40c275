"""``RedisVectorStore.index``: the store's index name, answering the redisvl `SearchIndex` calls
langchain-redis code makes on it (``delete(drop=True)``, ``query(CountQuery(...))``,
``schema.to_yaml(path)``, ``exists()``, ``info()``, ``client``, ``drop_keys``).

It is a `str` (the sluice index name), so the store's own code keeps using it as a name. The
operations act on the sluice index, not on a redisvl one: other redisvl queries (``VectorQuery``,
``FilterQuery``...) are refused with a pointer to the store method that does the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigError
from sluice.transport.runner import Call, Plan, drive
from sluice.vectors import foreign_filters
from sluice.vectors.backend import check
from sluice.vectors.filters import Filter, to_search
from sluice.vectors.manager import index_info
from sluice.vectors.meta import IndexMeta

if TYPE_CHECKING:
    from sluice.compat.langchain_redis.vectorstore import RedisVectorStore


def count_matching(meta: IndexMeta, keys: Any, tags: list[str], flt: Filter) -> Plan[int]:
    """Documents of a RediSearch index matching `flt` (one FT.SEARCH ... LIMIT 0 0 per shard)."""
    query = to_search(flt, meta.index_schema)
    names = [keys.vector_index(meta.index, meta.generation, t) for t in tags]
    replies = yield [Call(("FT.SEARCH", n, query, "LIMIT", 0, 0, "DIALECT", 2), route=n) for n in names]
    return sum(int(check(r, f"count documents of index {meta.index!r}")[0]) for r in replies)


class SearchIndexView(str):
    """The index name plus the redisvl `SearchIndex` operations langchain-redis users call."""

    _store: RedisVectorStore

    def __new__(cls, name: str, store: RedisVectorStore) -> SearchIndexView:
        view = super().__new__(cls, name)
        view._store = store
        return view

    @property
    def name(self) -> str:
        return str(self)

    @property
    def client(self) -> Any:
        """The redis-py client (the documents are in sluice's keys, not at the peer's)."""
        return self._store.client.redis

    def exists(self) -> bool:
        return self._store.exists()

    def info(self) -> dict[str, Any]:
        """sluice's description of the index (metadata and document count), not FT.INFO."""
        session = self._store.session
        found = drive(
            index_info(self._store.client.keys, str(self), session.runner.shard_tags()), session.runner
        )
        if found is None:
            raise ConfigError(f"index {str(self)!r} does not exist")
        return found

    def delete(self, drop: bool = True) -> None:
        """Drop the index with its documents (sluice keeps no documents without their index)."""
        self._store.session.drop()

    def drop_keys(self, keys: str | list[str]) -> int:
        """Delete documents by id (or ``<prefix>:<id>`` key); the number of them that existed."""
        return self._store.delete_counting([keys] if isinstance(keys, str) else list(keys))

    def query(self, query: Any) -> Any:
        """A redisvl ``CountQuery``: the number of documents its filter matches."""
        if type(query).__name__ != "CountQuery":
            raise ConfigError(
                f"{type(query).__name__} is not run on a sluice index: use the store's similarity_search / "
                "get_by_ids, or pass redisvl filters to them as filter="
            )
        store = self._store
        store.flush()  # count what this store wrote
        meta = store._open()
        raw = getattr(query, "_filter_expression", None)
        flt = foreign_filters.translate(raw) if raw is not None else None
        if flt is None:
            return store.session.count()
        if meta.backend != "search":
            raise ConfigError(
                f"a filtered count of {str(self)!r} needs a RediSearch index, not {meta.backend}"
            )
        session = store.session
        return drive(
            count_matching(meta, store.client.keys, session.runner.shard_tags(), flt), session.runner
        )

    @property
    def schema(self) -> Any:
        """The index schema as a redisvl ``IndexSchema`` (``to_yaml``, ``to_dict``, ``fields``)."""
        try:
            from redisvl.schema import IndexSchema as RedisvlSchema  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError("index.schema is a redisvl IndexSchema: pip install redisvl") from None
        store = self._store
        schema = store._open().index_schema
        v = schema.vector
        fields: list[dict[str, Any]] = [
            {"name": schema.text_field, "type": "text"},
            {"name": v.name, "type": "vector", "attrs": {
                "dims": v.dims, "distance_metric": v.metric, "algorithm": v.algorithm,
                "datatype": v.dtype if v.dtype in ("float32", "float16") else "float32",
            }},
        ]  # fmt: skip
        for f in schema.metadata:
            entry: dict[str, Any] = {"name": f.name, "type": f.type}
            if f.type == "tag":
                entry["attrs"] = {"separator": f.separator}
            fields.append(entry)
        prefix = store.key_prefix or str(self)
        return RedisvlSchema.from_dict(
            {"index": {"name": str(self), "prefix": prefix, "storage_type": "hash"}, "fields": fields}
        )

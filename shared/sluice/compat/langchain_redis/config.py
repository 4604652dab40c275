"""langchain-redis's `RedisConfig`: the same fields and defaults, describing a sluice index."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sluice.vectors.schema import RESERVED, IndexSchema, MetadataField, VectorField

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DTYPES = {"FLOAT32": "float32", "FLOAT64": "float32", "FLOAT16": "float16"}


def _ulid_like() -> str:
    import uuid

    return uuid.uuid4().hex


class RedisConfig(BaseModel):
    """Drop-in for ``langchain_redis.RedisConfig``.

    A redisvl schema (``schema=`` an ``IndexSchema`` or its dict, or ``schema_path`` a YAML file)
    shapes a new index as it did: its text, tag and numeric fields become the index's (its
    content field the document text, its vector field the vector), and search results then
    carry only those fields, as langchain-redis returned them without its ``_metadata_json``
    (with that field in the schema, the whole metadata; its ``_index_name``-like fields are not
    indexed). The store's index is the schema's own name (``schema_path``/``index_schema`` as
    well as ``schema=``), as langchain-redis's store built its index from the schema.
    ``to_index_schema()`` gives the redisvl schema langchain-redis builds from the config.
    Differences on purpose: ``storage_type="json"`` is not used (sluice stores documents its own
    way), geo fields are not indexed, and the connection comes from ``redis_url`` or
    ``redis_client`` (``connection_args`` are ignored).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    index_name: str = Field(default_factory=_ulid_like)
    from_existing: bool = False
    key_prefix: str | None = None
    redis_url: str = "redis://localhost:6379"
    redis_client: Any = None
    connection_args: dict[str, Any] | None = Field(default_factory=dict)
    distance_metric: str = "COSINE"
    indexing_algorithm: str = "FLAT"
    vector_datatype: str = "FLOAT32"
    storage_type: str = "hash"
    id_field: str = "id"
    content_field: str = "text"
    embedding_field: str = "embedding"
    default_tag_separator: str = "|"
    metadata_schema: list[dict[str, Any]] | None = Field(default_factory=list)
    index_schema: Any = Field(default=None, alias="schema")
    schema_path: str | None = None
    return_keys: bool = False
    custom_keys: list[str] | None = None
    embedding_dimensions: int | None = None
    legacy_key_format: bool = True

    @model_validator(mode="before")
    @classmethod
    def _named_by_schema(cls, values: Any) -> Any:
        """As langchain-redis: ``schema=`` names the index and its key prefix."""
        if isinstance(values, dict) and "schema" in values:
            index = getattr(values["schema"], "index", None)
            if index is not None:
                values = {**values, "index_name": index.name, "key_prefix": index.prefix}
        return values

    @model_validator(mode="after")
    def _key_prefix(self) -> RedisConfig:
        if self.key_prefix is None:
            self.key_prefix = self.index_name
        return self

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> RedisConfig:
        return cls(**kwargs)

    @classmethod
    def with_metadata_schema(cls, metadata_schema: list[dict[str, Any]], **kwargs: Any) -> RedisConfig:
        return cls(metadata_schema=metadata_schema, **kwargs)

    @classmethod
    def from_schema(cls, schema: Any, **kwargs: Any) -> RedisConfig:
        return cls(schema=schema, **kwargs)

    @classmethod
    def from_yaml(cls, schema_path: str, **kwargs: Any) -> RedisConfig:
        return cls(schema_path=schema_path, **kwargs)

    @classmethod
    def from_existing_index(cls, index_name: str, redis: Any = None) -> RedisConfig:
        return cls(index_name=index_name, from_existing=True, redis_client=redis)

    def redisvl_schema(self) -> Any:
        """The redisvl ``IndexSchema`` given (``schema=`` or ``schema_path``), or None."""
        if self.index_schema is None and not self.schema_path:
            return None
        from redisvl.schema import IndexSchema as RedisvlSchema  # type: ignore[import-untyped]

        if self.index_schema is None:
            return RedisvlSchema.from_yaml(str(self.schema_path))
        if isinstance(self.index_schema, dict):
            return RedisvlSchema.from_dict(self.index_schema)
        return self.index_schema

    def store_index_name(self) -> str:
        """The index the store uses: a given redisvl schema's own name, else `index_name` (as the
        peer's store, which builds its redisvl index from `to_index_schema()`)."""
        given = self.redisvl_schema()
        return str(given.index.name) if given is not None else self.index_name

    def to_index_schema(self) -> Any:
        """The redisvl ``IndexSchema`` of this config, as langchain-redis builds it: the given one
        (``schema=``/``schema_path``), else the id (tag), content (text) and vector fields plus
        ``metadata_schema``. It describes the configuration (sluice's own index is `to_sluice`)."""
        given = self.redisvl_schema()
        if given is not None:
            return given
        from redisvl.schema import IndexSchema as RedisvlSchema

        vector = {
            "name": self.embedding_field,
            "type": "vector",
            "attrs": {
                "dims": self.embedding_dimensions,
                "distance_metric": self.distance_metric.lower(),
                "algorithm": self.indexing_algorithm.lower(),
                "datatype": self.vector_datatype.lower(),
            },
        }
        fields = [
            {"name": self.id_field, "type": "tag"},
            {"name": self.content_field, "type": "text"},
            vector,
        ]
        index = {"name": self.index_name, "prefix": self.key_prefix, "storage_type": self.storage_type}
        return RedisvlSchema.from_dict({"index": index, "fields": [*fields, *(self.metadata_schema or [])]})

    def schema_fields(self) -> list[str] | None:
        """The metadata fields of a given redisvl schema (what results carry), or None."""
        given = self.redisvl_schema()
        if given is None:
            return None
        names = [f.name for f in given.fields.values() if _kind(f) != "vector"]
        if "_metadata_json" in names:  # the peer then returned the whole metadata
            return None
        return [
            n for n in names if n not in (self.content_field, self.embedding_field) and not n.startswith("_")
        ]

    def to_sluice(self, dims: int) -> IndexSchema:
        """The sluice schema a new index gets (`embedding_dimensions`, else the embeddings' size)."""
        given = self.redisvl_schema()
        if given is not None:
            return self._from_redisvl(given, dims)
        fields = []
        for f in self.metadata_schema or []:
            name, kind = f.get("name", ""), f.get("type", "")
            if kind in ("tag", "numeric", "text") and _FIELD.match(name) and name not in RESERVED | {"text"}:
                separator = (f.get("attrs") or {}).get("separator", self.default_tag_separator)
                fields.append(MetadataField(name=name, type=kind, separator=separator))
        vector = VectorField(
            dims=self.embedding_dimensions or dims,
            metric=self.distance_metric.lower(),
            algorithm=self.indexing_algorithm.lower(),
            dtype=_DTYPES.get(self.vector_datatype.upper(), "float32"),
        )
        return IndexSchema(vector=vector, metadata=tuple(fields))

    def _from_redisvl(self, given: Any, dims: int) -> IndexSchema:
        text = self.content_field if _usable(self.content_field) else "text"
        vector = VectorField(
            dims=self.embedding_dimensions or dims,
            metric=self.distance_metric.lower(),
            algorithm=self.indexing_algorithm.lower(),
        )
        fields = []
        for f in given.fields.values():
            kind, attrs = _kind(f), f.attrs
            if kind == "vector":
                vector = VectorField(
                    name=f.name if _usable(f.name) and f.name != text else "embedding",
                    dims=int(attrs.dims),
                    metric=_value(attrs.distance_metric).lower(),
                    algorithm=_value(attrs.algorithm).lower(),
                    dtype=_DTYPES.get(_value(attrs.datatype).upper(), "float32"),
                    **{
                        k: int(getattr(attrs, k))
                        for k in ("m", "ef_construction", "ef_runtime")
                        if getattr(attrs, k, None)
                    },
                )
            elif (
                kind in ("tag", "numeric", "text") and f.name != text and _usable(f.name) and f.name[0] != "_"
            ):
                separator = getattr(attrs, "separator", None) or self.default_tag_separator
                fields.append(MetadataField(name=f.name, type=kind, separator=separator))
        kept = tuple(f for f in fields if f.name != vector.name)
        return IndexSchema(text_field=text, vector=vector, metadata=kept)


def _kind(field: Any) -> str:
    return _value(field.type).lower()


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str))


def _usable(name: str) -> bool:
    return bool(_FIELD.match(name)) and name not in RESERVED

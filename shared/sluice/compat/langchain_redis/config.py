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

    Differences on purpose: ``index_schema``/``schema_path`` (redisvl schemas) and
    ``storage_type="json"`` are not read — sluice stores documents its own way; describe
    filterable fields with ``metadata_schema`` (``[{"name": ..., "type": "tag"|"numeric"|"text"}]``).
    ``from_schema``/``from_yaml`` do not exist. The connection comes from ``redis_url`` or
    ``redis_client``; ``connection_args`` are ignored.
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
    def from_existing_index(cls, index_name: str, redis: Any = None) -> RedisConfig:
        return cls(index_name=index_name, from_existing=True, redis_client=redis)

    def to_sluice(self, dims: int) -> IndexSchema:
        """The sluice schema a new index gets (`embedding_dimensions`, else the embeddings' size)."""
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

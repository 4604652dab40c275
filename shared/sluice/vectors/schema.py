"""The schema of a vector index: text field, vector field, metadata fields (pydantic).

Build one per index and pass it to `client.vectorstore(index, embeddings, schema=...)`. The
schema is stored with the index; opening the index with a *different* schema is an error that
names each difference (`differences`), never a silent reuse. Changing a schema is a migration
(`sluice index migrate`): a new generation is built and the alias switched.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Algorithm = Literal["hnsw", "flat"]
Metric = Literal["cosine", "l2", "ip"]
DType = Literal["float32", "float16", "q8", "bin"]
FieldType = Literal["tag", "numeric", "text"]

RESERVED = frozenset({"_id", "_meta", "_v"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VectorField(_Model):
    """The embedding: its size, index algorithm, distance metric and storage type."""

    name: str = Field(default="embedding", description="hash field / attribute name of the vector")
    dims: int = Field(ge=1, le=32_768, description="vector length; must equal the embedder's")
    algorithm: Algorithm = Field(default="hnsw", description="hnsw (approximate, fast) or flat (exact)")
    metric: Metric = Field(default="cosine", description="cosine, l2 (euclidean) or ip (inner product)")
    dtype: DType = Field(
        default="float32",
        description="float32 / float16 (RediSearch); float32 (NOQUANT), q8 or bin (Vector Sets)",
    )
    m: int = Field(default=16, ge=2, le=512, description="HNSW: links per node")
    ef_construction: int = Field(default=200, ge=1, description="HNSW: candidates while building")
    ef_runtime: int = Field(
        default=100, ge=1, description="HNSW: candidates while searching (recall vs speed)"
    )


class MetadataField(_Model):
    """A metadata key that filters can use: tag (exact values), numeric (ranges) or text (words)."""

    name: str
    type: FieldType
    separator: str = Field(default=",", min_length=1, max_length=1, description="tag: between values")
    sortable: bool = False

    @model_validator(mode="after")
    def _valid_name(self) -> MetadataField:
        if not _NAME.match(self.name) or self.name in RESERVED:
            raise ValueError(
                f"metadata field name {self.name!r} must be a letter or _ followed by letters, digits or _ "
                f"(at most 64) and not one of {sorted(RESERVED)}"
            )
        return self


class IndexSchema(_Model):
    """Everything that defines an index's layout; two indexes are compatible iff schemas are equal."""

    text_field: str = Field(
        default="text", description="field holding the document text (TEXT in RediSearch)"
    )
    vector: VectorField
    metadata: tuple[MetadataField, ...] = ()

    @model_validator(mode="after")
    def _distinct_names(self) -> IndexSchema:
        names = [self.text_field, self.vector.name, *(f.name for f in self.metadata)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"field names must be distinct; repeated: {dupes}")
        bad = [n for n in (self.text_field, self.vector.name) if not _NAME.match(n) or n in RESERVED]
        if bad:
            raise ValueError(f"field names {bad} must be identifiers and not one of {sorted(RESERVED)}")
        return self

    @classmethod
    def for_dims(cls, dims: int, *metadata: MetadataField, **vector: object) -> IndexSchema:
        """A default schema (HNSW, cosine, float32) for `dims`-long vectors."""
        return cls(vector=VectorField(dims=dims, **vector), metadata=metadata)

    def field(self, name: str) -> MetadataField | None:
        return next((f for f in self.metadata if f.name == name), None)

    def field_names(self) -> list[str]:
        return [f.name for f in self.metadata]


def differences(existing: IndexSchema, wanted: IndexSchema) -> list[str]:
    """Human-readable differences, e.g. ``vector.dims: index has 384, asked for 256``."""
    out: list[str] = []
    if existing.text_field != wanted.text_field:
        out.append(f"text_field: index has {existing.text_field!r}, asked for {wanted.text_field!r}")
    # ef_runtime is a query-time setting: each store may choose its own
    have = existing.vector.model_dump(exclude={"ef_runtime"})
    want = wanted.vector.model_dump(exclude={"ef_runtime"})
    out.extend(
        f"vector.{k}: index has {have[k]!r}, asked for {want[k]!r}" for k in have if have[k] != want[k]
    )
    old = {f.name: f for f in existing.metadata}
    new = {f.name: f for f in wanted.metadata}
    out.extend(f"metadata field {n!r}: asked for but not in the index" for n in new if n not in old)
    out.extend(f"metadata field {n!r}: in the index but not asked for" for n in old if n not in new)
    for name in old.keys() & new.keys():
        a, b = old[name].model_dump(), new[name].model_dump()
        out.extend(
            f"metadata field {name!r} {k}: index has {a[k]!r}, asked for {b[k]!r}" for k in a if a[k] != b[k]
        )
    return sorted(out)

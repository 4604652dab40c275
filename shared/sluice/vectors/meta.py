"""What is stored about an index beside its data: schema, backend, embedder name, generations.

One JSON string per index (`Keys.vector_meta`), written when the index is created and read by the
facade and by the index worker, which thereby learns how to store documents. It names the
embedder, never an import path. `generation` is the one queries read (behind a RediSearch
alias); `writing` lists those workers write (two while `sluice index migrate` rebuilds: `other`
then describes the second one, whose schema, embedder and even backend may differ). Code that
writes a generation asks `meta.at(generation)` for that generation's own description.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sluice.errors import StoreCorrupted
from sluice.vectors.schema import IndexSchema

BackendName = Literal["search", "vsets"]
INDEX_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class GenerationSpec(BaseModel):
    """A generation besides the one queries read: a migration's target, or (after the switch) its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: int = Field(ge=1)
    backend: BackendName
    index_schema: IndexSchema
    embedder: str | None = None
    shards: tuple[str, ...] = ("",)


class IndexMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: str = Field(pattern=INDEX_NAME)
    backend: BackendName
    index_schema: IndexSchema
    embedder: str | None = Field(default=None, description="settings name the workers embed with")
    generation: int = Field(default=1, ge=1, description="the generation queries read")
    writing: tuple[int, ...] = Field(default=(1,), description="generations workers write")
    shards: tuple[str, ...] = Field(
        default=("",), description="Vector Sets: shard hash tags, fixed at creation"
    )
    created: float = Field(default_factory=time.time)
    other: GenerationSpec | None = Field(
        default=None, description="the second generation workers write during a migration"
    )

    @model_validator(mode="after")
    def _writing_known(self) -> IndexMeta:
        known = {self.generation, *((self.other.generation,) if self.other else ())}
        if not self.writing or not set(self.writing) <= known:
            raise ValueError(f"writing {self.writing} names generations other than {sorted(known)}")
        return self

    def at(self, generation: int) -> IndexMeta:
        """This index as one generation sees it (its schema, embedder, backend and shards)."""
        if generation == self.generation:
            return self if self.writing == (generation,) and self.other is None else self._only(self)
        if self.other is None or self.other.generation != generation:
            raise ValueError(f"index {self.index!r} has no generation {generation}")
        return self._only(self.other)

    def _only(self, spec: IndexMeta | GenerationSpec) -> IndexMeta:
        return IndexMeta(
            index=self.index, backend=spec.backend, index_schema=spec.index_schema, embedder=spec.embedder,
            generation=spec.generation, writing=(spec.generation,), shards=spec.shards, created=self.created,
        )  # fmt: skip

    def spec(self) -> GenerationSpec:
        """The generation queries read, as a `GenerationSpec`."""
        return GenerationSpec(
            generation=self.generation, backend=self.backend, index_schema=self.index_schema,
            embedder=self.embedder, shards=self.shards,
        )  # fmt: skip

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, raw: bytes | str, key: str) -> IndexMeta:
        try:
            return cls.model_validate_json(raw)
        except ValidationError as e:
            raise StoreCorrupted(
                f"{key} does not hold sluice index metadata ({e.errors()[0].get('msg')}); "
                "drop the index (`sluice index drop`) and create it again"
            ) from None

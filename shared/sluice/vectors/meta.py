"""What is stored about an index beside its data: schema, backend, embedder name, generations.

One JSON string per index (`Keys.vector_meta`), written when the index is created and read by the
facade and by the index worker, which thereby learns how to store documents. It names the
embedder, never an import path. `generation` is the one queries read (behind a RediSearch
alias); `writing` lists those workers write (two while `sluice index migrate` rebuilds).
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sluice.errors import StoreCorrupted
from sluice.vectors.schema import IndexSchema

BackendName = Literal["search", "vsets"]
INDEX_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


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

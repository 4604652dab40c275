"""Where migrated data goes: the sluice cache, semantic cache or vector index, and its vectors.

A vector target adopts an existing sluice index as it is; otherwise its schema is derived from
the source's (size, metric, algorithm, storage type, filterable fields), so the copied vectors
answer the same queries the same way. Field names sluice cannot index stay in the metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from sluice.embeddings.registry import EmbedderRegistry
from sluice.migrate.fit import ALGORITHMS, dtype_of, metric_of
from sluice.migrate.records import SourceError, VectorSpec
from sluice.transport.runner import Runner, drive
from sluice.vectors.manager import read_meta
from sluice.vectors.meta import IndexMeta
from sluice.vectors.schema import RESERVED, IndexSchema, MetadataField, VectorField
from sluice.vectors.session import IndexSession

if TYPE_CHECKING:
    from sluice.facade.client import Client

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Embedder:
    """A settings embedder: its name and instance (the worker resolves the same name)."""

    name: str
    embeddings: Embeddings

    def dims(self) -> int:
        return len(self.embeddings.embed_query("dimension probe"))


def embedder(client: Client, name: str | None, *, required: bool) -> Embedder | None:
    registry = EmbedderRegistry(client.settings.embedders)
    if name is None:
        names = registry.names()
        if not required:
            return None
        if len(names) != 1:
            raise SourceError(
                f"name the settings embedder the workers embed with: --embedder (known: {names})"
            )
        name = names[0]
    return Embedder(name, registry.get(name))


def existing_index(client: Client, index: str) -> IndexMeta | None:
    runner = Runner(client.redis, cluster=client.capabilities.cluster)
    return drive(read_meta(client.keys, index), runner)


def derived_schema(spec: VectorSpec, dims: int) -> IndexSchema:
    """The sluice schema that stores `spec`'s vectors (or `dims`-long re-embedded ones) alike."""
    text_field = "text"
    fields = []
    for name, kind, separator in spec.fields:
        if _FIELD.match(name) and name not in RESERVED and name != text_field:
            fields.append(MetadataField(name=name, type=kind, separator=separator))
    vector = VectorField(
        dims=dims,
        metric=metric_of(spec) or "cosine",
        algorithm=ALGORITHMS.get(spec.algorithm, "hnsw"),
        dtype=dtype_of(spec),
    )
    return IndexSchema(text_field=text_field, vector=vector, metadata=tuple(fields))


def open_index(
    client: Client, index: str, schema: IndexSchema | None, embedder_name: str | None
) -> IndexMeta:
    """Create the target index (or adopt it: `schema` None) before any job writes into it."""
    session = IndexSession(client, index, schema=schema, backend="auto", embedder=embedder_name)
    return session.open(lambda: schema.vector.dims if schema else 0)

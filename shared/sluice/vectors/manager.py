"""Creating, opening and dropping indexes: the metadata record plus the backend's structures.

`open_index` is what a vector store runs once before its first read or write. An index whose
metadata exists is *adopted* (a different schema is refused, naming each difference) with reads
only: its structures are probed and only missing ones created, so a least-privilege app user
(no SET on the metadata, no FT.CREATE) can open an index ops created. A new index is claimed
with ``SET NX`` *before* its structures are built, so two processes creating it at once agree
on one schema, and a crash half-way is repaired by the next open (creation is idempotent). The
same plans serve `sluice index create|info|drop`; migrations live in `sluice.vectors.migration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluice.errors import ConfigError
from sluice.keys import Keys
from sluice.transport.runner import Call, Plan
from sluice.vectors.backend import Backend, check
from sluice.vectors.meta import BackendName, IndexMeta
from sluice.vectors.schema import IndexSchema, differences
from sluice.vectors.search import SearchBackend
from sluice.vectors.vsets import VectorSetBackend


class SchemaMismatch(ConfigError):
    """The index exists with another schema; `differences` lists what differs."""

    def __init__(self, index: str, diffs: Sequence[str]) -> None:
        self.differences = list(diffs)
        super().__init__(
            f"index {index!r} exists with a different schema: {'; '.join(diffs)}. Open it with its own "
            "schema (or schema=None to adopt it), use another index name, or change it with "
            "`sluice index migrate`"
        )


def make_backend(name: BackendName, keys: Keys, tags: Sequence[str]) -> Backend:
    """`tags`: the current shard tags (one per primary), used by RediSearch's per-primary indexes."""
    if name == "search":
        return SearchBackend(keys, tags)
    return VectorSetBackend(keys)


def read_meta(keys: Keys, index: str) -> Plan[IndexMeta | None]:
    key = keys.vector_meta(index)
    [raw] = yield [Call(("GET", key), route=key)]
    raw = check(raw, f"read the metadata of index {index!r}")
    return IndexMeta.decode(raw, key) if raw else None


def _adopt(existing: IndexMeta, wanted: IndexMeta, schema_given: bool, backend_given: bool) -> None:
    if schema_given:
        diffs = differences(existing.index_schema, wanted.index_schema)
        if diffs:
            raise SchemaMismatch(existing.index, diffs)
    if backend_given and existing.backend != wanted.backend:
        raise ConfigError(
            f"index {existing.index!r} is stored with the {existing.backend!r} backend, not {wanted.backend!r}; "
            "open it with backend='auto' or migrate it"
        )
    if wanted.embedder and existing.embedder and wanted.embedder != existing.embedder:
        raise ConfigError(
            f"index {existing.index!r} is embedded with {existing.embedder!r}, not {wanted.embedder!r}; vectors of "
            "two embedders cannot share an index: use the index's embedder or another index name"
        )


def open_index(
    keys: Keys,
    wanted: IndexMeta,
    tags: Sequence[str],
    *,
    schema_given: bool = True,
    backend_given: bool = False,
) -> Plan[IndexMeta]:
    """Adopt or create the index `wanted` describes; returns the stored metadata."""
    key = keys.vector_meta(wanted.index)
    make_backend(wanted.backend, keys, tags).validate(wanted.index_schema)
    meta = yield from read_meta(keys, wanted.index)
    if meta is None:
        [created, raw] = yield [
            Call(("SET", key, wanted.encode(), "NX"), route=key),
            Call(("GET", key), route=key),
        ]
        check(created, f"create index {wanted.index!r}")
        raw = check(raw, f"read the metadata of index {wanted.index!r}")
        if created:
            yield from make_backend(wanted.backend, keys, tags).create(wanted, wanted.generation)
            return wanted
        if not raw:  # dropped again in between: the caller may simply retry
            raise ConfigError(f"index {wanted.index!r} was dropped while being opened; open it again")
        meta = IndexMeta.decode(raw, key)  # another process created it first
    _adopt(meta, wanted, schema_given, backend_given)
    # the generation queries read; a migration's other generation is its own business
    yield from make_backend(meta.backend, keys, tags).ensure(meta, meta.generation)
    return meta


def drop_index(keys: Keys, index: str, tags: Sequence[str]) -> Plan[bool]:
    """Drop every generation and the metadata; False if there was no such index."""
    meta = yield from read_meta(keys, index)
    if meta is None:
        return False
    for generation in sorted({meta.generation, *meta.writing}):
        yield from make_backend(meta.at(generation).backend, keys, tags).drop(meta, generation)
    key = keys.vector_meta(index)
    [reply] = yield [Call(("DEL", key), route=key)]
    check(reply, f"drop index {index!r}")
    return True


def index_info(keys: Keys, index: str, tags: Sequence[str]) -> Plan[dict[str, Any] | None]:
    """Metadata plus the live document count (for `sluice index info`)."""
    meta = yield from read_meta(keys, index)
    if meta is None:
        return None
    count = yield from make_backend(meta.backend, keys, tags).count(meta)
    return {**meta.model_dump(mode="json"), "documents": count}


def default_schema(dims: int) -> IndexSchema:
    return IndexSchema.for_dims(dims)

"""The interface both vector backends implement, and the choice between them by capability.

A backend is sans-I/O: every operation is a plan (`sluice.transport.runner`) or a list of calls,
run by a sync or asyncio runner. Writes are versioned Lua calls (the index worker pipelines
them); reads fan out over shards (one per Cluster primary) and merge top-k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import redis.exceptions as rex

from sluice.connection.capabilities import Capabilities
from sluice.errors import ConfigError, SluiceError, StoreCorrupted
from sluice.transport.runner import Call, Plan
from sluice.transport.translate import ServerErrors, to_sluice_error
from sluice.vectors.documents import DocWrite, Hit
from sluice.vectors.filters import Filter
from sluice.vectors.hybrid import Fused, HybridQuery
from sluice.vectors.meta import BackendName, IndexMeta
from sluice.vectors.schema import IndexSchema

BackendChoice = Literal["auto", "search", "vsets"]


@dataclass(frozen=True, slots=True)
class VectorQuery:
    """A k-nearest-neighbour query, optionally filtered, range-limited, or returning vectors (MMR)."""

    vector: Sequence[float]
    k: int = 4
    filter: Filter | None = None
    ef_runtime: int | None = None
    distance_threshold: float | None = None
    with_vectors: bool = False
    epsilon: float | None = None  # HNSW range queries: search boundary slack (None: RANGE_EPSILON)


class Backend(Protocol):
    name: BackendName

    def validate(self, schema: IndexSchema) -> None:
        """Raise `ConfigError` if this backend cannot store `schema`."""

    def create(self, meta: IndexMeta, generation: int) -> Plan[None]:
        """Create what a generation needs (idempotent); point readers at it if it is `meta.generation`."""

    def ensure(self, meta: IndexMeta, generation: int) -> Plan[None]:
        """Check that a generation's structures exist and create only what is missing: read-only when
        the index is whole (an app user without FT.CREATE can open it), a repair after a crash."""

    def point_alias(self, meta: IndexMeta, generation: int) -> Plan[None]:
        """Make queries read `generation` (the atomic switch of a migration)."""

    def drop(self, meta: IndexMeta, generation: int) -> Plan[None]:
        """Delete a generation's index structures and documents."""

    def write_calls(
        self, meta: IndexMeta, generation: int, writes: Sequence[DocWrite], tombstone_ttl_ms: int
    ) -> list[Call]:
        """Versioned upserts and deletes of `generation` (under `meta.at(generation)`), one Lua call each."""

    def search(self, meta: IndexMeta, query: VectorQuery) -> Plan[list[Hit]]: ...

    def hybrid(self, meta: IndexMeta, query: HybridQuery, native: bool) -> Plan[list[Fused]]:
        """BM25 text fused with KNN (`native`: through FT.HYBRID); Vector Sets refuse, saying why."""

    def get(self, meta: IndexMeta, ids: Sequence[str]) -> Plan[list[Hit | None]]: ...

    def count(self, meta: IndexMeta) -> Plan[int]: ...


def choose(caps: Capabilities, requested: BackendChoice, for_what: str) -> BackendName:
    """RediSearch where it exists, else Vector Sets; `CapabilityMissing` names what is missing."""
    if requested == "search":
        caps.require("search", for_what)
        return "search"
    if requested == "vsets":
        caps.require("vector_sets", for_what)
        return "vsets"
    caps.require("vectors", for_what)
    return "search" if caps.search else "vsets"


def check(reply: Any, what: str) -> Any:
    """Raise the sluice error for a server error reply; otherwise return the reply."""
    if isinstance(reply, rex.ResponseError):
        if ServerErrors.matches(reply, ServerErrors.WRONGTYPE):
            raise StoreCorrupted(
                f"{what}: a key of the index holds another Redis type ({reply}); delete it and re-index"
            )
        raise to_sluice_error(reply, what) or SluiceError(f"{what}: {reply}")
    return reply


def unsupported(backend: str, what: str, instead: str) -> ConfigError:
    return ConfigError(f"{backend} cannot {what}; {instead}")

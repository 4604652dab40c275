"""One vector store's connection to its index: open once, then search and read (sync and asyncio).

Opening probes the server (which backend exists), reads the Cluster topology (one shard tag per
primary), and adopts or creates the index (`manager.open_index`). Everything after is a plan
from the backend, driven by the sync or the asyncio runner: the logic exists once. The metadata
is re-read when it is older than `settings.vectors.meta_refresh` seconds (one GET), so a
session follows the switch of a `sluice index migrate` (new generation, schema or backend).
A new index opened without a schema takes its metadata fields from the first write's metadata
(`suggest`, `sluice.vectors.inference`), and says so in a log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigError
from sluice.transport.runner import AsyncRunner, Runner, adrive, drive
from sluice.vectors.backend import Backend, BackendChoice, VectorQuery, choose
from sluice.vectors.backfill import purge_generation
from sluice.vectors.documents import Hit
from sluice.vectors.hybrid import Fused, HybridQuery
from sluice.vectors.inference import Inferred, infer_fields
from sluice.vectors.manager import default_schema, drop_index, make_backend, open_index, read_meta
from sluice.vectors.meta import IndexMeta
from sluice.vectors.schema import IndexSchema

if TYPE_CHECKING:
    from sluice.connection.capabilities import Capabilities
    from sluice.core import Core

log = logging.getLogger(__name__)


class IndexSession:
    def __init__(
        self,
        client: Core,
        index: str,
        *,
        schema: IndexSchema | None,
        backend: BackendChoice,
        embedder: str | None,
    ) -> None:
        self.client = client
        self.index = index
        self.schema = schema
        self.backend_choice: BackendChoice = backend
        self.embedder = embedder
        self.meta: IndexMeta | None = None
        self._backend: Backend | None = None
        self._tags: list[str] = [""]
        self._read_at = 0.0
        self._runner: Runner | None = None
        self._arunner: AsyncRunner | None = None
        self._sample: Sequence[Mapping[str, Any] | None] = ()
        self._inferred: Inferred | None = None

    def suggest(self, metadatas: Sequence[Mapping[str, Any] | None] | None) -> None:
        """The metadata of a first write: a new index opened without a schema gets its fields."""
        if self.meta is None and self.schema is None:
            self._sample = list(metadatas or ())

    def _new_schema(self, dims: int) -> IndexSchema:
        schema = default_schema(dims)
        self._inferred = infer_fields(self._sample, (schema.text_field, schema.vector.name))
        return schema.model_copy(update={"metadata": self._inferred.fields})

    def _wanted(
        self, caps: Capabilities, tags: Sequence[str], existing: IndexMeta | None, dims: int | None
    ) -> IndexMeta:
        backend = choose(caps, self.backend_choice, f"vector index {self.index!r}")
        if existing is not None and self.backend_choice == "auto":
            backend = existing.backend
        schema = self.schema or (existing.index_schema if existing else self._new_schema(dims or 0))
        return IndexMeta(
            index=self.index, backend=backend, index_schema=schema, embedder=self.embedder,
            shards=tuple(tags) if backend == "vsets" else ("",),
        )  # fmt: skip

    def _created(self, wanted: IndexMeta, meta: IndexMeta) -> IndexMeta:
        """Log what a new index without a given schema was created with."""
        inferred, sampled = self._inferred, bool(self._sample)
        self._inferred, self._sample = None, ()
        if inferred is None or meta.index_schema != wanted.index_schema:
            return meta
        if sampled:
            log.info(
                "vector index %r: no schema given, so its metadata fields are inferred from its first write: "
                "%s. Pass schema=IndexSchema(...) to choose them; fields are fixed once the index exists "
                "(`sluice index migrate` changes them)",
                self.index, inferred.describe(),
            )  # fmt: skip
        else:
            log.info(
                "vector index %r: created with no metadata fields (no schema given, first used by a read); "
                "filters need fields: pass schema=IndexSchema(...), or write first to infer them",
                self.index,
            )
        return meta

    def _opened(self, meta: IndexMeta, tags: Sequence[str]) -> IndexMeta:
        if self._backend is None or self.meta is None or self.meta.backend != meta.backend:
            self._backend = make_backend(meta.backend, self.client.keys, tags)
        self.meta = meta
        self._tags = list(tags)
        self._read_at = time.monotonic()
        return meta

    def _stale(self) -> bool:
        return time.monotonic() - self._read_at > self.client.settings.vectors.meta_refresh

    def _refreshed(self, meta: IndexMeta | None) -> None:
        """Follow a migration; a vanished index keeps the old view (its reads then say what is wrong)."""
        if meta is not None:
            self._opened(meta, self._tags)
        else:
            self._read_at = time.monotonic()

    def _flags(self) -> dict[str, bool]:
        return {"schema_given": self.schema is not None, "backend_given": self.backend_choice != "auto"}

    # --- sync --------------------------------------------------------------------------------------
    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(self.client.redis, cluster=self.client.capabilities.cluster)
        return self._runner

    def open(self, dims: Callable[[], int]) -> IndexMeta:
        """Adopt or create the index; `dims()` is asked only when a default schema must be built."""
        if self.meta is not None:
            return self.meta
        caps = self.client.capabilities
        choose(caps, self.backend_choice, f"vector index {self.index!r}")
        tags = self.runner.shard_tags()
        existing = drive(read_meta(self.client.keys, self.index), self.runner)
        need = existing is None and self.schema is None
        wanted = self._wanted(caps, tags, existing, dims() if need else None)
        meta = drive(open_index(self.client.keys, wanted, tags, **self._flags()), self.runner)
        return self._opened(self._created(wanted, meta), tags)

    def fresh(self) -> tuple[Backend, IndexMeta]:
        """The backend and metadata to read with, re-read if older than `meta_refresh`."""
        assert self.meta is not None and self._backend is not None, "open() first"
        if self._stale():
            self._refreshed(drive(read_meta(self.client.keys, self.index), self.runner))
        return self._backend, self.meta

    def search(self, query: VectorQuery) -> list[Hit]:
        backend, meta = self.fresh()
        return drive(backend.search(meta, query), self.runner)

    def hybrid(self, query: HybridQuery) -> list[Fused]:
        backend, meta = self.fresh()
        return drive(backend.hybrid(meta, query, self.client.capabilities.hybrid), self.runner)

    def get(self, ids: Sequence[str]) -> list[Hit | None]:
        backend, meta = self.fresh()
        return drive(backend.get(meta, ids), self.runner)

    def count(self) -> int:
        backend, meta = self.fresh()
        return drive(backend.count(meta), self.runner)

    def drop(self) -> bool:
        """Drop the index, its documents and its metadata."""
        keys = self.client.keys
        meta = drive(read_meta(keys, self.index), self.runner)
        dropped = drive(drop_index(keys, self.index, self.runner.shard_tags()), self.runner)
        # FT.DROPINDEX DD deletes only its own slot's documents on a Cluster: the rest by SCAN
        if meta is not None and self.runner.cluster:
            for generation in sorted({meta.generation, *meta.writing}):
                if meta.at(generation).backend == "search":
                    purge_generation(self.client.redis, self.runner, keys, self.index, generation)
        self.meta = None
        return dropped

    # --- asyncio -----------------------------------------------------------------------------------
    async def arunner(self) -> AsyncRunner:
        """The running event loop's runner (each loop has its own connections)."""
        redis = self.client.async_redis
        if self._arunner is None or self._arunner.redis is not redis:
            caps = await self.client.acapabilities()
            self._arunner = AsyncRunner(redis, cluster=caps.cluster)
        return self._arunner

    async def aopen(self, dims: Callable[[], Awaitable[int]]) -> IndexMeta:
        if self.meta is not None:
            return self.meta
        caps = await self.client.acapabilities()
        choose(caps, self.backend_choice, f"vector index {self.index!r}")
        runner = await self.arunner()
        tags = await runner.shard_tags()
        existing = await adrive(read_meta(self.client.keys, self.index), runner)
        need = existing is None and self.schema is None
        wanted = self._wanted(caps, tags, existing, (await dims()) if need else None)
        meta = await adrive(open_index(self.client.keys, wanted, tags, **self._flags()), runner)
        return self._opened(self._created(wanted, meta), tags)

    async def afresh(self) -> tuple[Backend, IndexMeta]:
        assert self.meta is not None and self._backend is not None, "aopen() first"
        if self._stale():
            self._refreshed(await adrive(read_meta(self.client.keys, self.index), await self.arunner()))
        return self._backend, self.meta

    async def asearch(self, query: VectorQuery) -> list[Hit]:
        backend, meta = await self.afresh()
        return await adrive(backend.search(meta, query), await self.arunner())

    async def ahybrid(self, query: HybridQuery) -> list[Fused]:
        backend, meta = await self.afresh()
        native = (await self.client.acapabilities()).hybrid
        return await adrive(backend.hybrid(meta, query, native), await self.arunner())

    async def aget(self, ids: Sequence[str]) -> list[Hit | None]:
        backend, meta = await self.afresh()
        return await adrive(backend.get(meta, ids), await self.arunner())


def check_dims(vector: Sequence[float], meta: IndexMeta, what: str) -> None:
    dims = meta.index_schema.vector.dims
    if len(vector) != dims:
        raise ConfigError(
            f"{what} gives {len(vector)}-dimensional vectors but index {meta.index!r} holds {dims}-dimensional "
            f"ones (embedder {meta.embedder or 'of the app'}); query with the embedder the index was built with"
        )

"""One vector store's connection to its index: open once, then search and read (sync and asyncio).

Opening probes the server (which backend exists), reads the Cluster topology (one shard tag per
primary), and adopts or creates the index (`manager.open_index`). Everything after is a plan
from the backend, driven by the sync or the asyncio runner: the logic exists once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from sluice.errors import ConfigError
from sluice.vectors.backend import Backend, BackendChoice, VectorQuery, choose
from sluice.vectors.documents import Hit
from sluice.vectors.manager import default_schema, drop_index, make_backend, open_index, read_meta
from sluice.vectors.meta import IndexMeta
from sluice.vectors.runner import AsyncRunner, Runner, adrive, drive
from sluice.vectors.schema import IndexSchema

if TYPE_CHECKING:
    from sluice.connection.capabilities import Capabilities
    from sluice.facade.client import Client


class IndexSession:
    def __init__(
        self,
        client: Client,
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
        self._runner: Runner | None = None
        self._arunner: AsyncRunner | None = None

    def _wanted(
        self, caps: Capabilities, tags: Sequence[str], existing: IndexMeta | None, dims: int | None
    ) -> IndexMeta:
        backend = choose(caps, self.backend_choice, f"vector index {self.index!r}")
        if existing is not None and self.backend_choice == "auto":
            backend = existing.backend
        schema = self.schema or (existing.index_schema if existing else default_schema(dims or 0))
        return IndexMeta(
            index=self.index, backend=backend, index_schema=schema, embedder=self.embedder,
            shards=tuple(tags) if backend == "vsets" else ("",),
        )  # fmt: skip

    def _opened(self, meta: IndexMeta, tags: Sequence[str]) -> IndexMeta:
        self.meta = meta
        self._backend = make_backend(meta.backend, self.client.keys, tags)
        return meta

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
        return self._opened(
            drive(open_index(self.client.keys, wanted, tags, **self._flags()), self.runner), tags
        )

    def search(self, query: VectorQuery) -> list[Hit]:
        assert self.meta is not None and self._backend is not None, "open() first"
        return drive(self._backend.search(self.meta, query), self.runner)

    def get(self, ids: Sequence[str]) -> list[Hit | None]:
        assert self.meta is not None and self._backend is not None, "open() first"
        return drive(self._backend.get(self.meta, ids), self.runner)

    def count(self) -> int:
        assert self.meta is not None and self._backend is not None, "open() first"
        return drive(self._backend.count(self.meta), self.runner)

    def drop(self) -> bool:
        """Drop the index, its documents and its metadata."""
        dropped = drive(drop_index(self.client.keys, self.index, self.runner.shard_tags()), self.runner)
        self.meta = None
        return dropped

    # --- asyncio -----------------------------------------------------------------------------------
    async def arunner(self) -> AsyncRunner:
        if self._arunner is None:
            caps = await self.client.acapabilities()
            self._arunner = AsyncRunner(self.client.async_redis, cluster=caps.cluster)
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
        return self._opened(
            await adrive(open_index(self.client.keys, wanted, tags, **self._flags()), runner), tags
        )

    async def asearch(self, query: VectorQuery) -> list[Hit]:
        assert self.meta is not None and self._backend is not None, "aopen() first"
        return await adrive(self._backend.search(self.meta, query), await self.arunner())

    async def aget(self, ids: Sequence[str]) -> list[Hit | None]:
        assert self.meta is not None and self._backend is not None, "aopen() first"
        return await adrive(self._backend.get(self.meta, ids), await self.arunner())


def check_dims(vector: Sequence[float], meta: IndexMeta, what: str) -> None:
    dims = meta.index_schema.vector.dims
    if len(vector) != dims:
        raise ConfigError(
            f"{what} gives {len(vector)}-dimensional vectors but index {meta.index!r} holds {dims}-dimensional "
            f"ones (embedder {meta.embedder or 'of the app'}); query with the embedder the index was built with"
        )

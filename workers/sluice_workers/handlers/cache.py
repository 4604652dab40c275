"""cache-fill: store computed LLM answers, exact and (when the job carries a vector or names an
embedder) semantic.

A batch is written in one pipeline of versioned script calls. A semantic entry is stored with the
vector the app computed when the job carries one (the app embedded the prompt at its lookup);
only the others are embedded here, with one `embed_documents` call per settings embedder. Generations are validated against the
codec's allow-list first: a job whose generations are not LangChain generation dicts can never
succeed and is dead-lettered alone, the rest of the batch is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sluice.errors import PermanentJobError
from sluice.jobs.codec import Job
from sluice.jobs.models import CacheFillPayload
from sluice.keys import Keys
from sluice.settings import Settings
from sluice.stores import generations as codec
from sluice.stores.cache_versions import CacheWrite
from sluice.stores.exact_cache import ExactCacheStore
from sluice.stores.semantic_cache import SemanticWriter
from sluice.types import EntryId
from sluice.vectors.budget import Pacer
from sluice_workers.handlers.base import Failures


class SemanticFills(Protocol):
    """Writes the semantic entries of a batch (writes with a `vector` or an `embedder`)."""

    def write(self, writes: Sequence[CacheWrite]) -> None: ...


class CacheFiller:
    """Exact entries for every write, semantic entries for those with a vector or an embedder."""

    def __init__(self, exact: ExactCacheStore, semantic: SemanticFills | None = None) -> None:
        self.exact = exact
        self.semantic = semantic

    def apply(self, writes: Sequence[CacheWrite]) -> None:
        if not writes:
            return
        writes = self.exact.versioned(writes)  # warm jobs enqueued without a version (older sluice)
        self.exact.write(writes)
        semantic = [w for w in writes if w.embedder or w.vector is not None]
        if semantic:
            if self.semantic is None:
                raise PermanentJobError(
                    "this worker has no semantic cache writer (RediSearch or Vector Sets needed)"
                )
            self.semantic.write(semantic)


def build_filler(redis: Any, settings: Settings, *, cluster: bool, pacer: Pacer | None = None) -> CacheFiller:
    keys = Keys(settings.namespace, settings.queue.partitions)
    semantic = SemanticWriter(redis, settings, cluster=cluster, pacer=pacer)
    return CacheFiller(ExactCacheStore(redis, keys, cluster=cluster), semantic)


class CacheFillHandler:
    kind = "cache-fill"

    def __init__(self, filler: CacheFiller) -> None:
        self._filler = filler

    @classmethod
    def build(
        cls, redis: Any, settings: Settings, *, cluster: bool, pacer: Pacer | None = None
    ) -> CacheFillHandler:
        return cls(build_filler(redis, settings, cluster=cluster, pacer=pacer))

    def handle(self, jobs: Sequence[Job]) -> Failures:
        failures: dict[EntryId, BaseException] = {}
        writes: list[CacheWrite] = []
        for job in jobs:
            p = job.envelope.payload
            assert isinstance(p, CacheFillPayload)  # routed by kind
            try:
                codec.from_dicts(p.generations)
            except (ValueError, TypeError, KeyError) as e:
                failures[job.entry_id] = PermanentJobError(
                    f"generations are not LangChain generation dicts ({str(e)[:200]}); "
                    "encode them with sluice.stores.generations.to_dicts"
                )
                continue
            writes.append(CacheWrite.from_payload(p, job.version))
        self._filler.apply(writes)
        return failures

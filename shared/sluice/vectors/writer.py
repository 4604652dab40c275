"""What every worker-side vector writer shares (index jobs, semantic cache fills, history recall).

Keys, a runner over the client, embedders by name with the embeddings cache, budget-sized write
pipelines (`WriteBudget`, paced by the workers' governor when given one) and the tombstone TTL: built once from settings, so the three writers
embed, cache and pace their writes the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluice.embeddings.cache import EmbeddingsCache
from sluice.embeddings.registry import EmbedderRegistry
from sluice.keys import Keys
from sluice.settings import Settings
from sluice.transport.runner import Call, Runner
from sluice.vectors.budget import Pacer, WriteBudget


class VectorWriter:
    """Base of the worker-side vector writers."""

    def __init__(
        self,
        redis: Any,
        settings: Settings,
        *,
        cluster: bool = False,
        registry: EmbedderRegistry | None = None,
        embeddings_cache: EmbeddingsCache | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.keys = Keys(settings.namespace, settings.queue.partitions)
        self.runner = Runner(redis, cluster=cluster)
        self.registry = registry or EmbedderRegistry(settings.embedders)
        self.embeddings = embeddings_cache or EmbeddingsCache(redis, self.keys, settings.vectors)
        self.budget = WriteBudget(settings.worker.write_budget_ms, pacer=pacer)
        self.tombstone_ttl_ms = int(settings.vectors.tombstone_ttl * 1000)

    def send(self, calls: Sequence[Call]) -> list[Any]:
        """Run write calls in budget-sized pipelines; the replies in order."""
        return self.budget.run(self.runner.run, calls)

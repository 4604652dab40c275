"""Which reader reads which data: (source, what) -> a `Source`, or an error saying why not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from sluice.migrate.caches import CommunityCache, LangchainRedisCache
from sluice.migrate.histories import CommunityHistory, LangchainRedisHistory, RedisVLHistory
from sluice.migrate.records import Options, Record, Skipped, SourceError, SourceName, VectorSpec, What
from sluice.migrate.semantic import CommunitySemantic, RedisVLSemantic
from sluice.migrate.vectors import open_vectors


class Source(Protocol):
    what: str
    described: str
    vectors: VectorSpec | None
    default_target: str | None

    def records(self) -> Iterator[Record | Skipped]: ...


def open_source(redis: Any, source: SourceName, what: What, options: Options) -> Source:
    """The reader of `what` in `source`'s layout over `redis` (reads nothing yet but index info)."""
    if what == "vectors":
        return open_vectors(redis, source, options)
    if source == "langchain-community":
        if what == "cache":
            return CommunityCache(redis, options)
        if what == "semantic-cache":
            return CommunitySemantic(redis, options)
        return CommunityHistory(redis, options)
    if source == "langchain-redis":
        if what == "cache":
            return LangchainRedisCache(redis, options)
        if what == "semantic-cache":
            return RedisVLSemantic(redis, options, "langchain-redis RedisSemanticCache")
        return LangchainRedisHistory(redis, options)
    if what == "cache":
        raise SourceError(
            "redisvl has no exact LLM cache; its SemanticCache migrates with --what semantic-cache"
        )
    if what == "semantic-cache":
        return RedisVLSemantic(redis, options, "redisvl SemanticCache")
    return RedisVLHistory(redis, options)

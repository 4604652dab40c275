"""langchain-redis's `RedisCache` and `RedisSemanticCache`, backed by sluice."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from sluice.compat.clients import client_for
from sluice.compat.exact import DigestFallbackCache
from sluice.facade.client import Client
from sluice.facade.semantic_cache import SemanticCache, resolve_embedder
from sluice.migrate.legacy import (
    LANGCHAIN_REDIS_MARKER,
    langchain_redis_cache,
    langchain_redis_digest,
    redisvl_semantic_cache,
)

DEFAULT_CACHE_NAME = "llmcache"


class RedisCache(DigestFallbackCache):
    """Drop-in for ``langchain_redis.RedisCache(redis_url=..., ttl=..., prefix=..., redis_client=...)``.

    Differences on purpose:

    - ``prefix`` names a sluice cache (``redis`` -> ``default``, others as they are, made
      key-safe); ``clear()`` empties that cache, as before, and ``clear(llm_string=...)`` one model.
    - ``update()`` enqueues the write for a worker; this object's next lookup of the same
      prompt waits for it (read-your-writes). Entries are sluice's JSON, not RedisJSON documents.
    - Entries copied by ``sluice migrate --from langchain-redis --what cache`` are found under
      their old ``md5(prompt):md5(llm_string)`` key and become ordinary entries on their first hit.
    - ``_key(prompt, llm_string)`` is the entry's sluice key (after this object's pending fill
      of it is applied); ``ttl=0``, as before, keeps nothing. ``redis_client`` must be a
      synchronous client (an asyncio one is refused with `WrongClient`, a ValueError).
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379",
        ttl: int | None = None,
        prefix: str | None = "redis",
        redis_client: Any = None,
        *,
        client: Client | None = None,
        namespace: str | None = None,
    ) -> None:
        sluice = client_for(url=redis_url, redis=redis_client, client=client, namespace=namespace)
        self.prefix = prefix
        super().__init__(
            sluice, name=langchain_redis_cache(prefix), ttl=ttl,
            marker=LANGCHAIN_REDIS_MARKER, digest=langchain_redis_digest,
        )  # fmt: skip
        self.redis = sluice.redis


class RedisSemanticCache(SemanticCache):
    """Drop-in for ``langchain_redis.RedisSemanticCache(embeddings, redis_url=..., distance_threshold=...,
    ttl=..., name=..., prefix=...)``.

    Differences on purpose:

    - ``distance_threshold`` keeps its meaning (largest cosine distance served as a hit). The
      cache is sluice's semantic cache named after ``name``/``prefix`` (``llmcache`` -> ``semantic``,
      what ``sluice migrate --what semantic-cache`` fills); ``name`` is that name, an attribute,
      not a method.
    - Lookups filter by model *inside* the vector query (redisvl's check took the nearest entries
      of any model, then dropped other models'), and embed the prompt's text.
    - ``update()`` enqueues; the workers embed stored prompts with a settings embedder
      (``embedder=``, or the only one configured) that must give the same vectors as
      ``embeddings`` (checked once). ``clear(llm_string=...)`` clears one model. ``ttl=0`` means
      no expiry, as redisvl reads it.
    """

    def __init__(
        self,
        embeddings: Embeddings,
        redis_url: str = "redis://localhost:6379",
        distance_threshold: float = 0.2,
        ttl: int | None = None,
        name: str | None = DEFAULT_CACHE_NAME,
        prefix: str | None = DEFAULT_CACHE_NAME,
        redis_client: Any = None,
        *,
        client: Client | None = None,
        namespace: str | None = None,
        embedder: str | None = None,
    ) -> None:
        cache_name = name
        if prefix and prefix != DEFAULT_CACHE_NAME:  # langchain-redis's own rule for the redisvl name
            cache_name = f"{name}:{prefix}" if name and name not in (DEFAULT_CACHE_NAME, prefix) else prefix
        sluice = client_for(url=redis_url, redis=redis_client, client=client, namespace=namespace)
        super().__init__(
            sluice, embeddings, embedder=resolve_embedder(list(sluice.settings.embedders), embedder),
            name=redisvl_semantic_cache(cache_name), distance_threshold=distance_threshold, ttl=ttl or None,
        )  # fmt: skip
        self.prefix = prefix
        self.redis = sluice.redis

"""langchain-community's `RedisCache`, `AsyncRedisCache` and `RedisSemanticCache`, backed by sluice."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from sluice.compat.clients import WrongClient, client_for, is_asyncio
from sluice.compat.exact import DigestFallbackCache
from sluice.facade.client import Client
from sluice.facade.semantic_cache import SemanticCache, resolve_embedder
from sluice.migrate.legacy import COMMUNITY_MARKER, community_digest


class RedisCache(DigestFallbackCache):
    """Drop-in for ``langchain_community.cache.RedisCache(redis_=client, ttl=...)``.

    Differences on purpose:

    - ``clear()`` removes this cache's entries only (sluice cache ``name``, default ``default``);
      it no longer runs FLUSHDB on the whole database. ``clear(llm_string=...)`` clears one model.
    - ``update()`` enqueues the write for a worker (``sluice worker``); this object's next lookup of
      the same prompt waits for it (read-your-writes), other processes see it once applied.
    - Entries are sluice's JSON (every generation field kept), not lc-serialised hash fields.
      Entries copied by ``sluice migrate --from langchain-community --what cache`` are found under
      their old md5 key and turned into ordinary entries on their first hit.
    - ``redis_`` may be any redis-py client sluice accepts (also `RedisCluster`); lookups and
      writes raise sluice's errors instead of logging and returning None when Redis is down.
      An asyncio client is refused with a `WrongClient` (a ValueError) naming `AsyncRedisCache`.
    - ``_key(prompt, llm_string)`` is the entry's sluice key (after this object's pending fill
      of it is applied); ``ttl=0``, as before, keeps nothing.
    """

    def __init__(
        self,
        redis_: Any,
        *,
        ttl: int | None = None,
        client: Client | None = None,
        namespace: str | None = None,
        name: str = "default",
    ) -> None:
        if client is None and redis_ is None:
            raise ValueError("Please pass a valid `redis.Redis` client.")
        self.redis = redis_
        super().__init__(
            client_for(redis=redis_, client=client, namespace=namespace),
            name=name, ttl=ttl, marker=COMMUNITY_MARKER, digest=community_digest,
        )  # fmt: skip


_SYNC_REFUSED = (
    "This async Redis cache does not implement `{0}()` method. Consider using the async `a{0}()` version."
)


class AsyncRedisCache(DigestFallbackCache):
    """Drop-in for ``langchain_community.cache.AsyncRedisCache(redis_=redis.asyncio.Redis(...), ttl=...)``.

    ``alookup``/``aupdate``/``aclear`` only, as the peer (the sync methods raise
    NotImplementedError); ``redis`` is the asyncio client given. sluice reads and writes through
    that client's connection settings (an asyncio twin, and a sync one for the parts of sluice
    that are synchronous). Otherwise as `RedisCache`: entries are sluice's, ``aclear()`` empties
    this cache only (no FLUSHDB), and fills are enqueued for the workers.
    """

    def __init__(
        self,
        redis_: Any,
        *,
        ttl: int | None = None,
        client: Client | None = None,
        namespace: str | None = None,
        name: str = "default",
    ) -> None:
        if client is None and not is_asyncio(redis_):
            raise WrongClient("Please pass a valid `redis.asyncio.Redis` client.")
        self.redis = redis_
        super().__init__(
            client_for(redis=redis_, client=client, namespace=namespace, asyncio=True),
            name=name, ttl=ttl, marker=COMMUNITY_MARKER, digest=community_digest,
        )  # fmt: skip

    def lookup(self, prompt: str, llm_string: str) -> Any:
        raise NotImplementedError(_SYNC_REFUSED.format("lookup"))

    def update(self, prompt: str, llm_string: str, return_val: Any) -> None:
        raise NotImplementedError(_SYNC_REFUSED.format("update"))

    def clear(self, **kwargs: Any) -> None:
        raise NotImplementedError(_SYNC_REFUSED.format("clear"))


class RedisSemanticCache(SemanticCache):
    """Drop-in for ``langchain_community.cache.RedisSemanticCache(redis_url=..., embedding=...,
    score_threshold=...)``.

    Differences on purpose:

    - ``score_threshold`` keeps its meaning: the largest *cosine distance* (``1 - cos``, 0 =
      identical) served as a hit, despite its name. One sluice index serves every model,
      filtered by model inside the query, instead of one index per ``llm_string``.
    - What is embedded is the prompt's text (a chat prompt's messages, not LangChain's JSON
      around them), so chat prompts match on what they say.
    - ``update()`` enqueues; the *workers* embed stored prompts with a settings embedder
      (``embedder=``, or the only one configured), which must give the same vectors as
      ``embedding`` (checked once on first use). This object's lookups wait for its own
      pending fills of the same model.
    - ``clear()`` without ``llm_string`` empties the whole cache; with it, that model's entries.
      ``ttl=`` (seconds) is supported (0: no expiry).
    """

    def __init__(
        self,
        redis_url: str,
        embedding: Embeddings,
        score_threshold: float = 0.2,
        *,
        client: Client | None = None,
        namespace: str | None = None,
        embedder: str | None = None,
        name: str = "semantic",
        ttl: float | None = None,
    ) -> None:
        sluice = client_for(url=redis_url, client=client, namespace=namespace)
        super().__init__(
            sluice, embedding, embedder=resolve_embedder(list(sluice.settings.embedders), embedder),
            name=name, distance_threshold=score_threshold, ttl=ttl or None,
        )  # fmt: skip
        self.redis_url = redis_url
        self.embedding = embedding
        self.score_threshold = score_threshold

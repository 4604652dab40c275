"""LangChain's own cache and vector store test suites against the drop-in classes, built the way
apps build them (a URL or a redis-py client, plus the namespace), with a worker applying writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from langchain_core.caches import BaseCache
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import (
    AsyncCacheTestSuite,
    SyncCacheTestSuite,
    VectorStoreIntegrationTests,
)

from sluice.compat import clients, community, langchain_redis
from sluice.embeddings.hashing import HashingEmbeddings
from support.settings import fast_settings
from support.workers import ThreadWorker


@pytest.fixture
def worker(redis8: Any, namespace: str) -> Iterator[None]:
    with ThreadWorker(fast_settings(redis8.url, namespace)):
        yield
    clients.close_all()


class TestCommunityCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, redis8: Any, namespace: str, worker: None) -> Iterator[BaseCache]:
        r = redis.Redis.from_url(redis8.url)
        yield community.RedisCache(redis_=r, namespace=namespace)
        r.close()


class TestCommunityCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, redis8: Any, namespace: str, worker: None) -> AsyncIterator[BaseCache]:
        r = redis.Redis.from_url(redis8.url)
        yield community.RedisCache(redis_=r, namespace=namespace)
        r.close()


class TestLangchainRedisCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, redis8: Any, namespace: str, worker: None) -> BaseCache:
        return langchain_redis.RedisCache(redis_url=redis8.url, namespace=namespace)


class TestLangchainRedisCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, redis8: Any, namespace: str, worker: None) -> BaseCache:
        return langchain_redis.RedisCache(redis_url=redis8.url, namespace=namespace)


class TestCommunityRedisVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, redis8: Any, namespace: str, worker: None) -> VectorStore:  # type: ignore[override]
        return community.Redis(redis8.url, "standard", self.get_embeddings(), namespace=namespace)


class TestLangchainRedisVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, redis8: Any, namespace: str, worker: None) -> VectorStore:  # type: ignore[override]
        config = langchain_redis.RedisConfig(index_name="standard", redis_url=redis8.url)
        return langchain_redis.RedisVectorStore(self.get_embeddings(), config=config, namespace=namespace)


class TestCommunitySemanticCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, redis8: Any, namespace: str, worker: None) -> BaseCache:
        return community.RedisSemanticCache(
            redis_url=redis8.url, embedding=HashingEmbeddings(), namespace=namespace
        )


class TestLangchainRedisSemanticCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, redis8: Any, namespace: str, worker: None) -> BaseCache:
        return langchain_redis.RedisSemanticCache(
            HashingEmbeddings(), redis_url=redis8.url, namespace=namespace
        )

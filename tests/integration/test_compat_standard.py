"""LangChain's own cache and vector store test suites against the drop-in classes, built the way
apps build them (a URL or a redis-py client, plus the namespace), with a worker applying writes.

The drop-in vector stores shape search results as their peers do (no ``Document.id``; for
langchain-community the key in ``metadata["id"]`` and keys from ``add_texts``), which LangChain's
suite does not accept, and neither peer passes it. The suite runs on subclasses that keep
LangChain's standard shape and everything else of the drop-in (`tests/integration/test_compat_parity.py`
checks the peers' shape).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from langchain_core.caches import BaseCache
from langchain_core.documents import Document
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


class StandardCommunityRedis(community.Redis):
    """The drop-in with LangChain's standard documents and ids."""

    def _shape(self, doc: Document, kwargs: dict[str, Any]) -> Document:
        return doc

    def _key(self, doc_id: str) -> str:
        return doc_id


class StandardRedisVectorStore(langchain_redis.RedisVectorStore):
    def _shape(self, doc: Document, kwargs: dict[str, Any]) -> Document:
        return doc


class TestCommunityRedisVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, redis8: Any, namespace: str, worker: None) -> VectorStore:  # type: ignore[override]
        return StandardCommunityRedis(redis8.url, "standard", self.get_embeddings(), namespace=namespace)


class TestLangchainRedisVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, redis8: Any, namespace: str, worker: None) -> VectorStore:  # type: ignore[override]
        config = langchain_redis.RedisConfig(index_name="standard", redis_url=redis8.url)
        return StandardRedisVectorStore(self.get_embeddings(), config=config, namespace=namespace)


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

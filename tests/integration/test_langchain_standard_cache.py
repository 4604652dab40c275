"""LangChain's own cache test suites against the exact cache with its defaults: background writes
through a worker, read-your-writes per prompt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.caches import BaseCache
from langchain_tests.integration_tests import AsyncCacheTestSuite, SyncCacheTestSuite

from sluice.facade.client import Client
from support.settings import fast_settings
from support.workers import ThreadWorker


class TestSluiceCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, redis8: Any, namespace: str) -> Iterator[BaseCache]:
        client = Client(fast_settings(redis8.url, namespace))
        with ThreadWorker(client.settings):
            yield client.llm_cache()
        client.close()


class TestSluiceCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, redis8: Any, namespace: str) -> AsyncIterator[BaseCache]:
        client = Client(fast_settings(redis8.url, namespace))
        with ThreadWorker(client.settings):
            yield client.llm_cache()
        await client.aclose()
        client.close()

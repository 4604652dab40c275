"""LangChain's own vector store suite against `client.vectorstore` with its defaults: writes through
a worker, read-your-writes, on both backends of the Redis 8 server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from sluice.facade.client import Client
from support.settings import fast_settings
from support.workers import ThreadWorker


def _store(redis8: Any, namespace: str, backend: str, embeddings: Any) -> Iterator[VectorStore]:
    client = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(client.settings):
        yield client.vectorstore("standard", embeddings, backend=backend)  # type: ignore[arg-type]
    client.close()


class TestRediSearchVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, redis8: Any, namespace: str) -> Iterator[VectorStore]:  # type: ignore[override]
        yield from _store(redis8, namespace, "search", self.get_embeddings())


class TestVectorSetsVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, redis8: Any, namespace: str) -> Iterator[VectorStore]:  # type: ignore[override]
        yield from _store(redis8, namespace, "vsets", self.get_embeddings())

"""Vector indexes on a Redis Cluster: per-primary RediSearch indexes and partitioned Vector Sets,
queries fanned out and merged; answers equal the standalone server's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import servers
from servers import need
from sluice.facade.client import Client
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.transport.runner import Call
from sluice.vectors import IndexSchema, MetadataField, Num, Tag
from sluice.vectors.backfill import scan_keys
from sluice.vectors.migration import Migration
from support.settings import fast_settings
from support.workers import ThreadWorker
from topologies import ClusterTopology

pytestmark = pytest.mark.cluster

DIMS = 32
SCHEMA = IndexSchema.for_dims(
    DIMS, MetadataField(name="lang", type="tag"), MetadataField(name="n", type="numeric"), ef_runtime=500
)
WORDS = ["redis", "stream", "vector", "cluster", "worker", "cache", "index", "query", "shard", "merge"]
TEXTS = [f"{WORDS[i % 10]} {WORDS[(i * 3) % 10]} {WORDS[(i * 7) % 10]} doc{i}" for i in range(40)]
METAS = [{"lang": "en" if i % 3 else "fr", "n": i} for i in range(40)]
QUERIES = ["redis stream", "vector shard merge", "worker cache doc7", "cluster index query"]


@pytest.fixture(scope="module")
def search_cluster() -> Iterator[ClusterTopology]:
    """3 primaries with RediSearch loaded (the shared `cluster` fixture has no modules)."""
    topology = ClusterTopology(need(servers.redis8_binary), modules=tuple(need(servers.stack_modules)))
    try:
        yield topology.start()
    finally:
        topology.stop()


def _client(url: str, namespace: str) -> Client:
    settings = fast_settings(url, namespace)
    embedders = {"hashing": settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": DIMS}})}
    return Client(settings.model_copy(update={"embedders": embedders}))


def _answers(vs: SluiceVectorStore) -> list[list[tuple[str | None, float]]]:
    out = []
    for q in QUERIES:
        out.append([(d.id, round(s, 5)) for d, s in vs.similarity_search_with_score(q, k=6)])
        out.append(
            [
                (d.id, round(s, 5))
                for d, s in vs.similarity_search_with_score(q, k=4, filter=Tag("lang") == "fr")
            ]
        )
        flt = (Num("n") >= 10) & (Tag("lang") == "en")
        out.append([(d.id, round(s, 5)) for d, s in vs.similarity_search_with_score(q, k=4, filter=flt)])
    return out


@pytest.mark.parametrize("backend", ["search", "vsets"])
async def test_cluster_answers_equal_standalone_answers(
    redis8: Any, search_cluster: ClusterTopology, namespace: str, backend: str
) -> None:
    results = []
    for url in (redis8.url, search_cluster.url):
        client = _client(url, namespace)
        with ThreadWorker(client.settings):
            vs = client.vectorstore("docs", "hashing", schema=SCHEMA, backend=backend)
            ids = vs.add_texts(TEXTS, METAS, ids=[f"d{i}" for i in range(len(TEXTS))])
            answers = _answers(vs)
            assert len(vs.get_by_ids(ids)) == len(TEXTS)
            assert vs.session.count() == len(TEXTS)
            found = await vs.asimilarity_search_with_score(QUERIES[0], k=6)
            assert [(d.id, round(s, 5)) for d, s in found] == answers[0]
            assert [d.id for d in await vs.aget_by_ids(["d3", "d30"])] == ["d3", "d30"]
            results.append(answers)
        await client.aclose()
        client.close()
    standalone, clustered = results
    assert clustered == standalone
    assert all(len(a) > 0 for a in standalone)


def test_each_primary_holds_a_shard(search_cluster: ClusterTopology, namespace: str) -> None:
    client = _client(search_cluster.url, namespace)
    with ThreadWorker(client.settings):
        vs = client.vectorstore("docs", "hashing", schema=SCHEMA, backend="search")
        vs.add_texts(TEXTS, METAS, wait=True)
        tags = vs.session.runner.shard_tags()
        assert len(tags) == 3
        per_node = []
        for tag in tags:
            alias = client.keys.vector_alias("docs", tag)
            [info] = vs.session.runner.run([Call(("FT.INFO", alias), route=alias)])
            fields = dict(zip(info[::2], info[1::2], strict=True))
            per_node.append(int(fields[b"num_docs"]))
        assert sum(per_node) == len(TEXTS) and all(n > 0 for n in per_node)
    client.close()


@pytest.mark.parametrize("backend", ["search", "vsets"])
def test_a_migration_on_a_cluster_keeps_every_document(
    search_cluster: ClusterTopology, namespace: str, backend: str
) -> None:
    client = _client(search_cluster.url, namespace)
    with ThreadWorker(client.settings):
        vs = client.vectorstore("docs", "hashing", schema=SCHEMA, backend=backend)  # type: ignore[arg-type]
        vs.add_texts(TEXTS, METAS, ids=[f"d{i}" for i in range(len(TEXTS))], wait=True)
        before = [d.id for d in vs.similarity_search(QUERIES[1], k=6)]
        m = Migration(client, "docs")
        wider = SCHEMA.model_copy(
            update={"metadata": (*SCHEMA.metadata, MetadataField(name="kind", type="tag"))}
        )
        result = m.run(m.plan(wider), grace=0.2, timeout=60)
        assert result is not None and result.source_docs == result.target_docs == len(TEXTS)
        after = client.vectorstore("docs", "hashing")
        assert after.session.open(lambda: DIMS).generation == 2
        assert [d.id for d in after.similarity_search(QUERIES[1], k=6)] == before
        assert after.session.count() == len(TEXTS)
        old = client.keys.vector_doc_prefix("docs", 1) + "*"
        assert sum(len(c) for c in scan_keys(client.redis, True, old)) == 0
    client.close()

"""Cache facades count their lookups per minute, so hit rates never need a scan."""

from __future__ import annotations

from typing import Any

from langchain_core.outputs import Generation

from sluice.facade.client import Client
from sluice.ops import cachestats
from support.settings import fast_settings
from support.workers import ThreadWorker


def test_exact_cache_lookups_are_counted_as_hits_and_misses(redis8: Any, namespace: str) -> None:
    client = Client(fast_settings(redis8.url, namespace))
    cache = client.llm_cache(name="stats")
    with ThreadWorker(client.settings):
        cache.update("p1", "model", [Generation(text="a")])
        # Given two hits and three misses
        assert cache.lookup("p1", "model") is not None
        assert cache.lookup("p1", "model") is not None
        for p in ("x", "y", "z"):
            assert cache.lookup(p, "model") is None
        # When the facade flushes its counts (about once a second, or on close)
        cache.close()
    # Then the per-minute counters hold them
    stats = cachestats.read(client.redis, client.keys, "stats", minutes=2)
    assert (stats.hits, stats.misses) == (2, 3)
    assert stats.hit_rate() == 0.4


def test_semantic_cache_lookups_record_hit_distances(redis8: Any, namespace: str) -> None:
    from sluice.embeddings.hashing import HashingEmbeddings

    client = Client(fast_settings(redis8.url, namespace))
    cache = client.semantic_cache(
        HashingEmbeddings(), embedder="hashing", name="sstats", distance_threshold=0.3
    )
    with ThreadWorker(client.settings):
        cache.update("how do I reset my password", "model", [Generation(text="a")])
        assert cache.lookup_with_score("How do I reset my password?", "model") is not None
        assert cache.lookup_with_score("what is the boiling point of water", "model") is None
        cache.flush_hits()
    stats = cachestats.read(client.redis, client.keys, "sstats", minutes=2)
    assert (stats.semantic_hits, stats.semantic_misses) == (1, 1)
    assert sum(stats.distances) == 1

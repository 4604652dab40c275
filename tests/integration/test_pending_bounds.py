"""Bounded memory of the facades against real Redis: the pending writes of an LLM cache or vector
store object that writes keys it never reads, read-your-writes for writes it no longer holds one
by one, and the hit counts and sources `record_hits` keeps without the refresh-ahead beat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.outputs import Generation

from sluice.facade import pending as pending_module
from sluice.facade.client import Client
from sluice.facade.llm_cache import LLMCache
from sluice.facade.pending import PENDING_LIMIT, PRUNE_CHUNK, ReadYourWrites
from sluice.stores import hits
from sluice.vectors import IndexSchema
from support.settings import fast_settings
from support.workers import ThreadWorker

LLM = "fake-llm:temperature=0"


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace, queue={"wait_timeout": 20.0}))
    yield c
    c.close()


def held(cache: LLMCache) -> pending_module.PendingWrites:
    return cache._consistency.writes.pending


def small(cache: LLMCache, limit: int = 50) -> pending_module.PendingWrites:
    """Give the facade object a small bound (limit 50, prune chunk 10) so tests stay short."""
    writes = ReadYourWrites(cache.client, forget_on_timeout=True, limit=limit)
    writes.pending.chunk = 10
    cache._consistency.writes = writes
    return writes.pending


def answer(cache: LLMCache, i: int) -> list[str]:
    return [g.text for g in cache.lookup(f"prompt {i}", LLM) or []]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_100k_unique_key_updates_hold_at_most_the_bound(client: Client) -> None:
    # Given one LLM cache object and no worker (nothing gets applied: the worst case)
    cache = client.llm_cache(record_hits=False)
    streams = set(client.keys.streams("cache-fill"))
    most = 0
    # When 100,000 updates to distinct prompts go through it, never read
    start = time.perf_counter()
    for i in range(100_000):
        cache.update(f"prompt {i}", LLM, [Generation(text=str(i))])
        if i % 1_000 == 0:
            most = max(most, len(held(cache).snapshot(None).handles))
    elapsed = time.perf_counter() - start
    # Then it never held more than PENDING_LIMIT handles (10,000) plus one floor per stream
    snap = held(cache).snapshot(None)
    assert most <= PENDING_LIMIT and len(snap.handles) <= PENDING_LIMIT
    assert len(snap.handles) >= PENDING_LIMIT - 2 * PRUNE_CHUNK  # the newest are still held one by one
    assert set(snap.floors) == streams  # 4 partitions of cache-fill
    print(f"100k updates in {elapsed:.1f}s; held {len(snap.handles)} handles, {len(snap.floors)} floors")
    for stream in streams:  # the session server is shared: drop the 100k jobs
        client.redis.delete(stream)


def test_a_write_folded_into_a_floor_is_still_read(client: Client) -> None:
    # Given a cache object bounded at 50 handles, and 300 fills enqueued while no worker runs
    cache = client.llm_cache(record_hits=False)
    pending = small(cache)
    for i in range(300):
        cache.update(f"prompt {i}", LLM, [Generation(text=str(i))])
    snap = pending.snapshot(None)
    assert len(snap.handles) <= 50 and snap.floors
    # When a worker starts and the app reads the very first prompt, no longer held one by one
    with ThreadWorker(client.settings):
        first = answer(cache, 0)
        # Then the read waited for it (and for everything before the floor), and got it
        assert first == ["0"]
        assert not pending.floors
        assert answer(cache, 299) == ["299"]


def test_with_workers_keeping_up_no_floor_is_set(client: Client) -> None:
    # Given a bounded cache object (high-water mark 40) whose first 35 fills are applied
    cache = client.llm_cache(record_hits=False)
    pending = small(cache)
    with ThreadWorker(client.settings):
        for i in range(35):
            cache.update(f"prompt {i}", LLM, [Generation(text=str(i))])
        client.wait(pending.snapshot(None).handles, timeout=20)
        # When more fills push it past its high-water mark (a prune checks the oldest chunk)
        for i in range(35, 50):
            cache.update(f"prompt {i}", LLM, [Generation(text=str(i))])
        # Then the applied ones are forgotten, no floor is set, and reads wait only for their key
        assert len(pending.snapshot(None).handles) == 30  # two prunes forgot 20 applied handles
        assert not pending.floors
        assert answer(cache, 49) == ["49"]


def test_asyncio_updates_are_bounded_and_read_back(client: Client) -> None:
    cache = client.llm_cache(record_hits=False)
    pending = small(cache)

    async def fill_then_read() -> list[str]:
        # Given 200 asyncio fills through a cache object bounded at 50, no worker running
        for i in range(200):
            await cache.aupdate(f"prompt {i}", LLM, [Generation(text=str(i))])
        assert len(pending.snapshot(None).handles) <= 50 and pending.floors
        # When a worker starts and an early prompt is looked up
        worker = ThreadWorker(client.settings).start()
        try:
            found = await cache.alookup("prompt 3", LLM)
        finally:
            worker.stop()
            await client.aclose()
        return [g.text for g in found or []]

    # Then the lookup waited for it
    assert asyncio.run(fill_then_read()) == ["3"]
    assert not pending.floors


def test_vector_store_writes_are_bounded_and_read_back(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace)
    embedders = {**settings.embedders}
    embedders["hashing"] = embedders["hashing"].model_copy(update={"kwargs": {"dims": 32}})
    client = Client(settings.model_copy(update={"embedders": embedders}))
    try:
        # Given a store object bounded at 20 handles, and 100 single-document writes with no worker
        store = client.vectorstore("bounded", "hashing", schema=IndexSchema.for_dims(32))
        store._pending = ReadYourWrites(client, forget_on_timeout=False, limit=20)
        for i in range(100):
            store.add_texts([f"document number {i}"], ids=[f"d{i}"])
        assert len(store._pending.pending.snapshot(None).handles) <= 20 and store._pending.pending.floors
        # When a worker runs and the app reads the first document back
        with ThreadWorker(client.settings):
            docs = store.get_by_ids(["d0", "d99"])
        # Then both are there
        assert sorted(d.id or "" for d in docs) == ["d0", "d99"]
        assert len(store._pending) == 0
    finally:
        client.close()


# --- hit counts and sources ---------------------------------------------------------------------
def test_hit_sources_are_bounded_without_the_beat(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cache keeping the 50 hottest entries' counts and sources, and 200 entries written
    monkeypatch.setattr(hits, "HITS_KEPT", 50)
    monkeypatch.setattr(hits, "ORPHAN_SLACK", 5)
    cache = client.llm_cache(write="direct")
    for i in range(200):
        cache.update(f"prompt {i}", LLM, [Generation(text=str(i))])
    # When each is hit (prompt 0 ten times), the counts flushed as lookups go, no beat running
    for _ in range(10):
        answer(cache, 0)
    for i in range(200):
        answer(cache, i)
    cache.flush_hits()
    # Then the zset and the sources hold 50 entries, the hottest among them, with its source
    redis = client.redis
    hits_key, src_key = client.keys.cache_hits("default"), client.keys.cache_sources("default")
    assert redis.zcard(hits_key) == 50 and redis.hlen(src_key) == 50
    hottest = redis.zrevrange(hits_key, 0, 0)[0]
    assert redis.hexists(src_key, hottest) and float(redis.zscore(hits_key, hottest)) >= 10
    # and sources left behind by a racing writer are removed by a later flush
    redis.hset(src_key, mapping={f"orphan:{i}": "{}" for i in range(20)})
    answer(cache, 0)
    cache.flush_hits()
    assert redis.hlen(src_key) == 50
    assert not [f for f in redis.hkeys(src_key) if f.startswith(b"orphan:")]

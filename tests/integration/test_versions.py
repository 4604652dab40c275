"""Versions against real Redis: every write to a cache entry is versioned by entry ids of its one
partition stream, never by a clock, so the newer write wins whatever the nodes' clocks say.

A node whose clock runs ahead is played by a stream whose last id is an hour in the future
(Redis gives out ids from max(clock, last id)): that is what a Cluster node with a fast clock
does to the streams it holds. Before versions came from one stream, a warm job's id (from the
cache-warm stream) was compared with a fill's (from the cache-fill stream), and ``write="sync"``
updates and clear marks used the server's TIME: these tests fail on that code.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.outputs import Generation

from sluice.facade.client import Client
from sluice.jobs.models import CacheFillPayload, CacheWarmPayload, Payload
from sluice.models.prompts import cache_prompt
from sluice.models.registry import ModelRegistry
from sluice.settings import ComponentSpec, Settings
from sluice.stores import generations as codec
from sluice.stores.cache_versions import CacheWrite, write_plan
from sluice.stores.exact_cache import ExactCacheStore
from sluice.transport.runner import Runner
from sluice.types import StreamEntryRef
from support.settings import fast_settings
from support.workers import ThreadWorker

ECHO = ComponentSpec(import_path="sluice.models.fake:EchoChatModel")
HOUR_MS = 3_600_000


def settings_for(url: str, namespace: str, **queue: Any) -> Settings:
    s = fast_settings(url, namespace, queue=queue or None, concurrency=4)
    return s.model_copy(update={"models": {"echo": ECHO}})


def run_ahead(redis: Any, stream: str, ms: int = HOUR_MS) -> None:
    """Make `stream` give out ids `ms` ahead of the clock, like a node whose clock runs fast."""
    future = f"{int(time.time() * 1000) + ms}-0"
    if redis.exists(stream):
        redis.execute_command("XSETID", stream, future)
    else:
        redis.execute_command("XADD", stream, "MAXLEN", "0", future, "skew", "1")


def fill(prompt: str, llm: str, text: str) -> CacheFillPayload:
    return CacheFillPayload(
        llm_string=llm, prompt=cache_prompt(prompt), generations=codec.to_dicts([Generation(text=text)])
    )


def stored_texts(client: Client, llm: str, prompts: list[str]) -> list[str | None]:
    store = client.llm_cache()._sync_store()
    keys = [client.keys.cache_entry("default", llm, cache_prompt(p)) for p in prompts]
    return [found[0].text if found else None for found in store.lookup_keys(keys)]


def race(
    client: Client, llm: str, prompts: list[str], rng: random.Random
) -> tuple[list[str], list[StreamEntryRef]]:
    """For each prompt a warm job and a fill, in random order, each in its own enqueue call (as two
    processes would); returns what each entry must hold: the answer of the one enqueued last."""
    expected: list[str] = []
    handles: list[StreamEntryRef] = []
    for i, prompt in enumerate(prompts):
        warm: Payload = CacheWarmPayload(model="echo", llm_string=llm, prompts=[prompt])
        jobs: list[Payload] = [warm, fill(prompt, llm, f"fill {i}")]
        if rng.random() < 0.5:
            jobs.reverse()
        for job in jobs:
            handles += client.enqueue([job], notify=True)
        expected.append(f"fill {i}" if jobs[-1].kind == "cache-fill" else f"echo: {prompt} #")
    return expected, handles


def check(expected: list[str], found: list[str | None]) -> None:
    wrong = [
        (i, e, f) for i, (e, f) in enumerate(zip(expected, found, strict=True)) if not (f or "").startswith(e)
    ]
    assert not wrong, f"{len(wrong)} of {len(expected)} entries hold the older write, e.g. {wrong[:3]}"


def test_warm_and_fill_of_one_cache_key_race_and_the_newer_always_wins(redis8: Any, namespace: str) -> None:
    # Given the cache-warm streams giving out ids an hour ahead (their node's clock runs fast)
    client = Client(settings_for(redis8.url, namespace))
    for stream in client.keys.streams("cache-warm"):
        run_ahead(client.redis, stream)
    llm = ModelRegistry(client.settings.models).llm_string("echo")
    rng = random.Random(8)
    # When a warm job and a fill of one entry are enqueued in random order, 1,000 times: half while
    # workers apply them as they come, half queued up first and applied in one burst
    with ThreadWorker(client.settings):
        live, live_handles = race(client, llm, [f"live {i}" for i in range(500)], rng)
        client.wait(live_handles, 120)
    burst, burst_handles = race(client, llm, [f"burst {i}" for i in range(500)], rng)
    with ThreadWorker(client.settings):
        client.wait(burst_handles, 120)
    # Then every entry holds the answer of the job enqueued last
    check(live, stored_texts(client, llm, [f"live {i}" for i in range(500)]))
    check(burst, stored_texts(client, llm, [f"burst {i}" for i in range(500)]))
    assert {e[:4] for e in live + burst} == {"fill", "echo"}  # both orders were played
    client.close()


@pytest.mark.cluster
def test_on_a_cluster_warm_and_fill_race_and_the_newer_always_wins(cluster: Any, namespace: str) -> None:
    # Given a Cluster whose cache-warm streams give out ids an hour ahead
    client = Client(settings_for(cluster.url, namespace))
    for stream in client.keys.streams("cache-warm"):
        run_ahead(client.redis, stream)
    llm = ModelRegistry(client.settings.models).llm_string("echo")
    prompts = [f"cluster {i}" for i in range(200)]
    # When warm jobs and fills of the same entries are queued in random order, then applied
    expected, handles = race(client, llm, prompts, random.Random(3))
    with ThreadWorker(client.settings):
        client.wait(handles, 120)
    # Then the newer always wins
    check(expected, stored_texts(client, llm, prompts))
    client.close()


def test_a_warm_job_keeps_the_version_it_was_enqueued_with(redis8: Any, namespace: str) -> None:
    # Given a warm job enqueued before a fill of the same entry, with no worker running
    client = Client(settings_for(redis8.url, namespace))
    llm = ModelRegistry(client.settings.models).llm_string("echo")
    [warm] = client.enqueue([CacheWarmPayload(model="echo", llm_string=llm, prompts=["p"])])
    [fill_handle] = client.enqueue([fill("p", llm, "the fill")])
    # Then its version is an id of the entry's cache-fill stream, older than the fill's
    entries = client.redis.xrange(warm.stream)
    job = entries[0][1][b"job"].decode()
    version = job.split('"version":"')[1].split('"')[0]
    assert fill_handle.stream == client.keys.stream("cache-fill", int(warm.stream.split(":")[-1].rstrip("}")))
    assert tuple(map(int, version.split("-"))) < tuple(map(int, fill_handle.entry_id.split("-")))
    # And the reservation added no entry to the cache-fill stream
    assert client.redis.xlen(fill_handle.stream) == 1
    client.close()


@pytest.mark.parametrize("api", ["sync", "asyncio"])
def test_a_sync_update_beats_an_older_fill_from_a_stream_whose_ids_run_ahead(
    redis8: Any, namespace: str, api: str
) -> None:
    # Given the cache-fill streams an hour ahead, and a fill of an entry queued (no worker yet)
    client = Client(settings_for(redis8.url, namespace))
    for stream in client.keys.streams("cache-fill"):
        run_ahead(client.redis, stream)
    [older] = client.enqueue([fill("q", "llm", "older fill")], notify=True)
    # When the app then writes the same entry in the call (write="sync")
    cache = client.llm_cache(write="sync")
    if api == "sync":
        cache.update(cache_prompt("q"), "llm", [Generation(text="sync write")])
    else:
        asyncio.run(cache.aupdate(cache_prompt("q"), "llm", [Generation(text="sync write")]))
    # And the worker applies the older fill only afterwards
    with ThreadWorker(client.settings):
        client.wait([older], 20)
        assert stored_texts(client, "llm", ["q"]) == ["sync write"]
        # Then the sync write stands; and a fill enqueued after it wins in turn
        [newer] = client.enqueue([fill("q", "llm", "newer fill")], notify=True)
        client.wait([newer], 20)
    assert stored_texts(client, "llm", ["q"]) == ["newer fill"]
    client.close()


@pytest.mark.parametrize("api", ["sync", "asyncio"])
def test_a_clear_drops_fills_enqueued_before_it_even_from_a_stream_whose_ids_run_ahead(
    redis8: Any, namespace: str, api: str
) -> None:
    # Given the cache-fill streams an hour ahead and fills queued (no worker yet)
    client = Client(settings_for(redis8.url, namespace))
    for stream in client.keys.streams("cache-fill"):
        run_ahead(client.redis, stream)
    prompts = [f"c{i}" for i in range(20)]
    before = client.enqueue([fill(p, "llm", "before") for p in prompts], notify=True)
    # When the cache is cleared, more fills are enqueued, and only then a worker runs
    cache = client.llm_cache()
    if api == "sync":
        cache.clear()
    else:
        asyncio.run(cache.aclear())
    after = client.enqueue([fill(p, "llm", "after") for p in prompts[::2]], notify=True)
    with ThreadWorker(client.settings):
        client.wait(before + after, 20)
    # Then what was enqueued before the clear is gone, and what came after it is there
    assert stored_texts(client, "llm", prompts) == ["after", None] * 10
    client.close()


@pytest.mark.cluster
def test_on_a_cluster_sync_writes_and_clears_are_versioned_by_the_entry_stream(
    cluster: Any, namespace: str
) -> None:
    # Given a Cluster whose cache-fill streams give out ids an hour ahead, and fills queued
    client = Client(settings_for(cluster.url, namespace))
    for stream in client.keys.streams("cache-fill"):
        run_ahead(client.redis, stream)
    prompts = [f"k{i}" for i in range(30)]
    queued = client.enqueue([fill(p, "llm", "queued") for p in prompts], notify=True)
    # When the whole cache is cleared, then a third of the entries are written in the call
    sync = client.llm_cache(write="sync")
    sync.clear()
    for p in prompts[:10]:
        sync.update(cache_prompt(p), "llm", [Generation(text="sync")])
    with ThreadWorker(client.settings):
        client.wait(queued, 30)
    # Then the fills from before the clear are dropped and the sync writes after it stand
    assert stored_texts(client, "llm", prompts) == ["sync"] * 10 + [None] * 20
    client.close()


@pytest.mark.cluster
def test_on_a_cluster_a_clear_between_a_writers_mark_read_and_its_write_still_drops_the_older_fill(
    cluster: Any, namespace: str
) -> None:
    # Given fills versioned before a clear, and a writer whose clear-mark read (marks live in
    # another slot than the entries on a Cluster) is followed at once by that clear
    client = Client(settings_for(cluster.url, namespace))
    cache = client.llm_cache(write="direct")
    writes = [CacheWrite.of("default", "llm", f"r{i}", [Generation(text="old")], None) for i in range(10)]
    store = ExactCacheStore(client.redis, client.keys, cluster=True)
    older = store.versioned(writes)
    # When the writer applies the fills, stepping its plan: the clear runs right after the marks read
    runner = Runner(client.redis, cluster=True)
    plan = write_plan(client.keys, older, cluster=True)
    calls = next(plan)
    assert [c.args[0] for c in calls] == ["HGETALL"]  # the marks read
    replies = runner.run(calls)
    cache.clear()  # its SCAN finds none of the entries: they are not written yet
    try:
        while True:
            calls = plan.send(replies)
            replies = runner.run(calls)
    except StopIteration as done:
        results = done.value
    # Then none of them is left, and a write newer than the clear lands
    assert results == [-1] * 10
    assert stored_texts(client, "llm", [f"r{i}" for i in range(10)]) == [None] * 10
    assert store.write([CacheWrite.of("default", "llm", "r0", [Generation(text="new")], None)]) == [1]
    client.close()


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_a_fill_applied_while_a_clear_sweeps_is_kept(topology: str, request: Any, namespace: str) -> None:
    # Given 1,200 entries (several SCAN batches), and a writer that lands newer versions of some of
    # them after the clear has marked the cache but before its sweep reaches them
    server = request.getfixturevalue("cluster" if topology == "cluster" else "redis8")
    client = Client(settings_for(server.url, namespace))
    prompts = [f"e{i}" for i in range(1200)]
    old = [CacheWrite.of("default", "llm", p, [Generation(text="old")], None) for p in prompts]
    cluster = topology == "cluster"
    newer: list[str] = []

    class WrittenDuringTheSweep(ExactCacheStore):
        def _sweep(self, cache: str, found: Sequence[Any], reserved: Sequence[str]) -> int:
            if not newer and found:  # a fill enqueued after the clear, applied before its sweep
                keys = {(k.decode() if isinstance(k, bytes) else k) for k in found}
                newer.extend(p for p in prompts if client.keys.cache_entry("default", "llm", p) in keys)
                writes = [CacheWrite.of("default", "llm", p, [Generation(text="new")], None) for p in newer]
                assert set(self.write(writes)) == {1}
            return super()._sweep(cache, found, reserved)

    store = WrittenDuringTheSweep(client.redis, client.keys, cluster=cluster)
    assert set(store.write(old)) == {1}
    # When the cache is cleared
    removed = store.clear("default")
    # Then every entry older than the clear is gone and the newer ones stand
    found = store.lookup_keys([client.keys.cache_entry("default", "llm", p) for p in prompts])
    left = [g[0].text if g else None for g in found]
    assert newer and removed == len(prompts) - len(newer)
    assert [p for p, t in zip(prompts, left, strict=True) if t is not None] == newer
    assert set(left) == {None, "new"}
    client.close()

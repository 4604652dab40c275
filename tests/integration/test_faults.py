"""Faults injected into real Redis processes: a server paused (SIGSTOP) past the socket timeout, a
server out of memory (`maxmemory` + `noeviction`), and store keys of the wrong type or with corrupted
content. Jepsen-style accounting: count what went in, count what came out; nothing accepted is lost.

(Redis killed and restarted with AOF mid-run is `test_chaos.py`.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import RedisFull, RedisTimeout, StoreCorrupted
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from sluice.settings import Settings
from sluice.stores.history import HistoryStore
from sluice.stores.versions import padded
from sluice.vectors import IndexSchema, MetadataField
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until

SESSIONS = 10


def job(n: int, size: int = 0) -> HistoryAppendPayload:
    content = str(n) + (" " + "x" * size if size else "")
    return HistoryAppendPayload(
        session_id=f"f{n % SESSIONS}", messages=[{"type": "human", "data": {"content": content}}]
    )


def applied(client: Client) -> list[int]:
    store = HistoryStore(client.redis, client.keys)
    return [int(str(m.content).split()[0]) for s in range(SESSIONS) for m in store.read(f"f{s}")]


def in_order(client: Client) -> bool:
    store = HistoryStore(client.redis, client.keys)
    for s in range(SESSIONS):
        numbers = [int(str(m.content).split()[0]) for m in store.read(f"f{s}")]
        if numbers != sorted(numbers):
            return False
    return True


def drained(client: Client) -> bool:
    t = client.status().totals()
    return t["backlog"] == 0 and t["pending"] == 0


def short_timeouts(settings: Settings, timeout: float = 0.3) -> Settings:
    redis = settings.redis.model_copy(update={"socket_timeout": timeout, "retries": 0})
    return settings.model_copy(update={"redis": redis})


# --- SIGSTOP longer than the socket timeout ----------------------------------------------------------


def test_a_paused_server_times_out_reads_clearly_and_everything_resumes(
    redis_factory: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a worker and an app with a 1 s socket timeout, and jobs flowing
    server = redis_factory.redis(8)
    settings = short_timeouts(fast_settings(server.url, namespace, visibility_timeout=3.0), timeout=1.0)
    client = Client(settings)
    history = client.chat_history("f0")
    cache = client.llm_cache(record_hits=False)
    caplog.set_level(logging.WARNING, logger="sluice_workers")
    with ThreadWorker(settings) as worker:
        before = client.enqueue([job(n) for n in range(100)])
        client.wait(before, timeout=20)
        cache.update("prompt", "llm", [Generation(text="cached")])
        cache.flush(timeout=10)
        # When the server stops answering for 3.5 s (more than three socket timeouts)
        server.pause()
        try:
            time.sleep(1.2)  # the worker's blocking reads time out meanwhile
            # Then app reads fail fast with our error type, saying what happened and what to do
            for read in (lambda: history.messages, lambda: cache.lookup("prompt", "llm")):
                started = time.monotonic()
                with pytest.raises(
                    RedisTimeout, match=r"did not answer in time.*SLUICE_REDIS__SOCKET_TIMEOUT"
                ):
                    read()
                assert time.monotonic() - started < 2.5
            time.sleep(0.5)
        finally:
            server.resume()
        # And after SIGCONT everything resumes: new jobs are applied, the old ones are all there
        after = client.enqueue([job(n) for n in range(100, 200)])
        client.wait(after, timeout=20)
        assert worker.alive()
        summary = worker.stop(timeout=30)
    assert sorted(applied(client)) == list(range(200))
    assert in_order(client)
    assert cache.lookup("prompt", "llm") == [Generation(text="cached")]
    assert summary.consumers[0].errors >= 1, "the worker's reads should have timed out during the pause"
    assert any(
        "Redis unavailable" in r.getMessage() and "did not answer in time" in r.getMessage()
        for r in caplog.records
    )
    assert client.status().dead_letters == 0


async def test_a_paused_server_times_out_async_reads(redis_factory: Any, namespace: str) -> None:
    server = redis_factory.redis(8)
    client = Client(short_timeouts(fast_settings(server.url, namespace)))
    history = client.chat_history("a")
    assert await history.aget_messages() == []
    server.pause()
    try:
        with pytest.raises(RedisTimeout, match="did not answer in time"):
            await history.aget_messages()
    finally:
        server.resume()
    assert await history.aget_messages() == []
    await client.aclose()


def test_a_worker_paused_in_the_middle_of_a_batch_loses_nothing(redis_factory: Any, namespace: str) -> None:
    # Given a steady stream of jobs while the server is paused three times, each past the socket timeout
    server = redis_factory.redis(8)
    settings = short_timeouts(fast_settings(server.url, namespace, visibility_timeout=2.0), timeout=0.5)
    settings = settings.model_copy(
        update={"queue": settings.queue.model_copy(update={"enqueue_retries": 10})}
    )
    client = Client(settings)
    accepted: list[int] = []
    stop = threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set() and n < 3000:
            batch = list(range(n, n + 50))
            try:
                client.enqueue([job(i) for i in batch])
                accepted.extend(batch)
            except RedisTimeout:
                pass  # ambiguous: the batch may or may not be in; it is never counted as accepted
            n += 50
            time.sleep(0.01)

    producer = threading.Thread(target=produce, daemon=True)
    pauses = 0
    with ThreadWorker(settings) as worker:
        producer.start()
        for _ in range(3):
            time.sleep(0.7)
            server.pause()
            time.sleep(1.2)
            server.resume()
            pauses += 1
        stop.set()
        producer.join(60)
        wait_until(lambda: drained(client), 60, "the backlog to drain", interval=0.2)
        assert worker.alive()
    seen = applied(client)
    # Then every accepted job is applied exactly once, in order per session
    assert pauses == 3
    assert len(seen) == len(set(seen)), "a job was applied twice"
    assert set(accepted) <= set(seen), f"lost {len(set(accepted) - set(seen))} accepted jobs"
    assert in_order(client)
    assert client.status().dead_letters == 0


# --- maxmemory reached with noeviction ------------------------------------------------------------------


def test_a_full_redis_refuses_enqueues_clearly_and_the_worker_keeps_going(
    redis_factory: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a Redis with noeviction whose memory limit is a few MB above what it uses, and a worker
    server = redis_factory.redis(8, config=["maxmemory-policy noeviction"])
    admin = server.client()
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used + 3_000_000)
    settings = fast_settings(server.url, namespace, visibility_timeout=3.0)
    client = Client(settings)
    caplog.set_level(logging.WARNING, logger="sluice_workers")
    accepted: list[int] = []
    # When the app enqueues 2 KB jobs until Redis is full (no worker drains them yet)
    with pytest.raises(RedisFull) as info:
        for start in range(0, 100_000, 100):
            batch = list(range(start, start + 100))
            client.enqueue([job(n, size=2000) for n in batch])
            accepted.extend(batch)
    # Then the enqueue fails with our error, saying what to do
    assert "Redis is out of memory" in str(info.value) and "maxmemory" in str(info.value)
    assert len(accepted) >= 100
    # (a big refused batch counts its own buffer against maxmemory: fill the rest with other
    # data, in small writes, so Redis stays full for the workers too)
    ballast = 0
    while True:
        try:
            admin.set(f"{namespace}-ballast:{ballast}", "b" * 4096)
        except redis_py.exceptions.OutOfMemoryError:
            break
        ballast += 1
    # and workers started on the full Redis meet it, back off and keep going instead of dying
    with ThreadWorker(settings) as worker:
        late = ThreadWorker(settings).start()
        wait_until(
            # at start (creating their groups) or while writing: either way a warning, not a death
            lambda: any("out of memory" in r.getMessage() for r in caplog.records),
            20,
            "the workers to meet the full Redis (and back off)",
            interval=0.2,
        )
        time.sleep(1.0)
        assert worker.alive() and late.alive()
        assert client.status().dead_letters == 0
        # When memory is made available (as the error says: free memory, or raise maxmemory)
        if ballast:
            admin.delete(*[f"{namespace}-ballast:{i}" for i in range(ballast)])
        admin.config_set("maxmemory", 0)
        # Then the workers drain everything that was accepted
        wait_until(lambda: drained(client), 60, "the backlog to drain", interval=0.2)
        late.stop()
    seen = applied(client)
    assert len(seen) == len(set(seen)), "a job was applied twice"
    assert set(accepted) <= set(seen), f"lost {len(set(accepted) - set(seen))} accepted jobs"
    assert set(seen) <= set(range(accepted[-1] + 101)), "only jobs of the refused batch may be extra"
    assert client.status().dead_letters == 0
    assert in_order(client)


# --- store keys of the wrong type or with corrupted content -----------------------------------------


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    settings = fast_settings(redis8.url, namespace)
    embedders = {"hashing": settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": 16}})}
    c = Client(settings.model_copy(update={"embedders": embedders}))
    yield c
    c.close()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda r, k: r.set(k, "not a zset"),
        lambda r, k: r.zadd(k, {"no separators": 0}),
        lambda r, k: r.zadd(k, {f"{padded('1-1')}:000000:" + "{not json": 0}),
        lambda r, k: r.zadd(k, {f"{padded('1-1')}:000000:" + '{"type":"alien","data":{}}': 0}),
        lambda r, k: r.zadd(k, {f"{padded('1-1')}:000000:".encode() + b"\xff\xfe": 0}),
        lambda r, k: r.zadd(k, {f"{padded('1-1')}:000000:" + "[" * 100_000 + "]" * 100_000: 0}),
    ],
    ids=["wrong-type", "no-format", "not-json", "unknown-type", "not-utf8", "deep-json"],
)
async def test_history_reports_a_corrupted_session(client: Client, corrupt: Any) -> None:
    # Given a session key that something else wrote
    corrupt(client.redis, client.keys.history("bad"))
    # Then reading it reports StoreCorrupted naming the key, sync and async, and other sessions work
    with pytest.raises(StoreCorrupted, match=r"history|conversation"):
        client.chat_history("bad").messages
    with pytest.raises(StoreCorrupted):
        await client.chat_history("bad").aget_messages()
    with ThreadWorker(client.settings):
        good = client.chat_history("good")
        good.add_messages([HumanMessage("fine")])
        assert [m.content for m in good.messages] == ["fine"]
    await client.aclose()


EXACT_CORRUPTIONS = [
    lambda r, k: r.hset(k, "a", "b"),
    lambda r, k: r.set(k, "garbage"),
    lambda r, k: r.set(k, padded("1-1") + ":{not json"),
    lambda r, k: r.set(k, padded("1-1") + ":" + "[" * 100_000),
    lambda r, k: r.set(k, padded("1-1").encode() + b":\xff"),
    lambda r, k: r.set(k, padded("1-1") + ':[{"type":"os.system","text":"x"}]'),
    lambda r, k: r.set(
        k,
        padded("1-1")
        + ':[{"type":"ChatGeneration","message":{"type":"ai","data":{"content":"x","tool_calls":[1]}}}]',
    ),
]
EXACT_IDS = [
    "wrong-type",
    "no-version",
    "not-json",
    "deep-json",
    "not-utf8",
    "unknown-class",
    "bad-tool-calls",
]


@pytest.mark.parametrize("corrupt", EXACT_CORRUPTIONS, ids=EXACT_IDS)
async def test_the_exact_cache_treats_a_corrupted_entry_as_a_logged_miss(
    client: Client, corrupt: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from sluice.facade.llm_cache import member_of

    cache = client.llm_cache(record_hits=False)
    corrupt(client.redis, client.keys.cache_entry_of("default", member_of("llm", "prompt")))
    with caplog.at_level(logging.WARNING, logger="sluice"):
        assert cache.lookup("prompt", "llm") is None
        assert await cache.alookup("prompt", "llm") is None
    assert any("LLM cache" in r.getMessage() for r in caplog.records)
    await client.aclose()


@pytest.mark.parametrize("corrupt", EXACT_CORRUPTIONS, ids=EXACT_IDS)
def test_the_semantic_cache_treats_a_corrupted_entry_as_a_logged_miss(
    client: Client, corrupt: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a semantic cache entry whose exact entry (the payload) was corrupted after it was indexed
    from sluice.facade.llm_cache import member_of

    cache = client.semantic_cache(HashingEmbeddings(dims=16), embedder="hashing")
    with ThreadWorker(client.settings):
        cache.update("what is redis", "llm", [Generation(text="an in-memory store")])
        cache.flush()
    assert cache.lookup("what is redis", "llm") == [Generation(text="an in-memory store")]
    key = client.keys.cache_entry_of("semantic", member_of("llm", "what is redis"))
    client.redis.delete(key)
    corrupt(client.redis, key)
    # Then a lookup is a miss, with a warning in the log
    with caplog.at_level(logging.WARNING, logger="sluice"):
        assert cache.lookup("what is redis", "llm") is None
    assert any("cache" in r.getMessage().lower() for r in caplog.records)


@pytest.mark.parametrize("backend", ["search", "vsets"])
@pytest.mark.parametrize("damage", ["bad-meta-json", "wrong-type"])
def test_the_vector_store_reports_or_skips_a_corrupted_document(
    client: Client, backend: str, damage: str
) -> None:
    # Given an index with documents, one of which something else overwrote
    schema = IndexSchema.for_dims(16, MetadataField(name="lang", type="tag"))
    store = client.vectorstore("docs", "hashing", schema=schema, backend=backend)
    with ThreadWorker(client.settings):
        store.add_texts(
            ["redis streams", "redis vectors", "postgres rows"], [{"lang": "en"}] * 3, ids=["a", "b", "c"]
        )
        store.flush()
    meta = store.session.meta
    assert meta is not None
    r = client.redis
    if backend == "search":
        key = client.keys.vector_doc("docs", meta.generation, "b")
        if damage == "bad-meta-json":
            r.hset(key, "_meta", "{not json")
        else:
            r.delete(key)
            r.set(key, "not a hash")
    else:
        key = client.keys.vector_set_docs("docs", meta.generation, meta.shards[0])
        if damage == "bad-meta-json":
            r.hset(key, "b", padded("1-1") + "{not json")
        else:
            r.delete(key)
            r.set(key, "not a hash")
    # Then a search returns the healthy documents or reports the corruption clearly, never crashes
    query = store.embeddings.embed_query("redis")
    try:
        found = {d.id for d in store.similarity_search_by_vector(query, k=3)}
    except StoreCorrupted as e:
        assert "document 'b'" in str(e) or "index 'docs'" in str(e)
    else:
        assert found <= {"a", "b", "c"} and "c" in found | {"c"}
    try:
        docs = store.get_by_ids(["a", "b"])
    except StoreCorrupted as e:
        assert "document 'b'" in str(e) or "index 'docs'" in str(e)
    else:
        assert all(d.id in ("a", "b") for d in docs)


def test_threads_racing_on_a_semantic_caches_first_use_do_not_crash(client: Client) -> None:
    # Found by the soak: an update and lookups in threads, on a cache object nobody has used yet
    errors: list[BaseException] = []

    def run(call: Any) -> None:
        try:
            call()
        except BaseException as e:  # collected for the assertion below
            errors.append(e)

    for attempt in range(5):
        cache = client.semantic_cache(HashingEmbeddings(dims=16), embedder="hashing", name=f"race{attempt}")
        calls = [lambda c=cache: c.update("hello", "llm", [Generation(text="x")])]
        calls += [lambda c=cache: c.lookup("hello", "llm")] * 3
        threads = [threading.Thread(target=run, args=(call,)) for call in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []

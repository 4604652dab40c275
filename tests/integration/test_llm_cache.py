"""The LLM caches against real Redis: LangChain integration, isolation, TTL, clear scope,
corruption, the in-process cache's invalidation, and plain Redis 7."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from sluice.errors import CapabilityMissing
from sluice.facade.client import Client
from sluice.facade.llm_cache import LLMCache
from sluice.models.fake import EchoChatModel
from support.settings import fast_settings
from support.workers import ThreadWorker


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(c.settings):
        yield c
    c.close()


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield
    set_llm_cache(None)


def tool_call_generation() -> ChatGeneration:
    message = AIMessage(
        content=[{"type": "text", "text": "calling the weather tool"}],
        tool_calls=[{"name": "weather", "args": {"city": "Paris", "days": [1, 2]}, "id": "call_1"}],
        usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
        response_metadata={"model_name": "m-1", "finish_reason": "tool_calls", "system_fingerprint": "fp"},
        additional_kwargs={"refusal": None},
        id="run-42",
    )
    return ChatGeneration(message=message, generation_info={"finish_reason": "tool_calls", "logprobs": None})


def test_second_call_is_served_from_the_cache(client: Client, global_cache: None) -> None:
    # Given the sluice cache as LangChain's global cache and a fake model with two different answers
    set_llm_cache(client.llm_cache())
    model = GenericFakeChatModel(messages=iter([AIMessage("first answer"), AIMessage("second answer")]))
    # When the same prompt is asked twice
    first = model.invoke("what is sluice?")
    second = model.invoke("what is sluice?")
    # Then the second answer comes from the cache (the model's second answer is never used)
    assert first.content == second.content == "first answer"
    assert second.usage_metadata is None or second.usage_metadata.get("total_cost") == 0


@pytest.mark.parametrize("write", ["enqueued", "direct"])
def test_tool_call_messages_round_trip_exactly(client: Client, write: Any) -> None:
    # Given a generation with tool calls, usage and response metadata, ids and generation_info
    cache = client.llm_cache(write=write)
    generations = [tool_call_generation(), Generation(text="plain", generation_info={"k": [1, 2]})]
    # When it is stored and read back
    cache.update("prompt", "llm-a", generations)
    found = cache.lookup("prompt", "llm-a")
    # Then every field is equal, types included
    assert found == generations
    assert [type(g) for g in found] == [ChatGeneration, Generation]
    assert isinstance(found[0], ChatGeneration)
    assert found[0].message.tool_calls == generations[0].message.tool_calls  # type: ignore[attr-defined]


def test_the_same_prompt_under_two_llm_strings_never_cross_hits(client: Client) -> None:
    # Given two models (two llm_strings) answering the same prompt
    cache = client.llm_cache()
    cache.update("same prompt", "model-a", [Generation(text="from a")])
    # When the second model looks the prompt up before and after its own answer is stored
    before = cache.lookup("same prompt", "model-b")
    cache.update("same prompt", "model-b", [Generation(text="from b")])
    # Then neither ever sees the other's answer
    assert before is None
    assert cache.lookup("same prompt", "model-a") == [Generation(text="from a")]
    assert cache.lookup("same prompt", "model-b") == [Generation(text="from b")]


def test_two_langchain_models_are_isolated_through_the_global_cache(
    client: Client, global_cache: None
) -> None:
    # Given two differently configured models behind the same global cache
    set_llm_cache(client.llm_cache())
    a, b = FakeListChatModel(responses=["A"]), FakeListChatModel(responses=["B"])
    # When both answer the same prompt, twice
    answers = [a.invoke("q").content, b.invoke("q").content, a.invoke("q").content, b.invoke("q").content]
    # Then each gets its own cached answer
    assert answers == ["A", "B", "A", "B"]


def test_entries_expire_with_their_ttl(client: Client) -> None:
    # Given a cache whose entries live 0.4 s
    cache = client.llm_cache(ttl=0.4)
    cache.update("p", "llm", [Generation(text="short-lived")])
    key = client.keys.cache_entry("default", "llm", "p")
    # When it is read at once, then after the TTL
    assert cache.lookup("p", "llm") == [Generation(text="short-lived")]
    assert 0 < client.redis.pttl(key) <= 400
    time.sleep(0.5)
    # Then it is gone
    assert cache.lookup("p", "llm") is None


def test_clear_removes_only_this_caches_entries(client: Client, redis8: Any, namespace: str) -> None:
    # Given two models in this cache, another cache, another namespace and an unrelated key
    mine, other_cache = client.llm_cache(write="direct"), client.llm_cache(name="other", write="direct")
    neighbour = Client(fast_settings(redis8.url, namespace + "x")).llm_cache(write="direct")
    for i in range(30):
        mine.update(f"p{i}", "model-a", [Generation(text="a")])
        mine.update(f"p{i}", "model-b", [Generation(text="b")])
    other_cache.update("p0", "model-a", [Generation(text="other")])
    neighbour.update("p0", "model-a", [Generation(text="neighbour")])
    client.redis.set(f"{namespace}:cache:unrelated", "keep me")
    # When one model is cleared, then the whole cache
    mine.clear(llm_string="model-a")
    assert mine.lookup("p3", "model-a") is None
    assert mine.lookup("p3", "model-b") == [Generation(text="b")]
    mine.clear()
    # Then only this cache's entries are gone
    assert all(mine.lookup(f"p{i}", m) is None for i in range(30) for m in ("model-a", "model-b"))
    assert other_cache.lookup("p0", "model-a") == [Generation(text="other")]
    assert neighbour.lookup("p0", "model-a") == [Generation(text="neighbour")]
    assert client.redis.get(f"{namespace}:cache:unrelated") == b"keep me"
    neighbour.clear()


def test_a_fill_enqueued_before_clear_never_reappears(redis8: Any, namespace: str) -> None:
    # Given a fill still in the queue (no worker yet) from a fire-and-forget cache
    client = Client(fast_settings(redis8.url, namespace))
    writer = client.llm_cache(read_your_writes=False)
    handles = client.enqueue([writer._payload("p", "llm", [Generation(text="stale")])])
    time.sleep(0.002)  # the clear happens in a later millisecond than the enqueue
    # When the cache is cleared and only then a worker applies the fill
    writer.clear()
    with ThreadWorker(client.settings):
        client.wait(handles, 10)
    # Then the entry enqueued before the clear is not there
    assert writer.lookup("p", "llm") is None
    client.close()


def test_a_corrupted_value_is_a_miss_with_a_warning(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    # Given entries overwritten with garbage: no version, bad JSON, a disallowed type, another Redis type
    cache = client.llm_cache()
    bad = {
        "p1": "not ours",
        "p2": "000001700000000000-0000000001:{not json",
        "p3": '000001700000000000-0000000001:[{"type":"os.system","text":"x"}]',
    }
    for prompt, value in bad.items():
        client.redis.set(client.keys.cache_entry("default", "llm", prompt), value)
    client.redis.hset(client.keys.cache_entry("default", "llm", "p4"), "a", "b")
    # When they are looked up
    with caplog.at_level(logging.WARNING, logger="sluice"):
        found = [cache.lookup(p, "llm") for p in ("p1", "p2", "p3", "p4")]
    # Then each is a miss, reported in the log, and a new answer replaces it
    assert found == [None, None, None, None]
    assert sum("treated as a miss" in r.getMessage() for r in caplog.records) == 4
    cache.update("p2", "llm", [Generation(text="fresh")])
    assert cache.lookup("p2", "llm") == [Generation(text="fresh")]


def settled(cache: LLMCache, expected: Any, within: float = 0.05) -> float:
    """Seconds until lookups return `expected` (the invalidation travels asynchronously, like every
    Redis client-side cache); then it must stay so."""
    started = time.monotonic()
    while cache.lookup("p", "llm") != expected:
        assert time.monotonic() - started < within, f"still not {expected} after {within}s"
    took = time.monotonic() - started
    assert all(cache.lookup("p", "llm") == expected for _ in range(20))
    return took


def test_the_local_cache_serves_repeats_and_drops_a_changed_or_deleted_key(client: Client) -> None:
    # Given a cache with an in-process cache, and another app writing through its own client
    cache = client.llm_cache(local_cache=100)
    other = Client(client.settings).llm_cache(write="direct")
    other.update("p", "llm", [Generation(text="v1")])
    tracked = cache._tracked
    assert tracked is not None
    # When the entry is read repeatedly
    assert cache.lookup("p", "llm") == [Generation(text="v1")]
    assert [cache.lookup("p", "llm") for _ in range(5)] == [[Generation(text="v1")]] * 5
    # Then the repeats were served from memory
    assert tracked.local_hits == 5
    # And when the other app changes the entry, reads see the change as soon as the server's
    # invalidation arrives (well under 50 ms here) and never the old value after that
    other.update("p", "llm", [Generation(text="v2")])
    settled(cache, [Generation(text="v2")])
    # And the same when it clears the cache, or anyone deletes the key
    other.clear()
    settled(cache, None)
    other.update("p", "llm", [Generation(text="v3")])
    settled(cache, [Generation(text="v3")])
    client.redis.delete(client.keys.cache_entry("default", "llm", "p"))
    settled(cache, None)
    assert tracked.invalidations >= 4
    cache.close()


def test_the_local_cache_drops_an_entry_at_its_ttl(client: Client) -> None:
    # Given an entry with a short TTL held in the in-process cache
    cache = client.llm_cache(local_cache=10, ttl=0.3, write="direct")
    cache.update("p", "llm", [Generation(text="soon gone")])
    assert cache.lookup("p", "llm") == [Generation(text="soon gone")]
    assert cache.lookup("p", "llm") == [Generation(text="soon gone")]
    # When the TTL has passed
    time.sleep(0.35)
    # Then it is not served from memory
    assert cache.lookup("p", "llm") is None
    cache.close()


def test_local_cache_hits_are_isolated_copies(client: Client) -> None:
    # Given an entry served from the in-process cache
    cache = client.llm_cache(local_cache=10, write="direct")
    cache.update("p", "llm", [tool_call_generation()])
    first = cache.lookup("p", "llm")
    assert first is not None
    # When a caller replaces the message of a returned generation (as LangChain does on a hit)
    first[0].message = AIMessage("mutated")  # type: ignore[attr-defined]
    # Then later hits are unaffected
    assert cache.lookup("p", "llm") == [tool_call_generation()]
    cache.close()


async def test_async_methods_use_the_same_entries(client: Client) -> None:
    # Given a cache used through its asyncio methods
    cache = client.llm_cache()
    await cache.aupdate("p", "llm-a", [tool_call_generation()])
    # When read back through both APIs, and cleared for one model only
    assert await cache.alookup("p", "llm-a") == [tool_call_generation()]
    assert cache.lookup("p", "llm-a") == [tool_call_generation()]
    await cache.aupdate("p", "llm-b", [Generation(text="b")])
    await cache.aclear(llm_string="llm-a")
    # Then only that model's entry is gone
    assert await cache.alookup("p", "llm-a") is None
    assert await cache.alookup("p", "llm-b") == [Generation(text="b")]
    await client.aclose()


def test_hits_are_recorded_for_refresh_ahead(client: Client) -> None:
    # Given a cached entry
    cache = client.llm_cache(write="direct", ttl=60)
    cache.update("hot prompt", "llm", [Generation(text="x")])
    # When it is hit three times and the counts are flushed
    for _ in range(3):
        cache.lookup("hot prompt", "llm")
    cache.lookup("missing", "llm")
    cache.flush_hits()
    # Then the hits zset counts them, and the source says how to recompute the entry
    hits = client.redis.zrange(client.keys.cache_hits("default"), 0, -1, withscores=True)
    assert [score for _, score in hits] == [3.0]
    member = hits[0][0].decode()
    assert client.keys.cache_entry_of("default", member) == client.keys.cache_entry(
        "default", "llm", "hot prompt"
    )
    assert b"hot prompt" in client.redis.hget(client.keys.cache_sources("default"), member)


def test_a_worker_built_fake_model_is_deterministic_and_fails_on_request() -> None:
    # Given the offline fake model configured to fail on some prompts
    model = EchoChatModel(fail_on=["boom"])
    # When asked twice, and asked a failing prompt
    a, b = model.invoke("hello"), model.invoke("hello")
    # Then the answers are equal and the failing prompt raises
    assert a.content == b.content and str(a.content).startswith("echo: hello #")
    with pytest.raises(ValueError, match="fail_on"):
        model.invoke("boom now")


def test_on_redis_7_the_exact_cache_works(redis7: Any, namespace: str) -> None:
    # Given plain Redis 7 (no modules) and a worker
    client = Client(fast_settings(redis7.url, namespace))
    with ThreadWorker(client.settings):
        cache: LLMCache = client.llm_cache(ttl=30, local_cache=10)
        # When an answer is stored in the background and read back (also from memory)
        cache.update("p", "llm", [tool_call_generation()])
        # Then it is served
        assert cache.lookup("p", "llm") == [tool_call_generation()]
        assert cache.lookup("p", "llm") == [tool_call_generation()]
        cache.clear()
        assert cache.lookup("p", "llm") is None
        cache.close()
    client.close()


def test_on_redis_7_asking_for_a_semantic_cache_names_what_is_missing(redis7: Any, namespace: str) -> None:
    from sluice.embeddings.hashing import HashingEmbeddings

    client = Client(fast_settings(redis7.url, namespace))
    with pytest.raises(CapabilityMissing) as raised:
        client.semantic_cache(HashingEmbeddings())
    message = str(raised.value)
    assert "RediSearch" in message and "Vector Sets" in message and "redis:8" in message
    client.close()


@pytest.mark.cluster
def test_on_a_cluster_clear_scans_every_primary_and_keeps_other_keys(cluster: Any, namespace: str) -> None:
    # Given entries spread over every primary, from two models, and an unrelated key
    client = Client(fast_settings(cluster.url, namespace))
    cache = client.llm_cache(write="direct", ttl=60)
    for i in range(60):
        cache.update(f"p{i}", "model-a", [Generation(text=f"a{i}")])
        cache.update(f"p{i}", "model-b", [Generation(text=f"b{i}")])
    client.redis.set(f"{namespace}:other", "keep")
    slots = {client.redis.keyslot(client.keys.cache_entry("default", "model-a", f"p{i}")) for i in range(60)}
    assert len({client.redis.nodes_manager.get_node_from_slot(s).name for s in slots}) == 3
    # When one model is cleared, then the whole cache
    cache.clear(llm_string="model-a")
    assert [cache.lookup(f"p{i}", "model-a") for i in range(60)] == [None] * 60
    assert cache.lookup("p7", "model-b") == [Generation(text="b7")]
    cache.clear()
    # Then nothing of the cache is left, the other key survives, and new writes land
    assert [cache.lookup(f"p{i}", "model-b") for i in range(60)] == [None] * 60
    assert client.redis.get(f"{namespace}:other") == b"keep"
    cache.update("p1", "model-a", [Generation(text="new")])
    assert cache.lookup("p1", "model-a") == [Generation(text="new")]
    client.close()


def test_the_local_cache_treats_a_key_of_another_type_as_a_miss(client: Client) -> None:
    # Given a cache key holding a hash (written by something else), read through the local cache
    cache = client.llm_cache(local_cache=10)
    client.redis.hset(client.keys.cache_entry("default", "llm", "p"), "a", "b")
    # When looked up twice, then it is a miss both times and the cache keeps working
    assert cache.lookup("p", "llm") is None
    assert cache.lookup("p", "llm") is None
    cache.update("q", "llm", [Generation(text="fine")])
    assert cache.lookup("q", "llm") == [Generation(text="fine")]
    cache.close()

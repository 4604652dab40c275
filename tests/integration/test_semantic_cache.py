"""The semantic cache against real Redis 8, on both vector backends (RediSearch, Vector Sets).

Embeddings are the offline hashing embedder: lexical, not semantic, so "similar" here means
sharing words and spellings (EMBEDDINGS.md); the tests assert on such pairs only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.facade.semantic_cache import Labelled, SemanticCache, best_threshold
from support.settings import fast_settings
from support.workers import ThreadWorker

BACKENDS = ["search", "vsets"]


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(c.settings):
        yield c
    c.close()


def semantic(client: Client, backend: str = "search", **options: Any) -> SemanticCache:
    return client.semantic_cache(HashingEmbeddings(), embedder="hashing", backend=backend, **options)  # type: ignore[arg-type]


def answer(text: str) -> list[Generation]:
    return [
        ChatGeneration(
            message=AIMessage(
                text, id="run-1", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
            )
        )
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_similar_prompt_is_served_through_langchain(client: Client, backend: str) -> None:
    # Given the semantic cache as LangChain's global cache and a fake model with two answers
    set_llm_cache(semantic(client, backend, distance_threshold=0.3))
    try:
        model = GenericFakeChatModel(messages=iter([AIMessage("first"), AIMessage("second")]))
        # When a prompt is asked, then a near-identical one
        first = model.invoke("How do I reset my password?")
        second = model.invoke("how do i reset my password")
    finally:
        set_llm_cache(None)
    # Then the second is served from the cache
    assert first.content == second.content == "first"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_prompt_under_two_llm_strings_never_cross_hits(client: Client, backend: str) -> None:
    # Given an entry for model A
    cache = semantic(client, backend, distance_threshold=0.5)
    cache.update("reset my password", "model-a", answer("from a"))
    # When model B asks the same prompt before and after its own entry exists
    before = cache.lookup_with_score("reset my password", "model-b")
    cache.update("reset my password", "model-b", answer("from b"))
    # Then it never sees A's answer, and A still sees its own
    assert before is None
    assert cache.lookup("reset my password", "model-b") == answer("from b")
    assert cache.lookup("reset my password", "model-a") == answer("from a")
    assert cache.lookup("reset my password please", "model-c") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_lookup_with_score_reports_the_distance_and_the_threshold_applies(
    client: Client, backend: str
) -> None:
    # Given one stored prompt
    cache = semantic(client, backend, distance_threshold=0.25)
    cache.update("how to cancel my subscription", "llm", answer("cancel it in settings"))
    # When the same, a close and an unrelated prompt are looked up
    same = cache.lookup_with_score("how to cancel my subscription", "llm")
    close = cache.lookup_with_score("how to cancel a subscription", "llm", threshold=0.6)
    unrelated = cache.lookup_with_score("best pizza dough recipe", "llm", threshold=0.6)
    # Then the distances say how close each was, and nothing beyond the threshold is served
    assert same is not None and same.distance < 1e-3 and same.prompt == "how to cancel my subscription"
    assert close is not None and 0.05 < close.distance < 0.3
    assert unrelated is None
    assert cache.lookup_with_score("how to cancel a subscription", "llm", threshold=0.1) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_expired_entry_is_never_returned_and_refresh_on_hit_is_opt_in(
    client: Client, backend: str
) -> None:
    # Given two caches with a 1 s TTL, one refreshing entries on every hit
    plain = semantic(client, backend, name="plain", ttl=1.0)
    refreshing = semantic(client, backend, name="refreshing", ttl=1.0, refresh_on_hit=True)
    for cache in (plain, refreshing):
        cache.update("warm prompt", "llm", answer("x"))
    # When both are hit at 0.6 s and read again at 1.3 s
    time.sleep(0.6)
    assert plain.lookup("warm prompt", "llm") is not None
    assert refreshing.lookup("warm prompt", "llm") is not None
    time.sleep(0.7)
    # Then the plain entry has expired (never served), the refreshed one lives on
    assert plain.lookup("warm prompt", "llm") is None
    assert refreshing.lookup("warm prompt", "llm") == answer("x")


def test_flat_index_and_tool_calls_round_trip(client: Client) -> None:
    # Given a FLAT RediSearch index and a generation with tool calls
    cache = semantic(client, "search", algorithm="flat")
    message = AIMessage(
        "", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1"}], response_metadata={"model": "m"}
    )
    stored = [ChatGeneration(message=message, generation_info={"finish_reason": "tool_calls"})]
    # When stored and looked up
    cache.update("call the tool", "llm", stored)
    # Then it comes back exactly
    assert cache.lookup("call the tool", "llm") == stored
    assert client.redis.execute_command("FT.INFO", client.keys.vector_alias("semcache.semantic"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_clear_is_scoped_to_the_cache_and_the_model(client: Client, backend: str) -> None:
    # Given entries of two models, and another semantic cache
    cache, other = semantic(client, backend), semantic(client, backend, name="other")
    cache.update("reset my password", "model-a", answer("a"))
    cache.update("reset my password", "model-b", answer("b"))
    other.update("reset my password", "model-a", answer("other"))
    # When one model is cleared, then everything in the cache
    cache.clear(llm_string="model-a")
    assert cache.lookup("reset my password", "model-a") is None
    assert cache.lookup("reset my password", "model-b") == answer("b")
    cache.clear()
    # Then the other cache is untouched, and the cleared one still works
    assert cache.lookup("reset my password", "model-b") is None
    assert other.lookup("reset my password", "model-a") == answer("other")
    cache.update("reset my password", "model-b", answer("again"))
    assert cache.lookup("reset my password", "model-b") == answer("again")


def test_the_threshold_helper_reports_hit_and_false_hit_rates(client: Client) -> None:
    # Given stored prompts and a labelled sample of lookups (what each should hit, or None)
    cache = semantic(client, "search")
    for prompt in ("reset my password", "cancel my subscription", "change my email address"):
        cache.update(prompt, "llm", answer(prompt))
    sample = [
        Labelled("how do i reset my password", "llm", "reset my password"),
        Labelled("cancel my subscription now", "llm", "cancel my subscription"),
        Labelled("change the email address", "llm", "change my email address"),
        Labelled("change my password", "llm", None),
        Labelled("pizza dough recipe", "llm", None),
    ]
    # When thresholds are evaluated
    stats = cache.evaluate(sample, thresholds=(0.0, 0.5, 1.0, 2.0))
    # Then a zero threshold hits nothing, the widest serves every lookup (some wrongly)
    assert [s.threshold for s in stats] == [0.0, 0.5, 1.0, 2.0]
    assert stats[0].hits == stats[0].false_hits == 0 and stats[0].misses == 5
    assert stats[-1].misses == 0 and stats[-1].false_hits >= 2
    assert all(a.hits <= b.hits for a, b in itertools.pairwise(stats))
    best = best_threshold(stats, max_false_hit_rate=0.0)
    assert best is not None and best.false_hits == 0


async def test_async_lookup_update_and_clear(client: Client) -> None:
    # Given the semantic cache used through its asyncio methods
    cache = semantic(client, "vsets")
    await cache.aupdate("async prompt", "llm", answer("async"))
    # When looked up and cleared
    assert await cache.alookup("async prompt", "llm") == answer("async")
    hit = await cache.alookup_with_score("an async prompt", "llm")
    await cache.aclear()
    # Then the hit was close, and nothing is left after the clear
    assert hit is not None and 0 < hit.distance <= 0.2
    assert await cache.alookup("async prompt", "llm") is None
    await client.aclose()


def test_embeddings_that_do_not_match_the_workers_embedder_are_refused(client: Client) -> None:
    # Given app embeddings of another size than the settings embedder the workers use
    cache = client.semantic_cache(HashingEmbeddings(dims=64), embedder="hashing")
    # When the cache is first used, then the mismatch is named before anything is stored
    with pytest.raises(ConfigError, match="disagree"):
        cache.update("p", "llm", answer("x"))


def test_vectors_of_expired_entries_are_swept_from_a_vector_set(client: Client) -> None:
    from sluice.stores.semantic_cache import SemanticWriter

    # Given a Vector Sets cache with two short-lived entries and one that lives on
    cache = semantic(client, "vsets", name="swept", ttl=0.3)
    lasting = semantic(client, "vsets", name="swept", ttl=60)
    cache.update("first short prompt", "llm", answer("a"))
    cache.update("second short prompt", "llm", answer("b"))
    lasting.update("a lasting prompt", "llm", answer("c"))
    cache.flush()
    lasting.flush()
    _, meta = cache._open()
    vset = client.keys.vector_set(meta.index, meta.generation, meta.shards[0])
    assert client.redis.execute_command("VCARD", vset) == 3
    # When the entries have expired and a worker sweeps the set
    time.sleep(0.4)
    removed = SemanticWriter(client.redis, client.settings).sweep("swept", meta)
    # Then only the dead vectors are gone, and the same prompt can be cached again
    assert removed == 2 and client.redis.execute_command("VCARD", vset) == 1
    assert lasting.lookup("a lasting prompt", "llm") == answer("c")
    lasting.update("first short prompt", "llm", answer("again"))
    assert lasting.lookup("first short prompt", "llm") == answer("again")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_near_miss_is_refused_by_the_verifier_and_explain_says_why(client: Client, backend: str) -> None:
    # Given an entry, and a near-miss that is within the distance threshold
    cache = semantic(client, backend, distance_threshold=0.8)
    cache.update("How do I cancel my subscription?", "llm", answer("subscription"))
    cache.flush()
    # When the near-miss is looked up
    lookup = cache.lookup_with_score("How do I cancel my order?", "llm", explain=True)
    # Then it is a miss, and the candidate's refusal is explained; a paraphrase still hits
    assert lookup.hit is None and cache.lookup("How do I cancel my order?", "llm") is None
    [considered] = lookup.considered
    assert considered.prompt == "How do I cancel my subscription?" and considered.distance < 0.8
    assert (considered.outcome, considered.reason) == ("refused", "key words differ (order / subscription)")
    hit = cache.lookup_with_score("how do i cancel my subscription", "llm", explain=True)
    assert hit.hit is not None and [c.outcome for c in hit.considered] == ["hit"]
    # And without the verifier the near-miss is served (what other semantic caches do)
    unverified = semantic(client, backend, distance_threshold=0.8, verify=False)
    assert unverified.lookup("How do I cancel my order?", "llm") == answer("subscription")


def test_a_verifier_of_your_own_and_explain_beyond_the_threshold(client: Client) -> None:
    # Given a cache whose verifier refuses anything mentioning a refund
    seen: list[tuple[str, str]] = []

    def no_refunds(query: str, cached: str) -> bool:
        seen.append((query, cached))
        return "refund" not in query

    cache = semantic(client, distance_threshold=0.3, verify=no_refunds)
    cache.update("Where is my parcel?", "llm", answer("parcel"))
    cache.flush()
    # When lookups run, then the callable sees the texts and decides
    assert cache.lookup("where is my parcel", "llm") == answer("parcel")
    refused = cache.lookup_with_score("where is my parcel refund", "llm", explain=True)
    assert refused.hit is None and refused.considered[0].reason == "refused by the verifier"
    assert seen[0] == ("where is my parcel", "Where is my parcel?")
    # And a candidate beyond the threshold is shown as such, with its distance
    far = cache.lookup_with_score("parcel", "llm", threshold=0.01, explain=True)
    assert far.hit is None and far.considered[0].outcome == "beyond threshold"
    assert far.considered[0].distance > 0.01


async def test_async_explain(client: Client) -> None:
    cache = semantic(client, distance_threshold=0.8)
    await cache.aupdate("Flights to Paris in May", "llm", answer("may"))
    lookup = await cache.alookup_with_score("Flights to Paris in June", "llm", explain=True)
    assert lookup.hit is None and lookup.considered[0].reason == "dates differ (june / may)"
    hit = await cache.alookup_with_score("flights to paris in may", "llm")
    assert hit is not None and hit.generations == answer("may")
    await client.aclose()


async def test_the_async_cache_keeps_the_event_loop_free_while_it_checks_a_slow_embedder(
    redis8: Any, namespace: str
) -> None:
    from sluice.settings import ComponentSpec

    # Given a settings embedder that takes 0.4 s to build and 0.4 s to embed, even from async code
    slow = ComponentSpec(import_path="support.slow_embeddings:SlowEmbeddings", kwargs={"delay": 0.4})
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings.model_copy(update={"embedders": {**settings.embedders, "slow": slow}}))
    cache = client.semantic_cache(HashingEmbeddings(), embedder="slow")
    # When the cache first opens (and checks that embedder) while a ticker runs on the loop
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    started = loop.time()
    assert await cache.alookup("a prompt never cached", "llm") is None
    took = loop.time() - started
    task.cancel()
    # Then the check did run (it took the embedder's time), and the ticker never stalled for it
    assert took >= 0.8 and cache._checked == "slow"
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.3
    await client.aclose()
    client.close()

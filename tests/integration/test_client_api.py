"""The API's first hour against real Redis and a live worker: one shape for `wait`, `timeout=0`,
waiting without `notify`, one `write=` vocabulary, one policy for late workers, and a cache that
never fails the LLM call.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import WaitTimeout
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.messages import to_compact_dicts
from sluice.types import NotifiedEntryRef, StreamEntryRef
from support.settings import fast_settings
from support.workers import ThreadWorker


def job(session: str) -> HistoryAppendPayload:
    return HistoryAppendPayload(session_id=session, messages=to_compact_dicts([HumanMessage("hi")]))


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace, queue={"wait_timeout": 0.5}))
    yield c
    c.close()


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield
    set_llm_cache(None)


# --- wait: one handle or many, sync and asyncio ------------------------------------------------------
def test_wait_takes_one_handle_or_a_list_sync_and_asyncio(client: Client) -> None:
    with ThreadWorker(client.settings):
        # Given handles of jobs enqueued with and without notify
        [one] = client.enqueue([job("a")], notify=True)
        many = client.enqueue([job("b"), job("c")])
        assert isinstance(one, NotifiedEntryRef) and not isinstance(many[0], NotifiedEntryRef)
        # When the app waits on one handle, on a list, and on plain (stream, id) pairs (e.g. from JSON)
        client.wait(one)
        client.wait(many, timeout=5)
        client.wait([list(h) for h in many])  # type: ignore[misc]

        # and the same from asyncio, with the parallel name
        async def on_asyncio() -> None:
            [h] = await client.aenqueue([job("d")], notify=True)
            await client.await_wait(h)
            await client.await_wait(await client.aenqueue([job("e"), job("f")]), timeout=5)

        asyncio.run(on_asyncio())
    # Then all were applied
    assert client.waiter.remaining([one, *many]) == []


def test_timeout_zero_checks_once_and_does_not_wait(client: Client) -> None:
    # Given a job and no worker
    [handle] = client.enqueue([job("z")], notify=True)
    # When the app waits with timeout=0
    started = time.monotonic()
    with pytest.raises(WaitTimeout):
        client.wait(handle, timeout=0)
    # Then it checked once and gave up at once (0 is zero, not "the default")
    assert time.monotonic() - started < 0.2
    # and once a worker applied it, timeout=0 returns
    with ThreadWorker(client.settings):
        client.wait(handle, timeout=10)
        client.wait(handle, timeout=0)


def test_a_wait_without_notify_does_not_poll_in_250ms_steps(client: Client) -> None:
    # Given a live worker
    with ThreadWorker(client.settings):
        client.wait(client.enqueue([job("warm")], notify=True), timeout=10)
        # When jobs enqueued without notify (the default) are waited for one at a time
        took = []
        for n in range(15):
            started = time.perf_counter()
            client.wait(client.enqueue([job(f"s{n}")]), timeout=10)
            took.append(time.perf_counter() - started)
    # Then a wait returns soon after the worker applied the job (it used to take 250-300 ms:
    # one BLPOP on a signal no worker leaves for such a job, ending on the server's 100 ms clock)
    assert statistics.median(took) < 0.1, took


# --- write=: one vocabulary ------------------------------------------------------------------------
def test_write_enqueued_goes_through_the_workers_and_direct_does_not(client: Client) -> None:
    gens = [Generation(text="answer")]
    enqueued, direct = (
        client.llm_cache(name="q", write="enqueued"),
        client.llm_cache(name="d", write="direct"),
    )
    # Given no worker: an enqueued fill is not applied, a direct one is there at once
    enqueued.update("p", "llm", gens)
    direct.update("p", "llm", gens)
    assert client.llm_cache(name="q").lookup("p", "llm") is None
    assert client.llm_cache(name="d").lookup("p", "llm") == gens
    # A history appends "enqueued" (through the workers) or "buffered" (from a thread); both land
    with ThreadWorker(client.settings):
        for mode in ("enqueued", "buffered"):
            history = client.chat_history(f"h-{mode}", write=mode)
            history.add_messages([HumanMessage(mode)])
            history.flush(timeout=10)
            assert [m.content for m in client.chat_history(f"h-{mode}").messages] == [mode]
        enqueued.flush(timeout=10)
    assert client.llm_cache(name="q").lookup("p", "llm") == gens


def test_old_write_spellings_behave_as_before(client: Client) -> None:
    with pytest.warns(DeprecationWarning):
        old_sync = client.llm_cache(name="old", write="sync")  # was: write in the call
    old_sync.update("p", "llm", [Generation(text="x")])
    assert client.llm_cache(name="old").lookup("p", "llm") == [Generation(text="x")]  # no worker needed
    with pytest.warns(DeprecationWarning):
        history = client.chat_history("old", write="sync")  # was: enqueue in the call
    assert history.write == "enqueued"


# --- when workers are late: the policy per facade ------------------------------------------------------
def test_late_workers_make_caches_miss_and_histories_read_without_waiting_again(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sluice")
    # Given no worker (wait_timeout 0.5 s)
    cache = client.llm_cache()
    cache.update("p", "llm", [Generation(text="x")])
    history = client.chat_history("late")
    history.add_messages([HumanMessage("turn 1")])
    # When they read their own writes: the cache misses with a warning
    assert cache.lookup("p", "llm") is None
    # and the history reads what is applied (nothing yet), with a warning, after one wait
    started = time.monotonic()
    assert history.messages == []
    assert 0.4 < time.monotonic() - started < 2
    assert any("reading without" in r.getMessage() for r in caplog.records)
    # Then the next reads do not wait again while the workers are still behind (a new object too)
    history.add_messages([HumanMessage("turn 2")])
    started = time.monotonic()
    assert client.chat_history("late").messages == []
    assert time.monotonic() - started < 0.2
    # and once a worker has caught up, reads wait again and see every turn, in order
    with ThreadWorker(client.settings):
        history.flush(timeout=10)  # flush always waits (and raises on a timeout)
        history.add_messages([HumanMessage("turn 3")])
        assert [m.content for m in history.messages] == ["turn 1", "turn 2", "turn 3"]
        cache.update("p", "llm", [Generation(text="y")])
        assert cache.lookup("p", "llm") == [Generation(text="y")]  # the cache waits again too
    assert not client.lateness


def test_late_workers_make_a_vector_store_raise_unless_told_to_warn(client: Client) -> None:
    emb = HashingEmbeddings()
    strict = client.vectorstore("strict", emb)
    lenient = client.vectorstore("lenient", emb, on_timeout="warn")
    strict.add_texts(["a document"])
    lenient.add_texts(["a document"])
    # When the workers are late: the default raises, on_timeout="warn" searches without the writes
    with pytest.raises(WaitTimeout):
        strict.similarity_search("a document", k=1)
    assert lenient.similarity_search("a document", k=1) == []
    # and a history told to raise raises too
    history = client.chat_history("strict", on_timeout="raise")
    history.add_messages([HumanMessage("x")])
    with pytest.raises(WaitTimeout):
        _ = history.messages
    # Then with a worker, everything is there
    with ThreadWorker(client.settings):
        strict.flush()
        assert [d.page_content for d in strict.similarity_search("a document", k=1)] == ["a document"]
        assert [m.content for m in history.messages] == ["x"]


def test_runnable_with_message_history_keeps_answering_while_workers_are_down(client: Client) -> None:
    # Given a chain with a history per call, as LangChain builds it, and no worker
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    echo = RunnableLambda(lambda value: AIMessage(f"{len(value.to_messages())} messages seen"))
    chain = RunnableWithMessageHistory(
        {"q": itemgetter("q"), "history": itemgetter("history")} | prompt | echo,
        client.chat_history,
        input_messages_key="q",
        history_messages_key="history",
    )
    config: Any = {"configurable": {"session_id": "down"}}
    # When three turns run: each answers (the first late read waits wait_timeout, the next do not)
    took = []
    for n in range(3):
        started = time.monotonic()
        assert chain.invoke({"q": f"turn {n}"}, config).content
        took.append(time.monotonic() - started)
    assert took[2] < 0.3, took
    # Then, once a worker runs, the conversation holds every turn in order
    with ThreadWorker(client.settings):
        history = client.chat_history("down")
        history.flush(timeout=10)
        assert [m.content for m in history.messages][::2] == ["turn 0", "turn 1", "turn 2"]


# --- a cache never fails the LLM call --------------------------------------------------------------
@pytest.mark.parametrize("oversized", ["prompt", "answer"])
def test_an_oversized_fill_is_skipped_and_the_llm_call_still_answers(
    client: Client, global_cache: None, oversized: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the sluice cache as LangChain's cache, and a prompt or an answer over the job limits
    cache = client.llm_cache()
    set_llm_cache(cache)
    answer = "x" * 1_200_000 if oversized == "answer" else "a short answer"  # over 1 MiB of job
    question = "x" * 300_000 if oversized == "prompt" else "a short question"  # over 200,000 characters
    model = FakeListChatModel(responses=[answer])
    # When the model is called through LangChain
    with ThreadWorker(client.settings):
        result = model.invoke(question)
    # Then the caller gets the answer; the fill was skipped, logged and counted
    assert result.content == answer
    assert cache.skipped.counts["PayloadTooLarge"] == 1
    assert any("not cached" in r.getMessage() for r in caplog.records)


def test_an_oversized_semantic_fill_is_skipped_too(client: Client) -> None:
    cache = client.semantic_cache(HashingEmbeddings(), embedder="hashing")
    cache.update("q", "llm", [Generation(text="y" * 2_000_000)])
    assert cache.skipped.counts["PayloadTooLarge"] == 1


def test_a_fill_the_queue_refuses_is_skipped_not_raised(redis8: Any, namespace: str) -> None:
    # Given a queue full to its bound (no worker)
    client = Client(fast_settings(redis8.url, namespace, queue={"max_backlog": 2, "partitions": 1}))
    cache = client.llm_cache()
    for n in range(4):
        cache.update(f"p{n}", "llm", [Generation(text="x")])
    # Then the fills past the bound were skipped and counted, never raised into the LLM call
    assert cache.skipped.counts["QueueFull"] == 2
    client.close()


def test_the_async_path_of_a_cache_skips_an_oversized_fill(client: Client) -> None:
    cache = client.llm_cache()

    async def fill() -> None:
        await cache.aupdate("q" * 300_000, "llm", [Generation(text="x")])

    asyncio.run(fill())
    assert cache.skipped.counts["PayloadTooLarge"] == 1


def test_handles_are_plain_tuples_to_callers(client: Client) -> None:
    with ThreadWorker(client.settings):
        [h] = client.enqueue([job("t")], notify=True)
        client.wait(h)
    assert isinstance(h, StreamEntryRef) and tuple(h) == (h.stream, h.entry_id)

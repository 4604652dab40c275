"""Asyncio works in every event loop: each facade (the LangGraph checkpointer too), drop-in and the
client itself, built once and then used from three successive `asyncio.run()` calls and from
pytest-asyncio's loop per test.

A redis-py asyncio connection belongs to the loop that opened it; a sluice object built once per
process (a cache given to `set_llm_cache`, a drop-in keeping one `Client` per URL) must still work
from the next loop. Every public coroutine method of every class is called (`test_every_async_method_is_exercised`
checks the list against the classes, so a new one cannot be missed), and the server must not be
left with the connections of finished loops.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from langgraph.store.base import GetOp

from sluice import Client
from sluice.compat import clients
from sluice.compat import community as cm
from sluice.compat import langchain_redis as lr
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import ConfigError, NoEventLoop
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.messages import to_compact_dicts
from support.agent import build_agent
from support.settings import fast_settings
from support.workers import ThreadWorker

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::UserWarning"
)

CALLED: dict[type, set[str]] = defaultdict(set)
LLM = "fake-llm"


async def call(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call `obj.name(...)` and record it for the coverage check."""
    CALLED[obj if isinstance(obj, type) else type(obj)].add(name)
    return await getattr(obj, name)(*args, **kwargs)


def gens(text: str) -> list[Generation]:
    return [Generation(text=text)]


# --- one scenario per kind of object ---------------------------------------------------------------
async def cache_round(cache: Any, tag: str, *, clear: bool = True) -> None:
    await call(cache, "aupdate", f"prompt {tag}", LLM, gens(f"answer {tag}"))
    assert [g.text for g in await call(cache, "alookup", f"prompt {tag}", LLM)] == [f"answer {tag}"]
    if clear:
        await call(cache, "aclear")
        assert await call(cache, "alookup", f"prompt {tag}", LLM) is None


async def semantic_round(cache: Any, tag: str) -> None:
    await call(cache, "aupdate", f"what is the capital of france {tag}", LLM, gens(f"paris {tag}"))
    hit = await call(cache, "alookup_with_score", f"what is the capital of france {tag}", LLM)
    assert hit is not None and hit.distance < 0.01
    assert [g.text for g in await call(cache, "alookup", f"what is the capital of france {tag}", LLM)] == [
        f"paris {tag}"
    ]
    await call(cache, "aclear")
    assert await call(cache, "alookup", f"what is the capital of france {tag}", LLM) is None


async def store_round(store: Any, tag: str) -> None:
    ids = await call(store, "aadd_texts", [f"red apple {tag}", f"green pear {tag}"], [{"n": 1}, {"n": 2}])
    [doc_id] = await call(
        store, "aadd_documents", [Document(page_content=f"blue plum {tag}", metadata={"n": 3})]
    )
    vector = HashingEmbeddings().embed_query(f"red apple {tag}")
    assert (await call(store, "asimilarity_search", f"red apple {tag}", k=1))[
        0
    ].page_content == f"red apple {tag}"
    assert (await call(store, "asimilarity_search_by_vector", vector, k=1))[
        0
    ].page_content == f"red apple {tag}"
    assert len(await call(store, "asimilarity_search_with_score", f"red apple {tag}", k=2)) == 2
    assert len(await call(store, "asimilarity_search_with_score_by_vector", vector, k=2)) == 2
    assert len(await call(store, "asimilarity_search_with_relevance_scores", f"red apple {tag}", k=2)) == 2
    assert len(await call(store, "asearch", f"green pear {tag}", "similarity", k=1)) == 1
    assert len(await call(store, "ahybrid_search", f"green pear {tag}", k=1)) == 1
    assert len(await call(store, "ahybrid_search_with_score", f"green pear {tag}", k=1)) == 1
    assert len(await call(store, "amax_marginal_relevance_search", f"pear {tag}", k=2, fetch_k=3)) == 2
    assert len(await call(store, "amax_marginal_relevance_search_by_vector", vector, k=2, fetch_k=3)) == 2
    got = await call(store, "aget_by_ids", [*ids, doc_id])
    assert len(got) == 3
    await call(store, "adelete", [*ids, doc_id])
    await call(store, "aflush")
    assert await call(store, "aget_by_ids", ids) == []


async def store_builders(cls: type, embeddings: Any, tag: str, **kwargs: Any) -> None:
    """`afrom_texts` / `afrom_documents` build a new store inside the running loop."""
    built = await call(cls, "afrom_texts", [f"built from texts {tag}"], embeddings, **kwargs)
    assert (await built.asimilarity_search(f"built from texts {tag}", k=1))[0].page_content.endswith(tag)
    built = await call(
        cls, "afrom_documents", [Document(page_content=f"built from docs {tag}")], embeddings, **kwargs
    )
    assert (await built.asimilarity_search(f"built from docs {tag}", k=1))[0].page_content.endswith(tag)


async def history_round(history: Any, tag: str, *, recall: bool) -> None:
    await call(history, "aclear")
    await call(history, "aadd_messages", [HumanMessage(f"hello {tag}"), AIMessage(f"hi there {tag}")])
    assert [m.content for m in await call(history, "aget_messages")] == [f"hello {tag}", f"hi there {tag}"]
    assert [m.content for m in await call(history, "aget_recent", 1)] == [f"hi there {tag}"]
    if recall:
        assert (await call(history, "arelevant", f"hello {tag}", 1))[0].content == f"hello {tag}"
    else:
        with pytest.raises(ConfigError):
            await call(history, "arelevant", f"hello {tag}", 1)
    await call(history, "aflush")
    await call(history, "adelete")
    assert await call(history, "aget_messages") == []


async def retriever_round(retriever: Any, query: str) -> None:
    assert await call(retriever, "ainvoke", query)
    assert len(await call(retriever, "abatch", [query, query])) == 2


async def vector_retriever_round(retriever: Any, tag: str) -> None:
    await call(retriever, "aadd_documents", [Document(page_content=f"kiwi {tag}")])
    await retriever.vectorstore.aflush()
    await retriever_round(retriever, f"kiwi {tag}")


def record_graph_calls(saver: Any, names: tuple[str, ...] = ("aput", "aput_writes")) -> None:
    """LangGraph itself calls these on the checkpointer; record them as they happen."""
    for name in names:
        method = getattr(saver, name)

        async def recorded(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            CALLED[type(saver)].add(_name)
            return await _method(*args, **kwargs)

        setattr(saver, name, recorded)


async def checkpointer_round(saver: Any, tag: str) -> None:
    config: Any = {"configurable": {"thread_id": f"t-{tag}"}}
    out = await build_agent(saver).ainvoke({"messages": [HumanMessage(f"hello {tag}")]}, config)
    assert f"you said: hello {tag}" in out["messages"][-1].content
    await call(saver, "aflush", f"t-{tag}")
    assert (await call(saver, "aget_tuple", config)) is not None
    assert (await call(saver, "aget", config)) is not None
    assert [c async for c in saver.alist(config, limit=2)]
    assert "messages" in await call(saver, "aget_delta_channel_history", config=config, channels=["messages"])
    await call(saver, "acopy_thread", f"t-{tag}", f"copy-{tag}")
    await call(saver, "aprune", [f"copy-{tag}"])
    await call(saver, "adelete_thread", f"t-{tag}")
    await call(saver, "aflush", f"t-{tag}")
    assert await saver.aget_tuple(config) is None
    await call(saver, "adelete_for_runs", ["run-1"])  # no thread holds that run: nothing to do


async def store_memory_round(store: Any, tag: str) -> None:
    """LangGraph's long-term memory (`client.store()`)."""
    ns = ("users", tag)
    await call(store, "aput", ns, "prefs", {"colour": "blue"})
    item = await call(store, "aget", ns, "prefs")
    assert item is not None and item.value == {"colour": "blue"}
    assert [i.key for i in await call(store, "asearch", ns)] == ["prefs"]
    assert ns in await call(store, "alist_namespaces", prefix=("users",))
    await call(store, "adelete", ns, "prefs")
    assert await call(store, "abatch", [GetOp(ns, "prefs")]) == [None]


async def client_round(client: Client, tag: str) -> None:
    assert (await call(client, "acapabilities")).search
    handles = await call(
        client,
        "aenqueue",
        [HistoryAppendPayload(session_id=f"raw-{tag}", messages=to_compact_dicts([HumanMessage("x")]))],
        notify=True,
    )
    await call(client, "await_wait", handles)
    await call(client, "await_wait", handles[0], timeout=5)
    await call(client, "await_", handles)
    assert f"raw-{tag}" in {s.session_id for s in (await call(client, "asessions", "raw-")).sessions}
    await call(client, "aclose")


# --- the objects, built once outside any loop --------------------------------------------------------
class World:
    def __init__(self, url: str, namespace: str) -> None:
        self.url, self.namespace = url, namespace
        self.client = Client(fast_settings(url, namespace))
        self.app_redis = redis_py.Redis.from_url(url, protocol=2)
        emb = HashingEmbeddings()
        c, ns = self.client, namespace
        self.emb = emb
        self.caches = [
            c.llm_cache(),
            c.llm_cache(name="direct", write="direct"),
            cm.RedisCache(self.app_redis, namespace=ns),
            lr.RedisCache(redis_url=url, namespace=ns, prefix="lrcache"),
        ]
        self.semantic = [
            c.semantic_cache(emb, embedder="hashing", name="sem"),  # type: ignore[arg-type]
            cm.RedisSemanticCache(url, emb, namespace=ns, name="cmsem"),
            lr.RedisSemanticCache(emb, redis_url=url, namespace=ns, name="lrsem"),
        ]
        self.stores = [
            c.vectorstore("facade", emb),
            cm.Redis(url, "community", emb, namespace=ns),
            lr.RedisVectorStore(emb, index_name="lrstore", redis_url=url, namespace=ns),
        ]
        self.histories = [
            (c.chat_history("facade", embedder="hashing"), True),
            (cm.RedisChatMessageHistory("community", url=url, namespace=ns), False),
            (lr.RedisChatMessageHistory("lr", redis_url=url, namespace=ns), False),
        ]
        self.memory = c.memory_retriever(session_id="recall", embedder="hashing", k=1)
        self.recall_history = c.chat_history("recall", embedder="hashing")
        self.vector_retrievers = [s.as_retriever(search_kwargs={"k": 1}) for s in self.stores]
        self.saver = c.checkpointer()
        self.memory_store = c.store()
        record_graph_calls(self.saver)

    async def run_all(self, tag: str) -> None:
        for cache in self.caches:
            await cache_round(cache, tag)
        for cache in self.semantic:
            await semantic_round(cache, tag)
        for store in self.stores:
            await store_round(store, tag)
        await store_builders(type(self.stores[0]), self.emb, tag, client=self.client, index="built")
        await store_builders(
            cm.Redis, self.emb, tag, redis_url=self.url, index_name="cmbuilt", namespace=self.namespace
        )
        await store_builders(
            lr.RedisVectorStore,
            self.emb,
            tag,
            redis_url=self.url,
            index_name="lrbuilt",
            namespace=self.namespace,
        )
        for history, recall in self.histories:
            await history_round(history, tag, recall=recall)
        await self.recall_history.aadd_messages([HumanMessage(f"remember the lighthouse {tag}")])
        await self.recall_history.aflush()
        await retriever_round(self.memory, f"lighthouse {tag}")
        for retriever in self.vector_retrievers:
            await vector_retriever_round(retriever, tag)
        await checkpointer_round(self.saver, tag)
        await store_memory_round(self.memory_store, tag)
        await client_round(self.client, tag)

    def open_loops(self) -> int:
        """Event loops for which some client (this one, or a drop-in's shared one) holds connections."""
        shared = [*clients._BY_URL.values(), *(c for per in clients._BY_REDIS.values() for c in per.values())]
        return sum(len(c._loops._held) for c in [self.client, *shared])  # not pruned: closed at shutdown

    def close(self) -> None:
        self.client.close()
        self.app_redis.close()


@pytest.fixture(scope="module")
def world(redis8: Any) -> Iterator[World]:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    w = World(redis8.url, namespace)
    with ThreadWorker(fast_settings(redis8.url, namespace)):
        yield w
    w.close()
    clients.close_all()


# --- the tests ---------------------------------------------------------------------------------------
def test_three_successive_asyncio_runs(world: World) -> None:
    # Given objects built once, outside any event loop
    # When three loops, one after another, use every async method of each
    for n in range(3):
        asyncio.run(world.run_all(f"run{n}"))
    # Then each worked, and every client closed its finished loops' connections with those loops
    assert world.open_loops() == 0


@pytest.mark.parametrize("n", [1, 2, 3])
async def test_pytest_asyncio_function_scoped_loops(world: World, n: int) -> None:
    # Given the same objects, used before from other loops; When this test's own loop uses them
    await world.run_all(f"pytest{n}")
    # Then each call worked (nothing is attached to an earlier test's loop)


def test_a_loop_in_another_thread_gets_its_own_connections(world: World) -> None:
    # Given two threads, each running its own event loop at the same time
    errors: list[str] = []

    def in_thread(tag: str) -> None:
        try:
            # no clear: one thread's clear of the shared cache would empty the other's entry
            asyncio.run(cache_round(world.caches[0], tag, clear=False))
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=in_thread, args=(f"thread{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Then both worked
    assert not errors, "\n".join(errors)


def test_asyncio_connections_outside_a_loop_say_where_to_use_them(world: World) -> None:
    with pytest.raises(NoEventLoop, match="running event loop"):
        _ = world.client.async_redis


def test_every_async_method_is_exercised(world: World) -> None:
    # Given the classes above and every public coroutine method each has
    asyncio.run(world.run_all("coverage"))
    objects: list[Any] = [
        *world.caches, *world.semantic, *world.stores, *(h for h, _ in world.histories),
        world.memory, *world.vector_retrievers, world.saver, world.memory_store, world.client,
    ]  # fmt: skip
    missing: dict[str, list[str]] = {}
    for cls in {type(o) for o in objects}:
        methods = {
            n for n, f in inspect.getmembers(cls) if not n.startswith("_") and inspect.iscoroutinefunction(f)
        }
        left = sorted(methods - CALLED[cls])  # instance calls and classmethod calls both land here
        if left:
            missing[cls.__qualname__] = left
    # Then none was left out (add a call to the scenario of its kind above)
    assert missing == {}


def test_many_loops_do_not_pile_up_clients(world: World) -> None:
    # Given a client used from ten short-lived loops
    for n in range(10):
        asyncio.run(cache_round(world.caches[0], f"pile{n}"))
    # Then it holds no connections for loops that are gone
    assert world.open_loops() == 0

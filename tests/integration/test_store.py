"""`client.store()`: LangGraph's long-term memory on sluice, compared with LangGraph's own
InMemoryStore, on a real Redis 8 with a live worker."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import ConfigError, InvalidArgument
from sluice.facade.client import Client
from sluice.settings import Settings
from support.settings import fast_settings
from support.workers import ThreadWorker

TOPICS = ["redis streams", "sourdough bread", "mountain hiking", "jazz piano", "tax returns"]


@pytest.fixture
def settings(redis8: Any, namespace: str) -> Settings:
    return fast_settings(redis8.url, namespace)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings)
    with ThreadWorker(c.settings):
        yield c
    c.close()


def fill(store: BaseStore) -> None:
    store.put(("users", "ada", "memories"), "m1", {"text": "likes redis streams", "kind": "fact", "n": 1})
    store.put(("users", "ada", "memories"), "m2", {"text": "bakes sourdough bread", "kind": "hobby", "n": 2})
    # updated_at has millisecond resolution (the entry id's time), and m2 and p1 travel on different
    # streams: within one millisecond they would tie, listed in (namespace, key) order
    time.sleep(0.003)
    store.put(("users", "ada", "prefs"), "p1", {"text": "dark mode", "kind": "pref", "n": 3})
    store.put(("users", "bob", "memories"), "m1", {"text": "plays jazz piano", "kind": "hobby", "n": 4})
    store.put(
        ("docs",), "d1", {"text": "tax returns are due", "kind": "fact", "n": 5, "meta": {"lang": "en"}}
    )


def keys(items: list[Any]) -> set[tuple[tuple[str, ...], str]]:
    return {(i.namespace, i.key) for i in items}


def test_put_get_delete_search_and_list_namespaces_answer_as_langgraphs_own_store(client: Client) -> None:
    # Given the same items in sluice's store and in LangGraph's InMemoryStore
    ours, theirs = client.store(), InMemoryStore()
    for store in (ours, theirs):
        fill(store)
    # Then a get sees the put at once (read-your-writes), with LangGraph's Item
    item = ours.get(("users", "ada", "memories"), "m1")
    assert item is not None and item.value == {"text": "likes redis streams", "kind": "fact", "n": 1}
    assert item.created_at == item.updated_at and item.created_at.tzinfo is not None
    assert ours.get(("users", "ada", "memories"), "nope") is None
    # And filtered listings, prefixes, operators and nested filters match LangGraph's answers
    for prefix, flt in [
        ((), None),
        (("users",), {"kind": "hobby"}),
        (("users", "ada"), {"n": {"$gte": 2}}),
        ((), {"n": {"$gt": 1, "$lt": 5}, "kind": {"$ne": "pref"}}),
        ((), {"meta": {"lang": "en"}}),
        (("nobody",), None),
    ]:
        assert keys(ours.search(prefix, filter=flt)) == keys(theirs.search(prefix, filter=flt)), (prefix, flt)
    assert len(ours.search((), limit=2)) == 2 and len(ours.search((), limit=2, offset=4)) == 1
    # newest update first
    assert [i.key for i in ours.search(("users", "ada"))] == ["p1", "m2", "m1"]
    for kwargs in [
        {},
        {"prefix": ("users",)},
        {"suffix": ("memories",)},
        {"prefix": ("users", "*", "memories")},
        {"max_depth": 2},
        {"prefix": ("users",), "max_depth": 1},
        {"limit": 2, "offset": 1},
    ]:
        assert ours.list_namespaces(**kwargs) == theirs.list_namespaces(**kwargs), kwargs
    # When an item is updated and another deleted
    before = ours.get(("users", "ada", "memories"), "m1")
    time.sleep(0.01)
    for store in (ours, theirs):
        store.put(("users", "ada", "memories"), "m1", {"text": "loves redis streams", "kind": "fact", "n": 1})
        store.delete(("users", "ada", "prefs"), "p1")
    # Then the update keeps its creation time, and the emptied namespace is no longer listed
    after = ours.get(("users", "ada", "memories"), "m1")
    assert after is not None and before is not None
    assert after.value["text"] == "loves redis streams"
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert ours.get(("users", "ada", "prefs"), "p1") is None
    # (InMemoryStore keeps listing a namespace it emptied; SQL stores, and sluice, do not)
    assert ours.list_namespaces() == [
        ns for ns in theirs.list_namespaces() if ns != ("users", "ada", "prefs")
    ]


async def test_the_asyncio_api(client: Client) -> None:
    store = client.store()
    await store.aput(("a", "b"), "k", {"x": 1})
    assert (await store.aget(("a", "b"), "k")).value == {"x": 1}  # type: ignore[union-attr]
    assert [i.key for i in await store.asearch(("a",), filter={"x": 1})] == ["k"]
    assert await store.alist_namespaces(prefix=("a",)) == [("a", "b")]
    await store.adelete(("a", "b"), "k")
    assert await store.aget(("a", "b"), "k") is None
    await client.aclose()


@pytest.mark.parametrize("embed", ["hashing", "instance"])
def test_a_filtered_semantic_search_returns_limit_items_whenever_that_many_match(
    client: Client, embed: str
) -> None:
    # Given 200 memories on 5 topics, a tenth of them with tag "keep", embedded by the workers
    # (a settings embedder name) or by the app (an Embeddings instance)
    embeddings = HashingEmbeddings()
    index: Any = {"dims": 256, "embed": "hashing" if embed == "hashing" else embeddings, "fields": ["text"]}
    ours = client.store(index=index)
    theirs = InMemoryStore(index={"dims": 256, "embed": embeddings, "fields": ["text"]})
    ops = [
        PutOp(
            ("mem", f"u{i % 4}"),
            f"k{i}",
            {"text": f"{TOPICS[i % 5]} note {i}", "tag": "keep" if i % 10 == 0 else "drop", "i": i},
        )
        for i in range(200)
    ]
    for store in (ours, theirs):
        store.batch(ops)
    # When a search asks for 10 items of a topic among the 10% tagged "keep"
    found = ours.search(("mem",), query="redis streams", filter={"tag": "keep"}, limit=10)
    # Then it gets 10 (the filter is inside the vector query, never applied after it), all tagged
    assert len(found) == 10
    assert all(i.value["tag"] == "keep" for i in found)
    # And they are the ones LangGraph's own store ranks first, with the same scores
    reference = theirs.search(("mem",), query="redis streams", filter={"tag": "keep"}, limit=10)
    assert [i.key for i in found] == [i.key for i in reference]
    for a, b in zip(found, reference, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)
    # And an unfiltered search of one namespace ranks the topic first
    top = ours.search(("mem", "u0"), query="redis streams", limit=3)
    assert all(i.value["text"].startswith("redis streams") for i in top)
    assert top[0].score is not None and top[0].score > top[-1].score - 1e-9
    # And operators work inside the vector query too; a nested filter is refused with a way out
    ranged = ours.search(("mem",), query="jazz piano", filter={"i": {"$gte": 100, "$lt": 150}}, limit=50)
    assert len(ranged) == 50 and all(100 <= i.value["i"] < 150 for i in ranged)
    with pytest.raises(ConfigError, match="without query"):
        ours.search(("mem",), query="x", filter={"meta": {"a": 1}})


def test_index_false_and_per_put_fields(client: Client) -> None:
    store = client.store(index={"dims": 256, "embed": "hashing", "fields": ["text"]})
    store.put(("n",), "plain", {"text": "redis streams"}, index=False)
    store.put(("n",), "title", {"text": "nothing here", "title": "redis streams"}, index=["title"])
    found = store.search(("n",), query="redis streams", limit=5)
    assert [i.key for i in found] == ["title"]  # the unindexed item has no vector
    store.put(("n",), "title", {"text": "redis streams"}, index=False)  # re-put: its vector goes
    assert store.search(("n",), query="redis streams", limit=5) == []
    assert store.get(("n",), "plain") is not None


def test_items_expire_after_their_ttl_unless_read(client: Client) -> None:
    # Given a store whose items live 1.2 s (LangGraph TTLs are minutes) and refresh on read
    store = client.store(ttl={"default_ttl": 0.02, "refresh_on_read": True})
    store.put(("t",), "read", {"v": 1})
    store.put(("t",), "unread", {"v": 2})
    store.put(("t",), "forever", {"v": 3}, ttl=None)
    for _ in range(5):
        time.sleep(0.4)
        assert store.get(("t",), "read") is not None
    # Then the item nobody read is gone, the one read is alive, the one without TTL stays
    assert store.get(("t",), "unread", refresh_ttl=False) is None
    assert {i.key for i in store.search(("t",))} == {"read", "forever"}
    time.sleep(1.5)
    assert {i.key for i in store.search(("t",), refresh_ttl=False)} == {"forever"}


def test_ten_thousand_items_in_a_thousand_namespaces_are_listed_without_keys(
    client: Client, settings: Settings
) -> None:
    store = client.store()
    scans_before = _scans(client)  # the server is shared: other tests' clears may have scanned
    ops = [PutOp(("tenant", f"t{i // 10:04d}"), f"k{i}", {"i": i}) for i in range(10_000)]
    store.batch(ops)
    listed = store.list_namespaces(prefix=("tenant",), limit=2000)
    assert listed == [("tenant", f"t{n:04d}") for n in range(1000)]
    assert store.list_namespaces(prefix=("tenant",), limit=10, offset=995) == [
        ("tenant", f"t{n:04d}") for n in range(995, 1000)
    ]
    assert len(store.search(("tenant", "t0007"), limit=100)) == 10
    assert store.search(("tenant",), filter={"i": 4321})[0].key == "k4321"
    # no KEYS or SCAN was needed: the app user of deploy/redis/users.acl has neither
    assert _scans(client) == scans_before


def _scans(client: Client) -> int:
    info = client.redis.info("commandstats")
    return sum(info.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("keys", "scan"))


def test_refusals_say_what_to_do(client: Client) -> None:
    with pytest.raises(ConfigError, match="dims"):
        client.store(index={"embed": "hashing"})  # type: ignore[typeddict-item]
    with pytest.raises(ConfigError, match="no embedder named"):
        client.store(index={"dims": 8, "embed": "nope"})
    store = client.store()
    with pytest.raises(ConfigError, match="JSON"):
        store.put(("a",), "k", {"x": float("nan")})
    with pytest.raises(InvalidArgument, match="unknown store operation"):
        store.batch([("not", "an op")])  # type: ignore[list-item]


def test_an_agent_remembers_across_threads_through_the_store(client: Client) -> None:
    # Given a graph whose node writes a user's facts to the store and reads them back by meaning
    def remember(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict[str, Any]:
        user = config["configurable"]["user_id"]
        text = str(state["messages"][-1].content)
        if text.startswith("remember "):
            store.put(("memories", user), f"m{len(text)}", {"text": text.removeprefix("remember ")})
            return {"messages": [AIMessage("noted")]}
        hits = store.search(("memories", user), query=text, limit=1)
        return {"messages": [AIMessage(hits[0].value["text"] if hits else "I know nothing")]}

    builder = StateGraph(MessagesState)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    store = client.store(index={"dims": 256, "embed": "hashing"})
    graph = builder.compile(checkpointer=client.checkpointer(), store=store)
    ada = {"configurable": {"thread_id": "t1", "user_id": "ada"}}
    graph.invoke({"messages": [HumanMessage("remember my cat is called Redis")]}, ada)
    graph.invoke({"messages": [HumanMessage("remember I bake sourdough")]}, ada)
    # When another thread of the same user asks, Then the memory is found by meaning
    other = {"configurable": {"thread_id": "t2", "user_id": "ada"}}
    answer = graph.invoke({"messages": [HumanMessage("what is my cat called?")]}, other)
    assert answer["messages"][-1].content == "my cat is called Redis"
    # and another user's thread knows nothing of it
    bob = {"configurable": {"thread_id": "t3", "user_id": "bob"}}
    assert graph.invoke({"messages": [HumanMessage("what is my cat called?")]}, bob)["messages"][
        -1
    ].content == ("I know nothing")


@pytest.mark.cluster
def test_a_cluster_answers_as_a_single_server(cluster: Any, redis8: Any, namespace: str) -> None:
    answers = []
    for url in (redis8.url, cluster.url):
        c = Client(fast_settings(url, namespace))
        if not c.capabilities.vector_sets:
            pytest.skip("the cluster's Redis has no Vector Sets")
        with ThreadWorker(c.settings):
            store = c.store(index={"dims": 256, "embed": "hashing", "fields": ["text"]})
            store.batch(
                [
                    PutOp(("c", f"n{i % 7}"), f"k{i}", {"text": f"{TOPICS[i % 5]} {i}", "even": i % 2 == 0})
                    for i in range(140)
                ]
            )
            store.delete(("c", "n1"), "k1")  # deletes, and a re-put over a deleted key
            store.delete(("c", "n2"), "k2")
            store.put(("c", "n2"), "k2", {"text": "put again", "even": True})
            answers.append(
                (
                    [
                        (i.namespace, i.key)
                        for i in store.search(("c",), query="jazz piano", filter={"even": True}, limit=8)
                    ],
                    sorted(keys(store.search(("c",), filter={"even": False}, limit=200))),
                    store.list_namespaces(prefix=("c",)),
                    store.get(("c", "n3"), "k3"),
                    store.get(("c", "n1"), "k1"),
                    store.get(("c", "n2"), "k2"),
                )
            )
        c.close()
    assert answers[0][:3] == answers[1][:3]
    for mine, theirs in zip(answers[0][3:], answers[1][3:], strict=True):
        assert (mine and mine.value) == (theirs and theirs.value)
    single = answers[0]
    assert single[3] is not None and single[4] is None and single[5] is not None
    assert single[5].value == {"text": "put again", "even": True}
    assert len(single[0]) == 8 and len(single[1]) == 69


def test_the_readme_store_example_runs(client: Client) -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = text.index("**Long-term memory**")
    code = re.findall(r"```python\n(.*?)```", text[start:], flags=re.S)[0]
    scope: dict[str, Any] = {"client": client}
    exec(compile(code, "README.md", "exec"), scope)
    assert [h.key for h in scope["hits"]] == ["cat"]

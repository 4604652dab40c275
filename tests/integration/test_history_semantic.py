"""Semantic recall over conversations with the deterministic hashing embedder: `relevant`, the
memory retriever, and vectors following trims, clears, deletes and expiry (RediSearch and Vector Sets)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from sluice.facade.client import Client
from sluice.stores.history_vectors import index_name
from sluice.transport.runner import Runner, drive
from sluice.vectors.manager import index_info
from sluice_workers.handlers.history import HistoryHandler
from support.settings import fast_settings
from support.workers import ThreadWorker

TRIP = [
    HumanMessage("I am planning a hiking trip to the Alps in July"),
    AIMessage("Great! Pack sturdy boots, a rain jacket and sunscreen."),
    HumanMessage("My sister is allergic to peanuts, remember that for restaurants"),
    AIMessage("Noted: I will suggest peanut free restaurants."),
    HumanMessage("What is the capital of Australia?"),
    AIMessage("Canberra is the capital of Australia."),
]


def documents(client: Client) -> int:
    runner = Runner(client.redis)
    info = drive(index_info(client.keys, index_name("hashing"), [""]), runner)
    return int(info["documents"]) if info else 0


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(c.settings):
        yield c
    c.close()


def test_relevant_recalls_the_closest_past_messages_of_its_own_session(client: Client) -> None:
    # Given two semantic sessions with overlapping topics
    mine = client.chat_history("trip", semantic=True)
    other = client.chat_history("other:1 {x}", embedder="hashing")  # odd characters on purpose
    mine.add_messages(TRIP)
    other.add_messages([HumanMessage("peanuts allergy restaurants list for my sister")])
    # When this session is asked about an earlier topic
    found = mine.relevant_with_scores("allergic to peanuts restaurants", k=2)
    # Then its own matching messages come first, nearest first, as full messages
    assert [m.content for m, _ in found] == [TRIP[2].content, TRIP[3].content]
    assert found[0][1] <= found[1][1]
    assert found[0][0].model_dump() == TRIP[2].model_dump()
    assert [m.content for m in mine.relevant("capital of Australia", k=1)] == [TRIP[4].content]
    assert mine.relevant("Alps boots", k=1, distance_threshold=0.01) == []


def test_messages_without_text_are_kept_but_not_indexed(client: Client) -> None:
    history = client.chat_history("tools", semantic=True)
    history.add_messages(
        [
            AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c1"}]),
            ToolMessage("weather is sunny", tool_call_id="c1"),
        ]
    )
    assert len(history.messages) == 2
    assert [m.type for m in history.relevant("sunny weather", k=3)] == ["tool"]
    assert documents(client) == 1


def test_trimmed_cleared_and_deleted_messages_are_never_recalled_and_lose_their_vectors(
    client: Client,
) -> None:
    # Given a semantic session that keeps 3 messages
    history = client.chat_history("trim", semantic=True, max_messages=3)
    history.add_messages(TRIP)
    history.flush()
    # Then only the kept ones have vectors and can be recalled
    assert documents(client) == 3
    recalled = history.relevant("hiking trip Alps", k=3)
    assert {m.content for m in recalled} == {t.content for t in TRIP[3:]}
    # When the session is cleared, written again, then deleted
    history.clear()
    history.add_messages([HumanMessage("a brand new topic about sailing boats")])
    history.flush()
    assert documents(client) == 1
    assert [m.content for m in history.relevant("sailing", k=5)] == ["a brand new topic about sailing boats"]
    history.delete()
    history.flush()
    # Then nothing is left to recall, and no vector either
    assert history.relevant("sailing", k=5) == []
    assert documents(client) == 0


def test_the_memory_retriever_searches_one_session_or_all(client: Client) -> None:
    # Given three users' sessions
    said = [
        ("u1", "my favourite colour is green"),
        ("u2", "my favourite colour is blue"),
        ("u3", "I like jazz music"),
    ]
    histories = [client.chat_history(user, semantic=True) for user, _ in said]
    for history, (_, text) in zip(histories, said, strict=True):
        history.add_messages([HumanMessage(text)])
    for history in histories:
        history.flush()  # a retriever reads what is applied; it does not wait for others' appends
    # When a retriever over all sessions and one over u2 are asked
    everyone = client.memory_retriever(k=2).invoke("favourite colour")
    just_u2 = client.memory_retriever(session_id="u2", k=2).invoke("favourite colour")
    # Then documents carry the message text and where it came from
    assert {d.metadata["session_id"] for d in everyone} == {"u1", "u2"}
    assert [(d.page_content, d.metadata["session_id"], d.metadata["type"]) for d in just_u2] == [
        ("my favourite colour is blue", "u2", "human")
    ]
    assert 0 <= just_u2[0].metadata["distance"] < 1


async def test_asyncio_recall(client: Client) -> None:
    history = client.chat_history("async", semantic=True)
    await history.aadd_messages(TRIP[:2])
    assert [m.content for m in await history.arelevant("boots rain jacket", k=1)] == [TRIP[1].content]
    docs = await client.memory_retriever(session_id=["async", "nobody"], k=1).ainvoke("hiking trip")
    assert [d.page_content for d in docs] == [TRIP[0].content]
    await client.aclose()


def test_an_expired_session_loses_its_vectors_in_the_sweep(client: Client) -> None:
    # Given a semantic session that expired
    history = client.chat_history("brief", semantic=True, ttl=0.3)
    history.add_messages(TRIP[:2])
    history.flush()
    assert documents(client) == 2
    time.sleep(0.5)
    assert history.relevant("hiking", k=2) == []  # recall checks the conversation: gone
    # When a worker sweeps the session index
    handler = HistoryHandler.build(client.redis, client.settings, cluster=False)
    assert handler.sweep() == 1
    # Then the vectors are gone too
    assert documents(client) == 0


def test_recall_on_vector_sets_when_redisearch_is_absent(redis_factory: Any, namespace: str) -> None:
    # Given Redis 8 without modules (Vector Sets only)
    server = redis_factory.redis(8)
    client = Client(fast_settings(server.url, namespace))
    with ThreadWorker(client.settings):
        history = client.chat_history("vs", semantic=True, max_messages=4)
        history.add_messages(TRIP)
        # Then recall works and follows trimming
        assert [m.content for m in history.relevant("capital of Australia", k=1)] == [TRIP[4].content]
        assert all(m.content != TRIP[0].content for m in history.relevant("hiking trip Alps", k=4))
    client.close()


def test_sessions_with_odd_ids_are_recalled_by_their_own_filter(client: Client) -> None:
    odd = ["user:7 {x}", 'quote"d', "ünï-code", "tag|pipe,comma"]
    histories = [client.chat_history(s, semantic=True) for s in odd]
    for s, h in zip(odd, histories, strict=True):
        h.add_messages([HumanMessage(f"the secret word of this session is {s}")])
    for h in histories:
        h.flush()
    for s, h in zip(odd, histories, strict=True):
        assert [m.content for m in h.relevant("secret word", k=5)] == [
            f"the secret word of this session is {s}"
        ]
    docs = client.memory_retriever(session_id=odd[:2], k=5).invoke("secret word")
    assert sorted(d.metadata["session_id"] for d in docs) == sorted(odd[:2])

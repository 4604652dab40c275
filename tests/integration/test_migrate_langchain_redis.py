"""`sluice migrate --from langchain-redis`: data written by the real langchain-redis classes,
migrated by workers, read back through the drop-ins with the same answers; the source keys are
compared (DUMP of each) before and after. Every test uses its own prefixes and index names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_redis import RedisCache as PeerCache
from langchain_redis import RedisChatMessageHistory as PeerHistory
from langchain_redis import RedisSemanticCache as PeerSemanticCache
from langchain_redis import RedisVectorStore as PeerStore

from sluice.compat import clients
from sluice.compat.langchain_redis import (
    RedisCache,
    RedisChatMessageHistory,
    RedisSemanticCache,
    RedisVectorStore,
)
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from sluice.vectors import Num, Tag
from support.peers import migrate, sluice_fixture, snapshot, source_fixture  # noqa: F401

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::UserWarning"
)

DOCS = [
    ("Redis streams carry the jobs to the workers", {"topic": "queue", "year": 2021}),
    ("The vector index answers nearest neighbour queries", {"topic": "search", "year": 2022}),
    ("A semantic cache serves similar prompts", {"topic": "cache", "year": 2023}),
    ("Chat history keeps every message in order", {"topic": "memory", "year": 2020}),
    ("Workers acknowledge a job only after its writes", {"topic": "queue", "year": 2024}),
    ("Embeddings are cached by text and embedder", {"topic": "search", "year": 2023}),
]
QUERIES = [
    "redis streams jobs",
    "nearest neighbour vector",
    "similar prompts cache",
    "message order",
    "embedder",
]


@pytest.fixture(autouse=True)
def _shared_clients() -> Iterator[None]:
    yield
    clients.close_all()


def test_exact_cache(sluice: Client, source: redis.Redis, redis8: Any, namespace: str) -> None:
    # Given answers cached by langchain-redis under a prefix of this test
    prefix, llm = f"{namespace}-lc", f"fake-llm-{namespace}"
    peer = PeerCache(redis_client=source, prefix=prefix, ttl=3600)
    tool = AIMessage("", id="run-1", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "call_1"}])
    entries = {
        "first prompt": [Generation(text="one")],
        "second prompt": [ChatGeneration(message=tool)],
        "third prompt": [Generation(text="a"), Generation(text="b")],
    }
    for prompt, gens in entries.items():
        peer.update(prompt, llm, gens)
    before = snapshot(source, f"{prefix}:*")
    # When they are migrated
    assert migrate("--from", "langchain-redis", "--what", "cache", "--source-prefix", prefix) == 0
    # Then the drop-in (same prefix) answers as the peer does
    ours = RedisCache(redis_url=redis8.url, prefix=prefix, namespace=namespace)
    for prompt, gens in entries.items():
        assert ours.lookup(prompt, llm) == peer.lookup(prompt, llm) == gens
    assert ours.lookup("first prompt", "another model") is None
    assert snapshot(source, f"{prefix}:*") == before
    peer.clear()


def test_semantic_cache(sluice: Client, source: redis.Redis, redis8: Any, namespace: str) -> None:
    # Given langchain-redis's semantic cache (redisvl underneath) under a name of this test
    name, llm = f"{namespace}-sem", f"fake-llm-{namespace}"
    peer = PeerSemanticCache(HashingEmbeddings(), redis_client=source, name=name, distance_threshold=0.2)
    stored = {
        "How do I reset my password?": [Generation(text="Use the reset link.")],
        "What is the capital of France?": [ChatGeneration(message=AIMessage("Paris", id="run-2"))],
    }
    for prompt, gens in stored.items():
        peer.update(prompt, llm, gens)
    before = snapshot(source, f"{name}:*")
    try:
        # When it is migrated
        assert migrate("--from", "langchain-redis", "--what", "semantic-cache", "--index", name) == 0
        # Then the drop-in with the same name gives the same hits and misses
        ours = RedisSemanticCache(HashingEmbeddings(), redis_url=redis8.url, name=name, namespace=namespace)
        for query in [*stored, "how do i reset my password", "Bake a cake"]:
            assert ours.lookup(query, llm) == peer.lookup(query, llm), query
        assert ours.lookup("how do i reset my password", llm) == stored["How do I reset my password?"]
        assert ours.lookup("How do I reset my password?", "another model") is None
        assert snapshot(source, f"{name}:*") == before
    finally:
        peer.cache.delete()


def test_vectors(sluice: Client, source: redis.Redis, redis8: Any, namespace: str) -> None:
    # Given documents in langchain-redis's vector store, with filterable metadata
    name = f"{namespace}-docs"
    schema = [{"name": "topic", "type": "tag"}, {"name": "year", "type": "numeric"}]
    emb = HashingEmbeddings()
    peer = PeerStore.from_texts(
        [t for t, _ in DOCS], emb, metadatas=[m for _, m in DOCS], index_name=name,
        redis_client=source, metadata_schema=schema, keys=[f"d{i}" for i in range(len(DOCS))],
    )  # fmt: skip
    before = snapshot(source, f"{name}:*")
    try:
        # When the index is migrated
        assert migrate("--from", "langchain-redis", "--what", "vectors", "--index", name) == 0
        # Then the drop-in store gives the same top-k, ids and metadata
        ours = RedisVectorStore.from_existing_index(name, emb, redis_url=redis8.url, namespace=namespace)
        for query in QUERIES:
            theirs, found = peer.similarity_search(query, k=3), ours.similarity_search(query, k=3)
            assert [(d.page_content, d.metadata) for d in found] == [
                (d.page_content, d.metadata) for d in theirs
            ]
        assert [d.page_content for d in ours.get_by_ids(["d1", f"{name}:d2"])] == [DOCS[1][0], DOCS[2][0]]
        [doc] = ours.similarity_search(
            "vector", k=1, filter=(Tag("topic") == "search") & (Num("year") < 2023)
        )
        assert doc.page_content == DOCS[1][0]
        assert snapshot(source, f"{name}:*") == before
    finally:
        peer.index.delete(drop=True)


def conversation() -> list[Any]:
    openai_call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
    }
    return [
        SystemMessage("Be brief."),
        HumanMessage("What is the weather in Oslo?"),
        AIMessage("", additional_kwargs={"tool_calls": [openai_call]}),
        ToolMessage("sunny, 21C", tool_call_id="call_9"),
        AIMessage("It is sunny in Oslo."),
    ]


def test_history(sluice: Client, source: redis.Redis, redis8: Any, namespace: str) -> None:
    # Given two conversations in langchain-redis's history (a prefix and an index of this test)
    prefix, index = f"{namespace}:chat:", f"{namespace}-chat-idx"
    peers = {
        s: PeerHistory(s, redis_client=source, key_prefix=prefix, index_name=index, ttl=3600)
        for s in ("alice", "bob")
    }
    for session, peer in peers.items():
        peer.add_messages(conversation())
        peer.add_message(HumanMessage(f"thanks, {session}"))
    before = snapshot(source, f"{prefix}*")
    try:
        # When the history is migrated
        assert migrate("--from", "langchain-redis", "--what", "history", "--index", index) == 0
        # Then the drop-in history holds what the peer reads back, in order, tool calls intact
        for session, peer in peers.items():
            ours = RedisChatMessageHistory(
                session, redis_url=redis8.url, key_prefix=prefix, namespace=namespace
            )
            theirs = peer.messages
            assert ours.messages == theirs
            assert len(theirs) == 6 and theirs[-1].content == f"thanks, {session}"
            assert ours.messages[2].tool_calls == [
                {"name": "weather", "args": {"city": "Oslo"}, "id": "call_9", "type": "tool_call"}
            ]
            assert ours.messages[3].tool_call_id == "call_9"
            assert 0 < sluice.redis.pttl(sluice.keys.history(ours.session_id)) <= 3_600_000
        assert snapshot(source, f"{prefix}*") == before
    finally:
        peers["alice"].delete()


def test_raw_documents_are_what_was_read(source: redis.Redis, namespace: str) -> None:
    # The layout the reader relies on, as langchain-redis 0.2.6 writes it (a guard for upgrades)
    peer = PeerHistory("s", redis_client=source, key_prefix=f"{namespace}:c:", index_name=f"{namespace}-c")
    try:
        peer.add_message(HumanMessage("hi"))
        [key] = list(source.scan_iter(f"{namespace}:c:s:*"))
        doc = source.json().get(key)
        assert {"type", "data", "session_id", "timestamp", "message_id"} <= set(doc)
    finally:
        peer.delete()

"""`sluice migrate --from langchain-community`: data written by the real langchain-community classes,
migrated by workers, read back through sluice with the same answers. The source keys are compared
(DUMP of each) before and after: the migration never writes them.

The peers write synchronously into the shared Redis 8: every test uses its own index names, key
prefixes, session ids and model strings (from `namespace`), never FLUSHALL. langchain-community's
exact cache keys are bare md5 digests, so that test runs in database 9 (nothing else uses it) and
deletes its keys at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation

from sluice.compat import clients
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from sluice.migrate.legacy import COMMUNITY_MARKER, community_digest
from sluice.vectors import Num, Tag, Text
from support.peers import enable_community_vectors, migrate, sluice_fixture, snapshot, source_fixture  # noqa: F401
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::UserWarning"
)
enable_community_vectors()

from langchain_community.cache import RedisCache as PeerCache  # noqa: E402
from langchain_community.cache import RedisSemanticCache as PeerSemanticCache  # noqa: E402
from langchain_community.chat_message_histories import RedisChatMessageHistory as PeerHistory  # noqa: E402
from langchain_community.vectorstores.redis import Redis as PeerRedis  # noqa: E402

from sluice.compat.community import Redis, RedisCache, RedisChatMessageHistory, RedisSemanticCache  # noqa: E402

DOCS = [
    (
        "Redis streams carry the jobs to the workers",
        {"topic": "queue", "year": 2021, "tags": ["redis", "streams"]},
    ),
    (
        "The vector index answers nearest neighbour queries",
        {"topic": "search", "year": 2022, "tags": ["vectors"]},
    ),
    ("A semantic cache serves similar prompts", {"topic": "cache", "year": 2023, "tags": ["cache", "llm"]}),
    ("Chat history keeps every message in order", {"topic": "memory", "year": 2020, "tags": ["history"]}),
    (
        "Workers acknowledge a job only after its writes",
        {"topic": "queue", "year": 2024, "tags": ["streams"]},
    ),
    (
        "Embeddings are cached by text and embedder",
        {"topic": "search", "year": 2023, "tags": ["vectors", "cache"]},
    ),
    ("A note without a year or tags", {"topic": "misc", "year": None, "tags": []}),  # stored as ""
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


def generations(tag: str) -> list[list[Generation]]:
    tool = AIMessage(
        f"calling a tool {tag}",
        id="run-7",
        tool_calls=[{"name": "lookup", "args": {"q": tag}, "id": "call_1"}],
        usage_metadata={"input_tokens": 3, "output_tokens": 5, "total_tokens": 8},
    )
    return [
        [Generation(text=f"plain {tag}")],
        [ChatGeneration(message=tool)],
        [Generation(text="a"), Generation(text="b")],
    ]


def test_exact_cache(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given answers cached by langchain-community's RedisCache (database 9: its keys have no prefix)
    url = f"{redis8.url}/9"
    db = redis.Redis.from_url(url)
    peer = PeerCache(redis_=db, ttl=3600)
    llm = f"fake-llm-{namespace}"
    entries = {f"prompt {i} {namespace}": gens for i, gens in enumerate(generations(namespace))}
    for prompt, gens in entries.items():
        peer.update(prompt, llm, gens)
    before = snapshot(db, besides=f"{namespace}:")
    monkeypatch.setenv("SLUICE_REDIS__URL", url)
    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    client = Client(fast_settings(url, namespace))
    try:
        with ThreadWorker(client.settings):
            # When they are migrated
            assert migrate("--from", "langchain-community", "--what", "cache") == 0
            # Then the drop-in cache answers every prompt as the peer does, TTL included
            ours = RedisCache(redis_=db, namespace=namespace)
            for prompt, written in entries.items():
                found, theirs = ours.lookup(prompt, llm), peer.lookup(prompt, llm)
                assert found == written
                # (the peer returns a hash's fields in Redis's iteration order; sluice in written order)
                assert theirs is not None and sorted(found, key=str) == sorted(theirs, key=str)
            assert ours.lookup("never asked", llm) is None
            # the migrated entries keep the time they had left
            for prompt in entries:
                key = client.keys.cache_entry("default", COMMUNITY_MARKER, community_digest(prompt, llm))
                assert 0 < db.pttl(key) <= 3_600_000
            # and a hit turned each into an ordinary sluice entry, which any sluice cache now serves
            plain = client.llm_cache()
            wait_until(lambda: all(plain.lookup(p, llm) == entries[p] for p in entries), 10, "promotion")
            # and the source keys are exactly as they were
            assert snapshot(db, besides=f"{namespace}:") == before
    finally:
        db.delete(*before, *db.scan_iter(f"{namespace}:*"))
        client.close()


def test_semantic_cache(
    sluice: Client, source: redis.Redis, redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a semantic cache filled by langchain-community (one index per model)
    llm = f"fake-llm-{namespace}"
    peer = PeerSemanticCache(redis_url=redis8.url, embedding=HashingEmbeddings(), score_threshold=0.2)
    stored = {
        "How do I reset my password?": [Generation(text="Use the reset link.")],
        "What is the capital of France?": [ChatGeneration(message=AIMessage("Paris", id="run-2"))],
        "Which port does Redis listen on?": [Generation(text="6379")],
    }
    for prompt, gens in stored.items():
        peer.update(prompt, llm, gens)
    index = peer._index_name(llm)
    before = snapshot(source, f"doc:{index}*")
    try:
        # When it is migrated (its vectors copied: same embedder, size and metric)
        assert migrate("--from", "langchain-community", "--what", "semantic-cache", "--index", index) == 0
        out = capsys.readouterr().out
        assert "vectors copied, not re-embedded" in out
        assert "cache-fill: 3 jobs, 3 entries applied, 0 failed" in out
        # Then the drop-in answers the same prompts, near-duplicates and misses as the peer
        ours = RedisSemanticCache(redis_url=redis8.url, embedding=HashingEmbeddings(), namespace=namespace)
        queries = [*stored, "how do i reset my password", "what is the capital of france", "Bake a cake"]
        for query in queries:
            assert ours.lookup(query, llm) == peer.lookup(query, llm), query
        assert ours.lookup("Bake a cake", llm) is None
        assert ours.lookup("how do i reset my password", llm) == stored["How do I reset my password?"]
        assert snapshot(source, f"doc:{index}*") == before
    finally:
        peer.clear(llm_string=llm)


def test_vectors(
    sluice: Client, source: redis.Redis, redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given documents in langchain-community's Redis vector store
    name = f"{namespace}-docs"
    emb = HashingEmbeddings()
    peer = PeerRedis.from_texts(
        [t for t, _ in DOCS], emb, metadatas=[m for _, m in DOCS], index_name=name, redis_url=redis8.url
    )
    before = snapshot(source, f"doc:{name}*")
    try:
        # When the index is migrated
        assert migrate("--from", "langchain-community", "--what", "vectors", "--index", name) == 0
        out = capsys.readouterr().out
        assert "vectors copied, not re-embedded" in out
        assert "7 documents applied, 0 failed" in out.replace("index: ", "")
        # Then the drop-in store gives the same top-k for the same queries, with the peer's ids
        ours = Redis.from_existing_index(emb, name, redis_url=redis8.url, namespace=namespace)
        for query in QUERIES:
            theirs = peer.similarity_search(query, k=3)
            found = ours.similarity_search(query, k=3)
            assert [d.page_content for d in found] == [d.page_content for d in theirs], query
            assert [d.metadata["id"] for d in found] == [d.metadata["id"] for d in theirs]
        # with the metadata typed again (numbers, tag lists), and filters on it
        where = (Text("topic") % "search") & (Num("year") == 2022) & (Tag("tags") == "vectors")
        [doc] = ours.similarity_search("vector index", k=1, filter=where)
        assert doc.metadata.pop("id").startswith(f"doc:{name}:")
        assert doc.metadata == {"topic": "search", "year": 2022, "tags": ["vectors"]}
        # The note whose empty year the peer stored as "" (so RediSearch left it out of the peer's
        # index) is migrated, the empty numeric and tag values left out
        [key] = [k for k in source.scan_iter(f"doc:{name}:*") if source.hget(k, "topic") == b"misc"]
        [note] = ours.get_by_ids([key.decode()])
        assert (note.page_content, note.metadata) == (DOCS[-1][0], {"topic": "misc"})
        assert snapshot(source, f"doc:{name}*") == before
    finally:
        PeerRedis.drop_index(name, True, redis_url=redis8.url)


def conversation(tag: str) -> list[Any]:
    return [
        SystemMessage("Be brief."),
        HumanMessage(f"What is the weather in {tag}?", id="m1"),
        AIMessage(
            "",
            id="m2",
            tool_calls=[{"name": "weather", "args": {"city": tag}, "id": "call_9"}],
            usage_metadata={"input_tokens": 4, "output_tokens": 6, "total_tokens": 10},
        ),
        ToolMessage("sunny, 21C", tool_call_id="call_9", id="m3"),
        AIMessage(f"It is sunny in {tag}.", id="m4"),
    ]


def test_history(sluice: Client, source: redis.Redis, redis8: Any, namespace: str) -> None:
    # Given conversations in langchain-community's history: the default key prefix, and another
    sessions = {f"{namespace}-alice": "message_store:", f"{namespace}-bob": f"{namespace}:chat:"}
    peers = {s: PeerHistory(s, url=redis8.url, key_prefix=p, ttl=3600) for s, p in sessions.items()}
    for session, peer in peers.items():
        peer.add_messages(conversation(session))
    patterns = [f"message_store:{namespace}-*", f"{namespace}:chat:*"]
    before = [snapshot(source, p) for p in patterns]
    # When each layout is migrated
    assert (
        migrate(
            "--from",
            "langchain-community",
            "--what",
            "history",
            "--source-prefix",
            f"message_store:{namespace}-",
        )
        == 0
    )
    assert (
        migrate("--from", "langchain-community", "--what", "history", "--source-prefix", f"{namespace}:chat:")
        == 0
    )
    # Then the drop-in history has the same messages in the same order, tool calls intact
    for session, prefix in sessions.items():
        ours = RedisChatMessageHistory(session, url=redis8.url, key_prefix=prefix, namespace=namespace)
        assert ours.messages == peers[session].messages == conversation(session)
        assert ours.messages[2].tool_calls[0]["id"] == "call_9"
        assert 0 < sluice.redis.pttl(sluice.keys.history(ours.session_id)) <= 3_600_000
    assert [snapshot(source, p) for p in patterns] == before

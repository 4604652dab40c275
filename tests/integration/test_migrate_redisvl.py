"""`sluice migrate --from redisvl`: a `SemanticCache`, `SearchIndex`es (hash and JSON storage) and a
`MessageHistory` written by the real redisvl, migrated, and read back through sluice with the same
answers; the source keys are compared (DUMP of each) before and after.
"""

from __future__ import annotations

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import Generation
from redisvl.extensions.cache.llm import SemanticCache as PeerSemanticCache
from redisvl.extensions.message_history import MessageHistory
from redisvl.index import SearchIndex
from redisvl.query import VectorQuery
from redisvl.redis.utils import array_to_buffer
from redisvl.utils.vectorize import CustomTextVectorizer

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from support.peers import migrate, sluice_fixture, snapshot, source_fixture  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

EMB = HashingEmbeddings()
DOCS = [
    ("Redis streams carry the jobs to the workers", "queue", 2021),
    ("The vector index answers nearest neighbour queries", "search", 2022),
    ("A semantic cache serves similar prompts", "cache", 2023),
    ("Chat history keeps every message in order", "memory", 2020),
    ("Workers acknowledge a job only after its writes", "queue", 2024),
    ("Embeddings are cached by text and embedder", "search", 2023),
]
QUERIES = [
    "redis streams jobs",
    "nearest neighbour vector",
    "similar prompts cache",
    "message order",
    "embedder",
]


def test_semantic_cache(sluice: Client, source: redis.Redis, namespace: str) -> None:
    # Given redisvl's own SemanticCache (plain text responses, no model string)
    name = f"{namespace}-vl"
    vectorizer = CustomTextVectorizer(embed=EMB.embed_query, embed_many=EMB.embed_documents)
    peer = PeerSemanticCache(name=name, redis_client=source, vectorizer=vectorizer, distance_threshold=0.2)
    stored = {"How do I reset my password?": "Use the reset link.", "Which port does Redis use?": "6379"}
    for prompt, response in stored.items():
        peer.store(prompt, response, metadata={"source": "faq"})
    before = snapshot(source, f"{name}:*")
    try:
        # When it is migrated (responses become one generation each, under the empty model string)
        assert (
            migrate("--from", "redisvl", "--what", "semantic-cache", "--index", name, "--target", "faq") == 0
        )
        # Then sluice's semantic cache serves the same prompts, near-duplicates and misses
        ours = sluice.semantic_cache(EMB, embedder="hashing", name="faq")
        for query in [*stored, "how do i reset my password", "Bake a cake"]:
            hits = peer.check(query)
            expected = [Generation(text=hits[0]["response"])] if hits else None
            assert ours.lookup(query, "") == expected, query
        assert snapshot(source, f"{name}:*") == before
    finally:
        peer.delete()


@pytest.mark.parametrize("storage", ["hash", "json"])
def test_vectors(sluice: Client, source: redis.Redis, namespace: str, storage: str) -> None:
    # Given a redisvl SearchIndex of this test's own
    name = f"{namespace}-{storage}"
    index = SearchIndex.from_dict(
        {
            "index": {"name": name, "prefix": name, "storage_type": storage},
            "fields": [
                {"name": "id", "type": "tag"},
                {"name": "body", "type": "text"},
                {"name": "topic", "type": "tag"},
                {"name": "year", "type": "numeric"},
                {"name": "embedding", "type": "vector",
                 "attrs": {"dims": 256, "distance_metric": "cosine", "algorithm": "flat", "datatype": "float32"}},
            ],
        },
        redis_client=source,
    )  # fmt: skip
    index.create(overwrite=True)
    vectors = EMB.embed_documents([t for t, _, _ in DOCS])
    rows = [
        {"id": f"d{i}", "body": text, "topic": topic, "year": year,
         "embedding": vectors[i] if storage == "json" else array_to_buffer(vectors[i], "float32")}
        for i, (text, topic, year) in enumerate(DOCS)
    ]  # fmt: skip
    index.load(rows, id_field="id")
    before = snapshot(source, f"{name}:*")
    try:
        # When it is migrated (its text field named on the command line)
        assert migrate("--from", "redisvl", "--what", "vectors", "--index", name, "--text-field", "body") == 0
        # Then sluice returns the same top-k for the same queries, ids and metadata kept
        ours = sluice.vectorstore(name, EMB)
        for query in QUERIES:
            q = VectorQuery(EMB.embed_query(query), "embedding", return_fields=["body"], num_results=3)
            theirs = [r["body"] for r in index.query(q)]
            assert [d.page_content for d in ours.similarity_search(query, k=3)] == theirs, query
        [doc] = ours.get_by_ids(["d2"])
        # (a hash keeps strings: indexed tags come back as lists, numbers as numbers; JSON keeps its types)
        tag = (lambda v: [v]) if storage == "hash" else (lambda v: v)
        assert doc.metadata == {"id": tag("d2"), "topic": tag("cache"), "year": 2023}
        assert snapshot(source, f"{name}:*") == before
    finally:
        index.delete(drop=True)


def test_history(sluice: Client, source: redis.Redis, namespace: str) -> None:
    # Given a redisvl MessageHistory with a tool round trip in two sessions
    name = f"{namespace}-vlh"
    peer = MessageHistory(name, redis_client=source)
    call = {"name": "weather", "args": {"city": "Oslo"}, "id": "call_9"}
    for session in ("alice", "bob"):
        peer.add_messages(
            [
                {"role": "user", "content": f"Weather in Oslo? ({session})"},
                {"role": "assistant", "content": "", "metadata": {"tool_calls": [call]}},
                {"role": "tool", "content": "sunny", "tool_call_id": "call_9"},
                {"role": "assistant", "content": "It is sunny."},
            ],
            session_tag=session,
        )
    before = snapshot(source, f"{name}:*")
    try:
        # When it is migrated
        assert migrate("--from", "redisvl", "--what", "history", "--index", name) == 0
        # Then each session reads back as LangChain messages, in order, the tool call intact
        for session in ("alice", "bob"):
            messages = sluice.chat_history(session).messages
            assert [m.content for m in messages] == [
                m["content"] for m in peer.get_recent(top_k=10, session_tag=session)
            ]
            human, ai, tool, last = messages
            assert isinstance(human, HumanMessage) and isinstance(last, AIMessage)
            assert isinstance(ai, AIMessage) and ai.tool_calls == [{**call, "type": "tool_call"}]
            assert isinstance(tool, ToolMessage) and tool.tool_call_id == "call_9"
        assert snapshot(source, f"{name}:*") == before
    finally:
        peer.delete()


def test_redisvl_has_no_exact_cache(sluice: Client, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate("--from", "redisvl", "--what", "cache") == 2
    assert "use --what semantic-cache" in capsys.readouterr().err.replace("migrates with", "use")

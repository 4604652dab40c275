"""A small LangChain app (LLM cache + retriever + chat history) run twice: with langchain-community's
Redis classes, then with the import swapped to `sluice.compat.community` — same code, same answers.

The app is the kind people run: a retrieval chain wrapped in `RunnableWithMessageHistory` whose
history factory builds a new `RedisChatMessageHistory` per call, a model-level `RedisCache`, and a
`Redis` vector store built with `from_texts`. The model is sluice's offline `EchoChatModel`, whose
answer digests its whole prompt: equal answers mean equal retrieved context and equal history.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import itemgetter
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from sluice.compat import clients
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.models.fake import EchoChatModel
from support.peers import enable_community_vectors
from support.settings import fast_settings
from support.workers import ThreadWorker

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::UserWarning"
)
enable_community_vectors()

KNOWLEDGE = [
    "The office opens at nine and closes at six.",
    "Parking is free for visitors in the north lot.",
    "Lunch is served in the cafeteria on the second floor.",
    "The wifi password is printed on the back of your badge.",
]
TURNS = [
    ("alice", "When does the office open?"),
    ("alice", "And where can I park?"),
    ("bob", "When does the office open?"),  # same first prompt as alice's: a cache hit
    ("alice", "Where is lunch served?"),
    ("bob", "What is the wifi password?"),
]
_MD5 = re.compile(rb"^[0-9a-f]{32}$")


def community_parts(classes: Any, url: str, tag: str) -> tuple[Any, Any, Any]:
    """Cache, retriever and history factory, written against langchain-community's names."""
    cache = classes.RedisCache(redis_=redis.Redis.from_url(url), ttl=600)
    store = classes.Redis.from_texts(KNOWLEDGE, HashingEmbeddings(), index_name=f"{tag}-kb", redis_url=url)

    def history(session_id: str) -> Any:
        return classes.RedisChatMessageHistory(session_id, url=url, key_prefix=f"{tag}:chat:")

    return cache, store.as_retriever(search_kwargs={"k": 2}), history


def langchain_redis_parts(classes: Any, url: str, tag: str) -> tuple[Any, Any, Any]:
    """The same, against langchain-redis's names, sharing one redis-py client (RESP2: langchain-redis
    0.2.6's history misreads RESP3 replies, redis-py 8's default, once its index exists)."""
    r = redis.Redis.from_url(url, protocol=2)
    cache = classes.RedisCache(redis_client=r, ttl=600, prefix=f"{tag}-cache")
    config = classes.RedisConfig(index_name=f"{tag}-kb", redis_client=r)
    store = classes.RedisVectorStore.from_texts(KNOWLEDGE, HashingEmbeddings(), config=config)

    def history(session_id: str) -> Any:
        return classes.RedisChatMessageHistory(
            session_id, redis_client=r, key_prefix=f"{tag}:chat:", index_name=f"{tag}-chat"
        )

    return cache, store.as_retriever(search_kwargs={"k": 2}), history


def run_app(parts: tuple[Any, Any, Any]) -> tuple[list[str], int]:
    """The app: a retrieval chain with history and a cached model; returns answers and model calls."""
    cache, retriever, history = parts
    model = EchoChatModel(cache=cache)

    def context(docs: list[Document]) -> str:
        return " | ".join(d.page_content for d in docs)

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from: {context}"), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    chain = (
        {
            "context": itemgetter("question") | retriever | RunnableLambda(context),
            "question": itemgetter("question"),
            "history": itemgetter("history"),
        }
        | prompt
        | model
    )
    chat = RunnableWithMessageHistory(
        chain,
        history,  # a one-argument factory: a new history object per call, as LangChain apps do
        input_messages_key="question",
        history_messages_key="history",
    )
    answers = [
        str(chat.invoke({"question": q}, {"configurable": {"session_id": s}}).content) for s, q in TURNS
    ]
    return [*answers, *(f"{len(history(s).messages)} messages" for s in ("alice", "bob"))], model.calls


@pytest.fixture
def seed_cleanup(redis8: Any, namespace: str) -> Iterator[None]:
    r = redis.Redis.from_url(redis8.url)
    md5_before = {k for k in r.scan_iter(count=1000) if _MD5.match(k)}
    yield
    from langchain_community.vectorstores.redis import Redis as PeerRedis

    PeerRedis.drop_index(f"seed{namespace}-kb", True, redis_url=redis8.url)
    r.delete(*(k for k in r.scan_iter(count=1000) if _MD5.match(k) and k not in md5_before))
    r.delete(*r.scan_iter(f"seed{namespace}:chat:*"))
    r.close()


def test_swapping_the_import_gives_the_same_answers(
    redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch, seed_cleanup: None
) -> None:
    # Given the app run with langchain-community's classes
    from langchain_community.cache import RedisCache as SeedCache
    from langchain_community.chat_message_histories import RedisChatMessageHistory as SeedHistory
    from langchain_community.vectorstores.redis import Redis as SeedRedis

    seed = SimpleNamespace(RedisCache=SeedCache, Redis=SeedRedis, RedisChatMessageHistory=SeedHistory)
    expected, seed_calls = run_app(community_parts(seed, redis8.url, f"seed{namespace}"))

    # When the import is swapped to sluice's drop-ins (the namespace from the environment) and
    # workers apply the writes
    from sluice.compat import community

    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    with ThreadWorker(fast_settings(redis8.url, namespace)):
        answers, calls = run_app(community_parts(community, redis8.url, namespace))
    clients.close_all()

    # Then every answer is the same, the cache saved the same model call, and each history is whole
    assert answers == expected
    assert calls == seed_calls == len(TURNS) - 1
    assert answers[-2:] == ["6 messages", "4 messages"]


def test_swapping_the_langchain_redis_import_gives_the_same_answers(
    redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the app run with langchain-redis's classes
    import langchain_redis as seed

    tag = f"seed{namespace}"
    parts = langchain_redis_parts(seed, redis8.url, tag)
    try:
        expected, seed_calls = run_app(parts)
    finally:
        parts[0].clear()
        parts[1].vectorstore.index.delete(drop=True)
        parts[2]("alice").delete()

    # When the import is swapped to sluice's drop-ins
    from sluice.compat import langchain_redis

    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    with ThreadWorker(fast_settings(redis8.url, namespace)):
        answers, calls = run_app(langchain_redis_parts(langchain_redis, redis8.url, namespace))
    clients.close_all()

    # Then the answers and the cache's savings are the same
    assert answers == expected
    assert calls == seed_calls == len(TURNS) - 1

"""`sluice migrate` as an operator runs it: dry runs, copy-or-re-embed decisions, re-runs, counts."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from support.peers import enable_community_vectors, migrate, sluice_fixture, snapshot, source_fixture  # noqa: F401

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::UserWarning"
)
enable_community_vectors()

from langchain_community.chat_message_histories import RedisChatMessageHistory as PeerHistory  # noqa: E402
from langchain_community.vectorstores.redis import Redis as PeerRedis  # noqa: E402

TEXTS = ["alpha beta gamma", "delta epsilon", "zeta eta theta", "iota kappa lambda"]


def stream_lengths(client: Client) -> int:
    return sum(
        client.redis.xlen(s) for kind in ("index", "history-append") for s in client.keys.streams(kind)
    )  # type: ignore[arg-type]


def test_dry_run_counts_and_enqueues_nothing(
    sluice: Client, source: redis.Redis, redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a community vector index
    name = f"{namespace}-dry"
    PeerRedis.from_texts(TEXTS, HashingEmbeddings(), index_name=name, redis_url=redis8.url)
    before = snapshot(source, f"doc:{name}*")
    try:
        # When an operator asks for a dry run
        assert (
            migrate("--from", "langchain-community", "--what", "vectors", "--index", name, "--dry-run") == 0
        )
        out = capsys.readouterr().out
        # Then it says what it found and would do, and neither enqueues nor creates anything
        assert "found: 4 documents in 4 keys, 0 keys skipped" in out
        assert f"into new vector index '{name}': 256 dims, cosine, flat, float32" in out
        assert "dry run: nothing enqueued" in out
        assert stream_lengths(sluice) == 0
        assert not sluice.redis.exists(sluice.keys.vector_meta(name))
        assert snapshot(source, f"doc:{name}*") == before
    finally:
        PeerRedis.drop_index(name, True, redis_url=redis8.url)


def test_other_vectors_are_reembedded_only_when_asked(
    sluice: Client, source: redis.Redis, redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given vectors made by another model (64 dimensions; the settings embedder "hashing" gives 256)
    name = f"{namespace}-other"
    small = HashingEmbeddings(dims=64)
    PeerRedis.from_texts(TEXTS, small, index_name=name, redis_url=redis8.url)
    before = snapshot(source, f"doc:{name}*")
    common = ("--from", "langchain-community", "--what", "vectors", "--index", name)
    try:
        # When migrated for the settings embedder without --re-embed: it says why, and does nothing
        assert migrate(*common, "--target", "big", "--embedder", "hashing") == 2
        captured = capsys.readouterr()
        assert (
            "vectors cannot be copied: embedder 'hashing' gives 256-dimensional vectors, the source holds 64"
            in captured.out
        )
        assert "4 documents would have to be re-embedded; run again with --re-embed" in captured.err
        assert stream_lengths(sluice) == 0
        assert not sluice.redis.exists(sluice.keys.vector_meta("big"))
        # When asked to re-embed: the workers embed with "hashing" into a 256-dimensional index
        assert migrate(*common, "--target", "big", "--embedder", "hashing", "--re-embed") == 0
        out = capsys.readouterr().out
        assert "4 documents re-embedded by the workers with 'hashing'" in out
        assert "4 documents applied, 0 failed" in out
        store = sluice.vectorstore("big", "hashing")
        assert store.similarity_search("delta epsilon", k=1)[0].page_content == "delta epsilon"
        # And without naming an embedder the vectors are copied as they are (the app queries with its own)
        assert migrate(*common, "--target", "small") == 0
        assert "vectors copied, not re-embedded: same size (64)" in capsys.readouterr().out
        assert (
            sluice.vectorstore("small", small).similarity_search("zeta eta", k=1)[0].page_content == TEXTS[2]
        )
        assert snapshot(source, f"doc:{name}*") == before
    finally:
        PeerRedis.drop_index(name, True, redis_url=redis8.url)


def test_a_second_run_keeps_sessions_unless_replace(
    sluice: Client, redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a community conversation, migrated once
    session = f"{namespace}-carol"
    peer = PeerHistory(session, url=redis8.url)
    peer.add_messages([HumanMessage("hi"), AIMessage("hello")])
    prefix = (
        "--from",
        "langchain-community",
        "--what",
        "history",
        "--source-prefix",
        f"message_store:{namespace}-",
    )
    try:
        assert migrate(*prefix) == 0
        # When it runs again: the session sluice has is left alone (no doubled messages)
        assert migrate(*prefix) == 0
        assert "1 conversations already in sluice were left as they are" in capsys.readouterr().out
        assert [m.content for m in sluice.chat_history(session).messages] == ["hi", "hello"]
        # and with --replace the session is replaced by the source's, once
        peer.add_message(HumanMessage("one more"))
        assert migrate(*prefix, "--replace") == 0
        assert [m.content for m in sluice.chat_history(session).messages] == ["hi", "hello", "one more"]
    finally:
        peer.clear()


def test_missing_index_is_named(sluice: Client, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate("--from", "redisvl", "--what", "vectors", "--index", "no-such-index") == 2
    assert "no RediSearch index 'no-such-index' in the source" in capsys.readouterr().err
    assert migrate("--from", "langchain-redis", "--what", "vectors") == 2
    assert "--index NAME" in capsys.readouterr().err


def test_long_conversations_go_in_ordered_jobs_within_the_limits(
    sluice: Client,
    redis8: Any,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a conversation longer than one job may carry
    monkeypatch.setenv("SLUICE_LIMITS__MAX_MESSAGES_PER_JOB", "2")
    session = f"{namespace}-long"
    peer = PeerHistory(session, url=redis8.url)
    said = [f"message {i}" for i in range(7)]
    peer.add_messages([HumanMessage(t) if i % 2 == 0 else AIMessage(t) for i, t in enumerate(said)])
    try:
        # When it is migrated
        args = (
            "--from",
            "langchain-community",
            "--what",
            "history",
            "--source-prefix",
            f"message_store:{session}",
        )
        assert migrate(*args, "--batch", "1") == 0
        # Then it went as four jobs on one partition, applied in order
        assert "history-append: 4 jobs, 7 messages applied, 0 failed" in capsys.readouterr().out
        assert [m.content for m in sluice.chat_history(session).messages] == said
    finally:
        peer.clear()


def test_chat_prompts_of_a_semantic_cache_are_reembedded_on_request(
    sluice: Client, redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a community semantic cache holding a plain prompt and a chat model's prompt (LangChain's
    # JSON of the messages, whose stored vector embeds that JSON; sluice embeds the messages' text)
    from langchain_community.cache import RedisSemanticCache as PeerSemanticCache
    from langchain_core.outputs import Generation

    from sluice.compat.community import RedisSemanticCache
    from sluice.models.prompts import cache_prompt

    llm = f"chat-{namespace}"
    peer = PeerSemanticCache(redis_url=redis8.url, embedding=HashingEmbeddings())
    chat = cache_prompt([HumanMessage("What is the capital of France?")])
    peer.update("Which port does Redis use?", llm, [Generation(text="6379")])
    peer.update(chat, llm, [Generation(text="Paris")])
    args = ("--from", "langchain-community", "--what", "semantic-cache", "--index", peer._index_name(llm))
    try:
        # When migrated without --re-embed: refused, naming why
        assert migrate(*args) == 2
        captured = capsys.readouterr()
        assert "1 entries have no usable stored vector (or a chat prompt's)" in captured.out
        assert "1 entries would have to be re-embedded" in captured.err
        # When asked: the plain prompt's vector is copied, the chat prompt embedded by the workers
        assert migrate(*args, "--re-embed") == 0
        assert "1 entries re-embedded by the workers with 'hashing'" in capsys.readouterr().out
        ours = RedisSemanticCache(redis_url=redis8.url, embedding=HashingEmbeddings(), namespace=namespace)
        assert ours.lookup(chat, llm) == peer.lookup(chat, llm) == [Generation(text="Paris")]
        assert ours.lookup("Which port does Redis use?", llm) == [Generation(text="6379")]
    finally:
        peer.clear(llm_string=llm)

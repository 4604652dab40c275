"""Every limit in `LimitSettings` is enforced at enqueue, through the facades the app uses: the call
raises `PayloadTooLarge` naming the limit's setting and the value, and nothing reaches Redis. (A
cache fill is skipped with that message as a warning instead: a cache never fails the LLM call.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation

from sluice.errors import ConfigError, PayloadTooLarge
from sluice.facade.client import Client
from sluice.jobs.models import CacheWarmPayload, HistoryAppendPayload, IndexDocument, IndexPayload
from sluice.settings import LimitSettings
from sluice.types import JOB_KINDS
from sluice.vectors import IndexSchema, MetadataField
from support.settings import fast_settings

LIMITS = LimitSettings(
    max_payload_bytes=2048,
    max_batch_jobs=5,
    max_documents_per_job=3,
    max_messages_per_job=4,
    max_metadata_bytes=64,
    max_prompt_chars=100,
)


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    settings = fast_settings(redis8.url, namespace)
    embedders = {"hashing": settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": 8}})}
    c = Client(settings.model_copy(update={"limits": LIMITS, "embedders": embedders}))
    yield c
    c.close()


def nothing_enqueued(client: Client) -> bool:
    return all(client.redis.xlen(s) == 0 for kind in JOB_KINDS for s in client.keys.streams(kind))


def refused(info: pytest.ExceptionInfo[PayloadTooLarge], setting: str, value: int, limit: int) -> None:
    message = str(info.value)
    assert setting in message, message
    assert f"is {value} but the limit is {limit}" in message, message
    assert (info.value.size, info.value.limit) == (value, limit)


def test_messages_per_job_through_chat_history(client: Client) -> None:
    history = client.chat_history("s")
    with pytest.raises(PayloadTooLarge) as info:
        history.add_messages([HumanMessage(f"m{i}") for i in range(5)])
    refused(info, "SLUICE_LIMITS__MAX_MESSAGES_PER_JOB", 5, 4)
    assert "messages in one history job" in str(info.value)
    assert nothing_enqueued(client)


async def test_messages_per_job_through_the_async_chat_history(client: Client) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        await client.chat_history("s").aadd_messages([HumanMessage(f"m{i}") for i in range(6)])
    refused(info, "SLUICE_LIMITS__MAX_MESSAGES_PER_JOB", 6, 4)
    assert nothing_enqueued(client)
    await client.aclose()


def test_payload_bytes_through_chat_history(client: Client) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        client.chat_history("s").add_messages([HumanMessage("x" * 3000)])
    assert "SLUICE_LIMITS__MAX_PAYLOAD_BYTES" in str(info.value)
    assert "encoded history-append job (bytes)" in str(info.value)
    assert info.value.size > 3000 and info.value.limit == 2048
    assert nothing_enqueued(client)


def skipped(caplog: pytest.LogCaptureFixture, setting: str, value: int, limit: int) -> None:
    """A cache fill over a limit is skipped (a cache never fails the LLM call): the warning says why."""
    message = " ".join(r.getMessage() for r in caplog.records)
    assert setting in message and f"is {value} but the limit is {limit}" in message


def test_prompt_length_through_the_llm_cache(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    cache = client.llm_cache()
    cache.update("p" * 101, "llm", [Generation(text="answer")])
    assert cache.skipped.counts["PayloadTooLarge"] == 1
    skipped(caplog, "SLUICE_LIMITS__MAX_PROMPT_CHARS", 101, 100)
    assert "prompt length (characters)" in caplog.text
    assert nothing_enqueued(client)
    cache.update("p" * 100, "llm", [Generation(text="answer")])  # at the limit: accepted
    assert not nothing_enqueued(client)


def test_prompt_length_through_the_semantic_cache(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    from sluice.embeddings.hashing import HashingEmbeddings

    cache = client.semantic_cache(HashingEmbeddings(dims=8), embedder="hashing", verify_embedder=False)
    cache.update("q" * 150, "llm", [Generation(text="answer")])
    assert cache.skipped.counts["PayloadTooLarge"] == 1
    skipped(caplog, "SLUICE_LIMITS__MAX_PROMPT_CHARS", 150, 100)
    assert nothing_enqueued(client)


def test_prompt_length_of_a_warming_job(client: Client) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        client.enqueue([CacheWarmPayload(model="fake", llm_string="l", prompts=["short", "w" * 120])])
    refused(info, "SLUICE_LIMITS__MAX_PROMPT_CHARS", 120, 100)
    assert nothing_enqueued(client)


def test_metadata_bytes_through_the_vector_store(client: Client) -> None:
    schema = IndexSchema.for_dims(8, MetadataField(name="lang", type="tag"))
    store = client.vectorstore("docs", "hashing", schema=schema)
    with pytest.raises(PayloadTooLarge) as info:
        store.add_texts(["a", "b"], [{"lang": "en"}, {"lang": "en", "note": "n" * 100}], ids=["d1", "d2"])
    assert "SLUICE_LIMITS__MAX_METADATA_BYTES" in str(info.value)
    assert "metadata of document 'd2' (bytes)" in str(info.value)
    assert info.value.limit == 64 and info.value.size > 100
    assert nothing_enqueued(client)


def test_metadata_bytes_of_a_job_enqueued_directly(client: Client) -> None:
    # The limit holds at the producer too, not only in the vector store facade
    doc = IndexDocument(id="d1", text="t", metadata={"note": "n" * 100})
    with pytest.raises(PayloadTooLarge) as info:
        client.enqueue([IndexPayload(index="docs", upserts=[doc])])
    assert "SLUICE_LIMITS__MAX_METADATA_BYTES" in str(info.value) and info.value.limit == 64
    assert nothing_enqueued(client)


def test_metadata_that_json_cannot_carry_is_refused(client: Client) -> None:
    doc = IndexDocument(id="d1", text="t", metadata={"score": float("nan")})
    with pytest.raises(ConfigError, match="NaN or infinity"):
        client.enqueue([IndexPayload(index="docs", upserts=[doc])])
    assert nothing_enqueued(client)


def test_documents_per_job(client: Client) -> None:
    # The vector store splits documents into jobs within the limit ...
    schema = IndexSchema.for_dims(8)
    store = client.vectorstore("docs", "hashing", schema=schema)
    store.add_texts([f"t{i}" for i in range(5)], ids=[f"d{i}" for i in range(5)])
    # ... and a job built by hand that exceeds it is refused
    docs = [IndexDocument(id=f"x{i}", text="t") for i in range(4)]
    before = sum(client.redis.xlen(s) for s in client.keys.streams("index"))
    with pytest.raises(PayloadTooLarge) as info:
        client.enqueue([IndexPayload(index="docs", upserts=docs[:2], deletes=["a", "b"])])
    refused(info, "SLUICE_LIMITS__MAX_DOCUMENTS_PER_JOB", 4, 3)
    assert sum(client.redis.xlen(s) for s in client.keys.streams("index")) == before


def test_jobs_per_enqueue_call(client: Client) -> None:
    jobs = [HistoryAppendPayload(session_id=f"s{i}", messages=[]) for i in range(6)]
    with pytest.raises(PayloadTooLarge) as info:
        client.enqueue(jobs)
    refused(info, "SLUICE_LIMITS__MAX_BATCH_JOBS", 6, 5)
    assert nothing_enqueued(client)


def test_jobs_per_call_through_the_vector_store(client: Client) -> None:
    # one document per job (batch_size=1): six documents are six jobs, one more than the limit
    store = client.vectorstore("docs", "hashing", schema=IndexSchema.for_dims(8), batch_size=1)
    with pytest.raises(PayloadTooLarge) as info:
        store.add_texts([f"t{i}" for i in range(6)])
    refused(info, "SLUICE_LIMITS__MAX_BATCH_JOBS", 6, 5)
    assert nothing_enqueued(client)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_payload_bytes", 255), ("max_batch_jobs", 0), ("max_metadata_bytes", 15), ("max_prompt_chars", 0)],
)
def test_a_limit_set_too_low_is_a_settings_error(field: str, value: int) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        LimitSettings(**{field: value})

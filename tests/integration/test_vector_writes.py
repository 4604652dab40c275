"""The index handler driven directly with crafted jobs: versioned upserts and deletes under
out-of-order processing and redelivery, and the embeddings cache (no call for unchanged text)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.embeddings.registry import EmbedderRegistry
from sluice.facade.client import Client
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.jobs.codec import Job
from sluice.jobs.models import IndexDocument, IndexPayload, JobEnvelope
from sluice.settings import ComponentSpec
from sluice.types import EntryId
from sluice.vectors import IndexSchema, MetadataField
from sluice_workers.handlers.index import IndexHandler
from support.settings import fast_settings

DIMS = 32


class CountingEmbeddings(HashingEmbeddings):
    """The hashing embedder, counting `embed_documents` calls (class-wide: the registry builds it)."""

    calls: ClassVar[list[list[str]]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        CountingEmbeddings.calls.append(list(texts))
        return super().embed_documents(texts)


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    CountingEmbeddings.calls.clear()
    settings = fast_settings(redis8.url, namespace)
    spec = ComponentSpec(import_path=f"{__name__}:CountingEmbeddings", kwargs={"dims": DIMS})
    c = Client(settings.model_copy(update={"embedders": {"counting": spec}}))
    yield c
    c.close()


@pytest.fixture(params=["search", "vsets"])
def store(request: pytest.FixtureRequest, client: Client) -> SluiceVectorStore:
    schema = IndexSchema.for_dims(DIMS, MetadataField(name="lang", type="tag"))
    vs = client.vectorstore(
        "ix", HashingEmbeddings(dims=DIMS), embedder="counting", schema=schema, backend=request.param
    )
    vs.session.open(lambda: DIMS)
    return vs


@pytest.fixture
def handler(client: Client) -> IndexHandler:
    return IndexHandler(client.redis, client.settings, registry=EmbedderRegistry(client.settings.embedders))


def job(
    client: Client, entry_id: str, *, upsert: dict[str, str] | None = None, delete: list[str] | None = None
) -> Job:
    docs = [IndexDocument(id=i, text=t, metadata={"lang": "en"}) for i, t in (upsert or {}).items()]
    payload = IndexPayload(index="ix", upserts=docs, deletes=delete or [], embedder="counting")
    return Job(
        stream="s",
        entry_id=EntryId(entry_id),
        envelope=JobEnvelope(namespace=client.keys.namespace, payload=payload),
    )


def text_of(store: SluiceVectorStore, doc_id: str) -> str | None:
    found = store.get_by_ids([doc_id])
    return found[0].page_content if found else None


def test_an_older_upsert_never_overwrites_a_newer_one(
    client: Client, store: SluiceVectorStore, handler: IndexHandler
) -> None:
    # Given version 200 applied before version 100 (processed out of order)
    assert handler.handle([job(client, "200-0", upsert={"a": "new text"})]) == {}
    assert handler.handle([job(client, "100-0", upsert={"a": "old text"})]) == {}
    # Then the newer text stays, in storage and in search
    assert text_of(store, "a") == "new text"
    assert [d.page_content for d in store.similarity_search("old text", k=5)] == ["new text"]
    # And the same in one batch whose entries arrive newest first
    handler.handle([job(client, "300-5", upsert={"b": "b new"}), job(client, "300-1", upsert={"b": "b old"})])
    assert text_of(store, "b") == "b new"


def test_a_delete_is_not_undone_by_a_late_older_upsert(
    client: Client, store: SluiceVectorStore, handler: IndexHandler
) -> None:
    handler.handle([job(client, "100-0", upsert={"a": "first"})])
    # When the delete (v300) is applied and then an upsert from before it (v200) arrives late
    handler.handle([job(client, "300-0", delete=["a"])])
    handler.handle([job(client, "200-0", upsert={"a": "late"})])
    # Then the document stays deleted (the tombstone remembers v300)
    assert text_of(store, "a") is None
    assert store.similarity_search("late", k=5) == []
    # And a delete older than the live document is ignored, while a newer upsert revives it
    handler.handle([job(client, "400-0", upsert={"a": "revived"})])
    handler.handle([job(client, "350-0", delete=["a"])])
    assert text_of(store, "a") == "revived"
    assert store.session.count() == 1


def test_redelivery_changes_nothing(client: Client, store: SluiceVectorStore, handler: IndexHandler) -> None:
    first = job(client, "100-0", upsert={"a": "one", "b": "two"}, delete=["c"])
    for _ in range(3):
        assert handler.handle([first]) == {}
    assert {text_of(store, "a"), text_of(store, "b")} == {"one", "two"}
    assert store.session.count() == 2


def test_reindexing_unchanged_text_makes_no_embeddings_call(
    client: Client, store: SluiceVectorStore, handler: IndexHandler
) -> None:
    # Given one batch of three jobs with four documents (two share a text)
    batch = [
        job(client, "100-0", upsert={"a": "alpha", "b": "beta"}),
        job(client, "100-1", upsert={"c": "alpha"}),
        job(client, "100-2", upsert={"d": "delta"}),
    ]
    assert handler.handle(batch) == {}
    # Then the batch made ONE embeddings call, with each distinct text once
    assert CountingEmbeddings.calls == [["alpha", "beta", "delta"]]
    # When the same texts are indexed again (new versions, even by a new handler)
    again = IndexHandler(client.redis, client.settings, registry=EmbedderRegistry(client.settings.embedders))
    assert again.handle([job(client, "200-0", upsert={"a": "alpha", "b": "beta", "d": "delta"})]) == {}
    # Then no embeddings call was made; a changed text costs one call for that text only
    assert len(CountingEmbeddings.calls) == 1
    again.handle([job(client, "300-0", upsert={"a": "alpha", "b": "changed"})])
    assert CountingEmbeddings.calls[1:] == [["changed"]]
    assert text_of(store, "b") == "changed"


def test_jobs_for_a_missing_index_or_bad_documents_fail_alone(
    client: Client, store: SluiceVectorStore, handler: IndexHandler
) -> None:
    good = job(client, "100-0", upsert={"a": "fine"})
    orphan = Job(
        stream="s",
        entry_id=EntryId("100-1"),
        envelope=JobEnvelope(
            namespace=client.keys.namespace, payload=IndexPayload(index="gone", deletes=["x"])
        ),
    )
    wrong_size = Job(
        stream="s",
        entry_id=EntryId("100-2"),
        envelope=JobEnvelope(
            namespace=client.keys.namespace,
            payload=IndexPayload(index="ix", upserts=[IndexDocument(id="v", text="v", vector=[1.0, 2.0])]),
        ),
    )
    failures = handler.handle([good, orphan, wrong_size])
    assert set(failures) == {"100-1", "100-2"}
    assert "does not exist" in str(failures[EntryId("100-1")])
    assert "2 dimensions but the index expects 32" in str(failures[EntryId("100-2")])
    assert text_of(store, "a") == "fine"

"""`sluice index migrate` on a real Redis 8: a new generation built in the background by the workers
while the app keeps querying and writing, then an atomic switch; resume, abort, a re-embedding
migration and one whose documents do not fit the new schema."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.settings import ComponentSpec, VectorSettings
from sluice.vectors import IndexSchema, MetadataField, Num, Tag
from sluice.vectors.backfill import scan_keys
from sluice.vectors.migration import Migration, MigrationError
from sluice_workers.cli.main import main as sluice_main
from support.settings import fast_settings
from support.workers import ThreadWorker

DIMS = 32
WORDS = ["redis", "stream", "vector", "cluster", "worker", "cache", "index", "query", "shard", "merge"]
TEXTS = [f"{WORDS[i % 10]} {WORDS[(i * 3) % 10]} {WORDS[(i * 7) % 10]} doc{i}" for i in range(120)]
METAS = [{"lang": "en" if i % 3 else "fr", "n": i} for i in range(120)]
SCHEMA = IndexSchema.for_dims(DIMS, MetadataField(name="lang", type="tag"))
EMBEDDERS = {
    "hashing": {"import_path": "sluice.embeddings.hashing:HashingEmbeddings", "kwargs": {"dims": DIMS}},
    "wide": {"import_path": "sluice.embeddings.hashing:HashingEmbeddings", "kwargs": {"dims": 48}},
}
# what `sluice index migrate` adds to the schema, per backend (float16 is RediSearch's only)
CHANGES = {"search": ["--numeric", "n", "--dtype", "float16"], "vsets": ["--numeric", "n", "--m", "8"]}


@pytest.fixture
def client(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    base = fast_settings(redis8.url, namespace)
    settings = base.model_copy(
        update={
            "embedders": {k: ComponentSpec(**v) for k, v in EMBEDDERS.items()},  # type: ignore[arg-type]
            "vectors": VectorSettings(meta_refresh=0.2, switch_grace=0.6),
        }
    )
    # the CLI builds its settings from the environment, as in a deployment
    monkeypatch.setenv("SLUICE_REDIS__URL", redis8.url)
    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    monkeypatch.setenv("SLUICE_EMBEDDERS", json.dumps(EMBEDDERS))
    monkeypatch.setenv("SLUICE_VECTORS__META_REFRESH", "0.2")
    c = Client(settings)
    with ThreadWorker(c.settings):
        yield c
    c.close()


def migrate(*args: str) -> int:
    return sluice_main(["index", "migrate", *args])


class Reader(threading.Thread):
    """Queries without pause through a store opened before the migration; counts every answer."""

    def __init__(self, store: SluiceVectorStore) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.stop = threading.Event()
        self.answers = 0
        self.problems: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                found = self.store.similarity_search("redis stream vector", k=5)
                by_id = self.store.get_by_ids(["d1"])
                if len(found) != 5 or [d.id for d in by_id] != ["d1"]:
                    self.problems.append(f"answer {self.answers}: {len(found)} hits, get_by_ids {by_id}")
                self.answers += 1
            except Exception as e:
                self.problems.append(f"{type(e).__name__}: {e}")

    def finish(self) -> None:
        self.stop.set()
        self.join(10)


def generation_keys(client: Client, generation: int) -> int:
    patterns = [
        client.keys.vector_doc_prefix("docs", generation) + "*",
        client.keys.vector_set("docs", generation) + "*",
    ]
    return sum(len(c) for p in patterns for c in scan_keys(client.redis, False, p))


@pytest.mark.parametrize("backend", ["search", "vsets"])
def test_queries_are_answered_throughout_a_migration(client: Client, backend: str) -> None:
    # Given an index of 120 documents and a reader querying it continuously
    store = client.vectorstore("docs", "hashing", schema=SCHEMA, backend=backend)  # type: ignore[arg-type]
    store.add_texts(TEXTS, METAS, ids=[f"d{i}" for i in range(len(TEXTS))], wait=True)
    reader = Reader(client.vectorstore("docs", "hashing", read_your_writes=False))
    reader.start()
    # and a writer updating documents while the migration runs
    writer = client.vectorstore("docs", "hashing")
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            writer.add_texts([f"updated text {i}"], [{"lang": "de", "n": 1000 + i}], ids=[f"d{100 + i % 20}"])
            i += 1
            time.sleep(0.01)

    writing = threading.Thread(target=write, daemon=True)
    writing.start()
    time.sleep(0.2)
    # When the schema gains a numeric field (and another dtype / M)
    code = migrate("docs", *CHANGES[backend], "--grace", "0.6")
    stop.set()
    writing.join(10)
    writer.flush()
    time.sleep(0.5)  # the reader also queries after the old generation is gone
    reader.finish()
    # Then no query failed or came back empty, before, during or after the switch
    assert code == 0
    assert reader.problems == []
    assert reader.answers > 20
    # and the new schema is live: the numeric field filters, and the latest writes are there
    meta = client.vectorstore("docs", "hashing").session.open(lambda: DIMS)
    assert (meta.generation, meta.writing, meta.other) == (2, (2,), None)
    assert meta.index_schema.field("n") is not None
    late = client.vectorstore("docs", "hashing")
    found = late.similarity_search("updated text", k=30, filter=Num("n") >= 1000)
    assert found and all(d.metadata["lang"] == "de" for d in found)
    latest = {d.id: d.page_content for d in late.get_by_ids([f"d{100 + i}" for i in range(20)])}
    assert len(latest) == 20 and all(t.startswith("updated text") for t in latest.values())
    assert late.session.count() == len(TEXTS)
    assert len(late.similarity_search("redis", k=4, filter=Tag("lang") == "fr")) == 4
    # and the old generation is gone
    assert generation_keys(client, 1) == 0


def test_a_migration_to_another_embedder_re_embeds_the_text(client: Client) -> None:
    store = client.vectorstore("docs", "hashing", schema=SCHEMA, backend="search")
    store.add_texts(TEXTS[:30], METAS[:30], ids=[f"d{i}" for i in range(30)], wait=True)
    assert migrate("docs", "--embedder", "wide", "--grace", "0.3") == 0
    wide = client.vectorstore("docs", "wide")
    meta = wide.session.open(lambda: 48)
    assert (meta.embedder, meta.index_schema.vector.dims) == ("wide", 48)
    assert [d.id for d in wide.similarity_search(TEXTS[7], k=1)] == ["d7"]
    assert wide.session.count() == 30


def test_documents_that_do_not_fit_stop_the_switch_and_abort_restores(client: Client) -> None:
    # Given documents whose "lang" holds words, migrated to a schema where it is numeric
    store = client.vectorstore("docs", "hashing", schema=SCHEMA, backend="vsets")
    store.add_texts(TEXTS[:20], METAS[:20], ids=[f"d{i}" for i in range(20)], wait=True)
    m = Migration(client, "docs")
    target = m.plan(IndexSchema.for_dims(DIMS, MetadataField(name="lang", type="numeric")))
    started = m.start(target)
    result = m.backfill(started, copy_vectors=target.copy_vectors, timeout=30)
    # Then the backfill reports the failures and nothing switches
    assert result.failures and "lang" in result.failures[0]
    assert m.current()[1].generation == 1
    assert migrate("docs", "--numeric", "n") == 1  # another migration is refused while this one is open
    # When it is aborted, the index is as before and the target generation is gone
    assert migrate("docs", "--abort") == 0
    meta = m.current()[1]
    assert (meta.generation, meta.writing, meta.other) == (1, (1,), None)
    assert generation_keys(client, 2) == 0
    assert len(store.similarity_search("redis", k=3)) == 3


def test_an_interrupted_migration_resumes(client: Client) -> None:
    store = client.vectorstore("docs", "hashing", schema=SCHEMA, backend="search")
    store.add_texts(TEXTS[:20], METAS[:20], ids=[f"d{i}" for i in range(20)], wait=True)
    m = Migration(client, "docs")
    target = m.plan(IndexSchema.for_dims(DIMS, MetadataField(name="lang", type="tag"), m=8))
    m.start(target)  # ... and the admin's process died here
    store.add_texts(["written meanwhile"], [{"lang": "en"}], ids=["late"], wait=True)
    assert migrate("docs", "--grace", "0.3") == 2  # says a migration is open: resume or abort
    assert migrate("docs", "--resume", "--grace", "0.3") == 0
    meta = m.current()[1]
    assert (meta.generation, meta.index_schema.vector.m) == (2, 8)
    fresh = client.vectorstore("docs", "hashing")
    assert [d.id for d in fresh.get_by_ids(["late", "d3"])] == ["late", "d3"]
    assert fresh.session.count() == 21


def test_an_index_the_app_embeds_migrates_by_copying_its_vectors(client: Client) -> None:
    app_embedder = HashingEmbeddings(dims=DIMS)
    store = client.vectorstore("docs", app_embedder, schema=SCHEMA, backend="search")
    store.add_texts(TEXTS[:25], METAS[:25], ids=[f"d{i}" for i in range(25)], wait=True)
    before = [d.id for d in store.similarity_search(TEXTS[4], k=3)]
    m = Migration(client, "docs")
    # a new schema of other dims cannot reuse the vectors, and the workers have no embedder to name
    with pytest.raises(MigrationError, match="--embedder"):
        m.plan(IndexSchema.for_dims(DIMS * 2, MetadataField(name="lang", type="tag")))
    wider = IndexSchema.for_dims(
        DIMS, MetadataField(name="lang", type="tag"), MetadataField(name="n", type="numeric")
    )
    target = m.plan(wider)
    assert target.copy_vectors and target.spec.embedder is None
    assert m.run(target, grace=0.3, timeout=30) is not None
    after = client.vectorstore("docs", app_embedder)
    assert [d.id for d in after.similarity_search(TEXTS[4], k=3)] == before
    late = after.similarity_search(TEXTS[4], k=10, filter=Num("n") >= 20)
    assert sorted(d.id for d in late) == [f"d{i}" for i in range(20, 25)]

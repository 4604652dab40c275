"""The vector store against a real Redis 8: every VectorStore method, sync and async, on RediSearch
and on Vector Sets; filters; MMR; range and hybrid queries; schema and embedder mismatches; Redis 7.

Documents are embedded by the lexical hashing embedder (deterministic; texts sharing words are
close), in the worker (`embedder="hashing"`) unless a test says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.documents import Document

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import CapabilityMissing, ConfigError, JobFailed
from sluice.facade.client import Client
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.vectors import IndexSchema, MetadataField, Num, Tag, Text
from sluice.vectors.filters import FilterError
from sluice.vectors.manager import SchemaMismatch
from support.settings import fast_settings
from support.workers import ThreadWorker

DIMS = 64
SCHEMA = IndexSchema.for_dims(
    DIMS,
    MetadataField(name="lang", type="tag"),
    MetadataField(name="year", type="numeric"),
    MetadataField(name="title", type="text"),
)
DOCS = [
    ("redis is an in-memory data store", {"lang": "en", "year": 2021, "title": "redis intro"}),
    ("redis streams carry jobs to workers", {"lang": "en", "year": 2023, "title": "streams"}),
    ("postgres is a relational database", {"lang": "en", "year": 2019, "title": "postgres"}),
    ("redis est une base en mémoire", {"lang": "fr", "year": 2022, "title": "redis en français"}),
    ("the weather in paris is mild", {"lang": "en", "year": 2020, "title": "weather"}),
]
BACKENDS = ["search", "vsets"]


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    settings = fast_settings(redis8.url, namespace)
    embedders = {**settings.embedders}
    embedders["hashing"] = embedders["hashing"].model_copy(update={"kwargs": {"dims": DIMS}})
    c = Client(settings.model_copy(update={"embedders": embedders}))
    with ThreadWorker(c.settings):
        yield c
    c.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, client: Client) -> SluiceVectorStore:
    vs = client.vectorstore("docs", "hashing", schema=SCHEMA, backend=request.param)
    vs.add_texts([t for t, _ in DOCS], [m for _, m in DOCS], ids=[f"d{i}" for i in range(len(DOCS))])
    return vs


def texts(docs: list[Document]) -> list[str]:
    return [d.page_content for d in docs]


def test_sync_methods_read_their_own_writes(store: SluiceVectorStore) -> None:
    # Given five documents enqueued (not yet waited for)
    # When searching at once: read-your-writes waits for this store's jobs
    found = store.similarity_search("redis in-memory store", k=2)
    assert texts(found)[0] == DOCS[0][0]
    assert found[0].id == "d0" and found[0].metadata == DOCS[0][1]
    scored = store.similarity_search_with_score("redis in-memory store", k=5)
    distances = [d for _, d in scored]
    assert distances == sorted(distances) and 0 <= distances[0] < distances[-1] <= 2
    by_vector = store.similarity_search_by_vector(store.embeddings.embed_query("postgres database"), k=1)
    assert texts(by_vector) == [DOCS[2][0]]
    relevance = store.similarity_search_with_relevance_scores(
        "redis in-memory store", k=5, score_threshold=0.3
    )
    assert relevance and all(0.3 <= r <= 1 for _, r in relevance)
    assert texts(store.get_by_ids(["d3", "missing", "d1"])) == [DOCS[3][0], DOCS[1][0]]
    # When deleting and upserting by id
    store.delete(["d0"])
    store.add_texts(["postgres replaced by redis"], [{"lang": "en", "year": 2024}], ids=["d2"])
    # Then later reads see both
    assert store.get_by_ids(["d0"]) == []
    assert store.get_by_ids(["d2"])[0].page_content == "postgres replaced by redis"
    assert "d0" not in [d.id for d in store.similarity_search("redis in-memory", k=5)]
    assert store.session.count() == 4


async def test_async_methods_read_their_own_writes(store: SluiceVectorStore) -> None:
    found = await store.asimilarity_search("redis streams jobs", k=1)
    assert [d.id for d in found] == ["d1"]
    scored = await store.asimilarity_search_with_score("redis streams jobs", k=3)
    assert scored[0][0].id == "d1" and scored[0][1] <= scored[1][1]
    vector = await store.embeddings.aembed_query("weather paris")
    assert [d.id for d in await store.asimilarity_search_by_vector(vector, k=1)] == ["d4"]
    relevance = await store.asimilarity_search_with_relevance_scores("weather paris", k=2)
    assert relevance[0][0].id == "d4" and relevance[0][1] > relevance[1][1]
    ids = await store.aadd_texts(["async added text"], [{"lang": "de", "year": 2025}])
    assert [d.page_content for d in await store.aget_by_ids(ids)] == ["async added text"]
    await store.adelete(ids)
    assert await store.aget_by_ids(ids) == []
    mmr = await store.amax_marginal_relevance_search("redis", k=2, fetch_k=5)
    assert len(mmr) == 2
    docs = await store.amax_marginal_relevance_search_by_vector(
        await store.embeddings.aembed_query("redis"), k=1
    )
    assert len(docs) == 1
    built = await SluiceVectorStore.afrom_texts(
        ["made by afrom_texts"], store.embeddings, client=store.client, index="other", embedder="hashing"
    )
    assert [d.page_content for d in await built.asimilarity_search("afrom_texts", k=1)] == [
        "made by afrom_texts"
    ]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Tag("lang") == "fr", {"d3"}),
        (Tag("lang") == "FR", set()),
        (Tag("lang") != "fr", {"d0", "d1", "d2", "d4"}),
        (Num("year") >= 2022, {"d1", "d3"}),
        (Num("year").between(2019, 2020), {"d2", "d4"}),
        ((Tag("lang") == "en") & (Num("year") > 2020), {"d0", "d1"}),
        ((Tag("lang") == "fr") | (Num("year") < 2020), {"d2", "d3"}),
        ({"lang": "en", "year": 2019}, {"d2"}),
    ],
)
def test_tag_and_numeric_filters_on_both_backends(
    store: SluiceVectorStore, flt: Any, expected: set[str]
) -> None:
    found = store.similarity_search("redis", k=10, filter=flt)
    assert {d.id for d in found} == expected


def test_text_filters_and_hybrid_queries_on_redisearch(client: Client) -> None:
    vs = client.vectorstore("docs", "hashing", schema=SCHEMA, backend="search")
    vs.add_texts([t for t, _ in DOCS], [m for _, m in DOCS], ids=[f"d{i}" for i in range(len(DOCS))])
    # a metadata text field, and the document text itself (hybrid text + vector)
    assert {d.id for d in vs.similarity_search("x", k=10, filter=Text("title") % "redis")} == {"d0", "d3"}
    hybrid = vs.similarity_search("in-memory", k=10, filter=Text("text") % "redis" & (Tag("lang") == "en"))
    assert {d.id for d in hybrid} == {"d0", "d1"}


def test_text_filters_are_refused_on_vector_sets_before_any_query(client: Client) -> None:
    vs = client.vectorstore("docs", "hashing", schema=SCHEMA, backend="vsets")
    with pytest.raises(FilterError, match="Vector Sets cannot express"):
        vs.similarity_search("redis", k=3, filter=Text("title") % "redis")


@pytest.mark.parametrize("backend", BACKENDS)
def test_range_queries_return_only_documents_within_the_distance(client: Client, backend: str) -> None:
    vs = client.vectorstore("docs", "hashing", schema=SCHEMA, backend=backend)
    vs.add_texts([t for t, _ in DOCS], [m for _, m in DOCS], ids=[f"d{i}" for i in range(len(DOCS))])
    every = vs.similarity_search_with_score("redis streams carry jobs to workers", k=5)
    cut = (every[1][1] + every[2][1]) / 2
    within = vs.similarity_search_with_score(
        "redis streams carry jobs to workers", k=5, distance_threshold=cut
    )
    assert [d.id for d, _ in within] == [d.id for d, _ in every[:2]]


def test_mmr_trades_similarity_for_diversity(store: SluiceVectorStore) -> None:
    # Given a near-duplicate of d0
    store.add_texts(["redis is an in-memory data store!"], ids=["dup"])
    query = "redis in-memory data store"
    plain = [d.id for d in store.similarity_search(query, k=2)]
    diverse = [d.id for d in store.max_marginal_relevance_search(query, k=2, fetch_k=6, lambda_mult=0.3)]
    assert set(plain) == {"d0", "dup"}
    assert diverse[0] in {"d0", "dup"} and diverse[1] not in {"d0", "dup"}


def test_retriever_modes_all_work(store: SluiceVectorStore) -> None:
    query = "redis in-memory data store"
    assert len(store.as_retriever(search_kwargs={"k": 2}).invoke(query)) == 2
    assert len(store.as_retriever(search_type="mmr", search_kwargs={"k": 3}).invoke(query)) == 3
    threshold = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"k": 5, "score_threshold": 0.5}
    )
    assert [d.id for d in threshold.invoke(query)] == ["d0"]


def test_app_side_embedding_and_explicit_wait(client: Client) -> None:
    # Given an Embeddings instance no settings name: the app embeds, the job carries vectors
    vs = client.vectorstore("apps", HashingEmbeddings(dims=32), read_your_writes=False)
    ids = vs.add_texts(["alpha beta", "gamma delta"], wait=True)
    assert [d.id for d in vs.similarity_search("alpha", k=1)] == [ids[0]]
    again = SluiceVectorStore.from_texts(["epsilon"], HashingEmbeddings(dims=32), client=client, index="apps")
    assert texts(again.similarity_search("epsilon", k=1)) == ["epsilon"]


def test_opening_an_index_with_another_schema_names_the_differences(client: Client) -> None:
    client.vectorstore("docs", "hashing", schema=SCHEMA).similarity_search("x")
    other = IndexSchema.for_dims(DIMS, MetadataField(name="lang", type="text"), metric="l2")
    with pytest.raises(SchemaMismatch) as caught:
        client.vectorstore("docs", "hashing", schema=other).similarity_search("x")
    assert "vector.metric: index has 'cosine', asked for 'l2'" in str(caught.value)
    assert "metadata field 'year': in the index but not asked for" in str(caught.value)
    assert "sluice index migrate" in str(caught.value)
    # schema=None adopts the stored schema
    assert client.vectorstore("docs", "hashing").similarity_search("x") == []


def test_a_query_embedder_of_another_size_is_a_clear_error(client: Client) -> None:
    client.vectorstore("docs", "hashing", schema=SCHEMA).similarity_search("x")
    wrong = client.vectorstore("docs", HashingEmbeddings(dims=16), embedder="hashing")
    with pytest.raises(ConfigError, match="16-dimensional vectors but index 'docs' holds 64-dimensional"):
        wrong.similarity_search("x")


def test_a_document_the_schema_refuses_fails_its_job_and_the_reader_hears_of_it(client: Client) -> None:
    vs = client.vectorstore("docs", "hashing", schema=SCHEMA)
    vs.add_texts(["bad year"], [{"year": "last spring"}])
    with pytest.raises(JobFailed, match="numeric field"):
        vs.similarity_search("x")
    assert vs.similarity_search("bad year") == []  # reported once, then reads go on


def test_vector_sets_refuse_metrics_they_do_not_have(client: Client) -> None:
    with pytest.raises(ConfigError, match="Vector Sets cannot use the l2 metric"):
        client.vectorstore(
            "l2", "hashing", schema=IndexSchema.for_dims(DIMS, metric="l2"), backend="vsets"
        ).add_texts(["x"])


def test_plain_redis_7_says_what_is_missing(redis7: Any, namespace: str) -> None:
    client = Client(fast_settings(redis7.url, namespace))
    vs = client.vectorstore("docs", HashingEmbeddings(dims=8))
    with pytest.raises(CapabilityMissing, match=r"RediSearch \(FT.SEARCH\) or Vector Sets.*Redis 7\.0"):
        vs.add_texts(["x"])
    with pytest.raises(CapabilityMissing, match="Vector Sets"):
        client.vectorstore("docs", HashingEmbeddings(dims=8), backend="vsets").similarity_search("x")
    client.close()

"""Hybrid search against a real RediSearch (issue 17): BM25 over the text fused with KNN.

The servers here have RediSearch 2.10 (no FT.HYBRID), so the fused pair of queries is tested for
real, and the FT.HYBRID path runs only where the server has it (skipped, saying so, elsewhere).
A small concept embedder makes the two legs disagree on purpose: it maps synonyms to one axis
("automobile" and "sedan" are close) and ignores product codes ("zx81"), which only BM25 sees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

import servers
from sluice.errors import ConfigError, SluiceError
from sluice.facade.client import Client
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.transport.runner import drive
from sluice.vectors import IndexSchema, MetadataField, Tag
from sluice.vectors.hybrid import HybridQuery
from support.settings import fast_settings
from support.workers import ThreadWorker
from topologies import ClusterTopology

CONCEPTS = {
    "vehicle": "car automobile vehicle sedan truck",
    "dog": "dog puppy canine hound",
    "money": "money cash payment refund bank fee",
    "weather": "rain storm weather forecast sunny",
    "food": "pasta pizza meal dinner lunch",
}
AXIS = {word: i for i, words in enumerate(CONCEPTS.values()) for word in words.split()}


class ConceptEmbeddings(Embeddings):
    """Deterministic test semantics: one axis per concept, plus a small constant axis."""

    def embed_query(self, text: str) -> list[float]:
        vector = [0.0] * len(CONCEPTS) + [0.3]
        for word in re.findall(r"\w+", text.lower()):
            if word in AXIS:
                vector[AXIS[word]] += 1.0
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]


DOCS = {
    "car1": ("my sedan broke down on the highway", "en"),
    "car2": ("the automobile dealer sold a red truck", "en"),
    "dog1": ("the puppy chewed my shoes", "en"),
    "dog2": ("a hound barked all night", "fr"),
    "money1": ("cash payment returned to the customer", "en"),
    "money2": ("the bank charged a fee", "fr"),
    "weather1": ("heavy rain and a storm tonight", "en"),
    "weather2": ("the forecast says sunny", "en"),
    "food1": ("pasta with tomato sauce for dinner", "en"),
    "food2": ("pizza night with friends", "fr"),
    "sku1": ("manual for the zx81 pasta maker", "en"),
    "sku2": ("firmware kq7 for the truck", "en"),
    "sku3": ("spare parts of the qb12 rain gauge", "fr"),
}
SCHEMA = IndexSchema.for_dims(len(CONCEPTS) + 1, MetadataField(name="lang", type="tag"), algorithm="flat")
QUERIES = {  # query -> the documents a reader wants
    "automobile repair": {"car1", "car2"},
    "canine behaviour": {"dog1", "dog2"},
    "zx81": {"sku1"},
    "kq7 update": {"sku2"},
    "zx81 refund": {"sku1", "money1", "money2"},
    "storm warning": {"weather1", "weather2"},
    "dinner ideas": {"food1", "food2"},
    "qb12 puppy": {"sku3", "dog1", "dog2"},
}


@pytest.fixture(scope="module")
def client(redis8: Any) -> Iterator[Client]:
    import uuid

    c = Client(fast_settings(redis8.url, f"h{uuid.uuid4().hex[:8]}"))
    with ThreadWorker(c.settings):
        yield c
    c.close()


@pytest.fixture(scope="module")
def store(client: Client) -> SluiceVectorStore:
    vs = client.vectorstore("hybrid", ConceptEmbeddings(), schema=SCHEMA, backend="search")
    vs.add_texts([t for t, _ in DOCS.values()], [{"lang": lang} for _, lang in DOCS.values()], ids=list(DOCS))
    vs.flush()
    return vs


def ids(docs: Any) -> list[str]:
    return [d.id for d in docs]


def test_a_keyword_only_match_and_a_vector_only_match_both_come_back(store: SluiceVectorStore) -> None:
    # Given a query whose code only BM25 sees and whose "refund" only the vectors understand
    query = "zx81 refund"
    # When searched by vector alone, then by hybrid search
    by_vector = ids(store.similarity_search(query, k=2))
    hybrid = store.hybrid_search_with_score(query, k=2)
    # Then the vector search misses the manual, and hybrid search finds it and a payment document
    assert "sku1" not in by_vector and set(by_vector) == {"money1", "money2"}
    found = [d.id for d, _ in hybrid]
    assert found[0] == "sku1" and found[1] in {"money1", "money2"}
    # with RRF scores: the manual is first in the text leg (1/61) and also in the vector leg
    assert hybrid[0][1] > 1 / 61 > hybrid[1][1] - 1e-12


def test_relevance_sanity_hybrid_recalls_at_least_as_much_as_either_leg(store: SluiceVectorStore) -> None:
    """Recall@3 over the labelled queries: what the README reports for hybrid search."""

    def recall(found: dict[str, list[str]]) -> float:
        return sum(len(set(found[q][:3]) & want) / len(want) for q, want in QUERIES.items()) / len(QUERIES)

    def text_only(q: str) -> list[str]:
        return [
            d.id or ""
            for d, s in store.hybrid_search_with_score(q, k=3, fusion="linear", text_weight=1.0)
            if s > 0
        ]

    modes = {
        # every document ranked, so distance ties break by id as in the hybrid legs (not server order)
        "vector": {q: ids(store.similarity_search(q, k=len(DOCS)))[:3] for q in QUERIES},
        "text (BM25)": {q: text_only(q) for q in QUERIES},
        "hybrid rrf": {q: ids(store.hybrid_search(q, k=3)) for q in QUERIES},
        "hybrid linear 0.5": {
            q: ids(store.hybrid_search(q, k=3, fusion="linear", text_weight=0.5)) for q in QUERIES
        },
    }
    scores = {mode: recall(found) for mode, found in modes.items()}
    print("\nrecall@3 on", len(QUERIES), "queries:", {m: round(s, 3) for m, s in scores.items()})
    assert scores["hybrid rrf"] >= max(scores["vector"], scores["text (BM25)"])
    assert scores["hybrid linear 0.5"] >= max(scores["vector"], scores["text (BM25)"])
    assert scores["hybrid rrf"] > scores["vector"] and scores["hybrid rrf"] > scores["text (BM25)"]


def test_linear_weights_move_between_the_legs(store: SluiceVectorStore) -> None:
    query = "zx81 refund"
    text_first = ids(store.hybrid_search(query, k=1, fusion="linear", text_weight=1.0))
    vector_first = ids(store.hybrid_search(query, k=1, fusion="linear", text_weight=0.0))
    assert text_first == ["sku1"] and vector_first[0] in {"money1", "money2"}


def test_a_filter_narrows_both_legs(store: SluiceVectorStore) -> None:
    found = ids(store.hybrid_search("zx81 refund", k=5, filter=Tag("lang") == "fr"))
    assert found and set(found) <= {"dog2", "money2", "food2", "sku3"}
    assert found[0] == "money2"  # the only French money document; the manual is English
    assert ids(store.hybrid_search("zx81", k=5, filter={"lang": "en"}))[0] == "sku1"


def test_search_type_hybrid_in_search_and_the_retriever(store: SluiceVectorStore) -> None:
    assert ids(store.search("zx81 refund", "hybrid", k=2))[0] == "sku1"
    retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": 2, "fusion": "rrf"})
    assert ids(retriever.invoke("zx81 refund"))[0] == "sku1"
    assert ids(store.as_retriever(search_kwargs={"k": 2}).invoke("zx81 refund")) == ids(
        store.similarity_search("zx81 refund", k=2)
    )  # the other search types are LangChain's


async def test_async_hybrid_search_and_retriever(store: SluiceVectorStore) -> None:
    found = await store.ahybrid_search("zx81 refund", k=2)
    assert ids(found)[0] == "sku1"
    assert ids(await store.asearch("zx81 refund", "hybrid", k=2)) == ids(found)
    retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": 2})
    assert ids(await retriever.ainvoke("zx81 refund")) == ids(found)


def test_a_query_without_words_is_the_vector_leg_alone(store: SluiceVectorStore) -> None:
    # (compared with a k covering every document: the server breaks distance ties its own way)
    assert ids(store.hybrid_search("???", k=3)) == ids(store.similarity_search("???", k=len(DOCS)))[:3]


def test_options_it_does_not_know_or_cannot_use_are_refused(store: SluiceVectorStore) -> None:
    with pytest.raises(ConfigError, match=r"no option \['alpha'\]"):
        store.hybrid_search("zx81", alpha=0.5)
    with pytest.raises(ConfigError, match="fusion must be 'rrf' or 'linear'"):
        store.hybrid_search("zx81", fusion="max")
    with pytest.raises(ConfigError, match="text_weight must be between 0 and 1"):
        store.hybrid_search("zx81", fusion="linear", text_weight=2)


def test_vector_sets_say_hybrid_search_needs_the_search_backend(client: Client) -> None:
    vs = client.vectorstore("hybrid_vsets", ConceptEmbeddings(), backend="vsets")
    vs.add_texts(["cash payment"], wait=True)
    with pytest.raises(
        ConfigError, match=r"Vector Sets cannot run a hybrid.*needs the search backend.*backend='search'"
    ):
        vs.hybrid_search("refund")
    with pytest.raises(ConfigError, match="needs the search backend"):
        vs.as_retriever(search_type="hybrid").invoke("refund")


def test_the_ft_hybrid_path_is_chosen_by_capability(client: Client, store: SluiceVectorStore) -> None:
    # Given this server's capabilities / When the native path is forced where FT.HYBRID is missing
    caps = client.capabilities
    backend, meta = store.session.fresh()
    query = HybridQuery("zx81 refund", ConceptEmbeddings().embed_query("zx81 refund"), k=2)
    if caps.hybrid:
        pytest.skip("this server has FT.HYBRID; test_ft_hybrid_gives_the_same_sanity covers it")
    # Then FT.HYBRID is what is sent (the server refuses it), and the default path does not send it
    with pytest.raises(SluiceError, match=r"(?i)unknown command"):
        drive(backend.hybrid(meta, query, True), store.session.runner)
    assert store.session.hybrid(query)[0].hit.doc_id == "sku1"


def test_ft_hybrid_gives_the_same_sanity(client: Client, store: SluiceVectorStore) -> None:
    caps = client.capabilities
    if not caps.hybrid:
        pytest.skip(
            f"this server's RediSearch (module version {caps.search_version}) has no FT.HYBRID, which "
            "came with Redis 8.4; the fused pair of queries is tested instead"
        )
    hybrid = ids(store.hybrid_search("zx81 refund", k=2))
    assert hybrid[0] in {"sku1", "money1", "money2"} and "sku1" in hybrid
    assert set(hybrid) & {"money1", "money2"}
    linear = ids(store.hybrid_search("zx81 refund", k=2, fusion="linear", text_weight=0.5))
    assert "sku1" in linear


@pytest.mark.cluster
def test_hybrid_search_on_a_cluster_fans_out_and_fuses(namespace: str) -> None:
    # Given the documents spread over 3 primaries (one RediSearch index each)
    topology = ClusterTopology(
        servers.need(servers.redis8_binary), modules=tuple(servers.need(servers.stack_modules))
    )
    topology.start()
    try:
        client = Client(fast_settings(topology.url, namespace))
        with ThreadWorker(client.settings):
            vs = client.vectorstore("hybrid", ConceptEmbeddings(), schema=SCHEMA, backend="search")
            vs.add_texts(
                [t for t, _ in DOCS.values()], [{"lang": g} for _, g in DOCS.values()], ids=list(DOCS)
            )
            vs.flush()
            # When searched / Then both legs were asked on every shard and fused
            found = ids(vs.hybrid_search("zx81 refund", k=2))
            assert found[0] == "sku1" and found[1] in {"money1", "money2"}
            assert (
                ids(vs.hybrid_search("canine", k=2)) == ids(vs.similarity_search("canine", k=len(DOCS)))[:2]
            )
        client.close()
    finally:
        topology.stop()

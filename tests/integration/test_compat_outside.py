"""Behaviours the outside run of the peers' own test suites found missing in the drop-ins (issue
18; the run is described in `sluice.compat`): `RedisConfig.to_index_schema()`, and a redisvl
schema (``schema_path`` / ``index_schema``) naming the index the store uses, and ``sort_by``, as in
langchain-redis."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redisvl.schema import IndexSchema as RedisvlSchema
from redisvl.schema import StorageType

from sluice.compat import clients, langchain_redis
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from support.settings import fast_settings
from support.workers import ThreadWorker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
EMB = HashingEmbeddings()


@pytest.fixture
def sluice(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    client = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(client.settings):
        yield client
    client.close()
    clients.close_all()


def test_config_to_index_schema_is_the_redisvl_schema_langchain_redis_builds() -> None:
    # Given a config with dimensions and a metadata schema
    config = langchain_redis.RedisConfig(
        index_name="books", key_prefix="bk", embedding_dimensions=8, distance_metric="L2",
        metadata_schema=[{"name": "author", "type": "tag"}, {"name": "year", "type": "numeric"}],
    )  # fmt: skip
    # When described as a redisvl schema
    schema = config.to_index_schema()
    # Then it is the peer's: the id (tag), content (text), vector and metadata fields, named as configured
    assert isinstance(schema, RedisvlSchema)
    index = schema.index
    assert (index.name, index.prefix, index.storage_type) == ("books", "bk", StorageType.HASH)
    assert list(schema.fields) == [config.id_field, "text", "embedding", "author", "year"]
    assert schema.fields["embedding"].attrs.dims == 8
    assert schema.fields["year"].type == "numeric"
    # And a config given a redisvl schema hands that schema back
    given = langchain_redis.RedisConfig(schema=schema)
    assert given.to_index_schema() is schema


def test_a_schema_file_names_the_index_the_store_uses(sluice: Client, redis8: Any, tmp_path: Path) -> None:
    # Given a store over an index, whose schema was written to a YAML file
    first = langchain_redis.RedisVectorStore.from_texts(
        ["foo", "bar", "baz"], EMB, index_name="shelf", key_prefix="shelf", redis_url=redis8.url
    )
    path = tmp_path / "shelf.yml"
    first.index.schema.to_yaml(str(path))
    # When another store is made with that file (and another index_name, as the peer's tests do)
    second = langchain_redis.RedisVectorStore(EMB, index_name="other", schema_path=str(path), redis_url=redis8.url)  # fmt: skip
    second.add_texts(["foo"])
    # Then it uses the schema's index: the new text sits beside the first store's three
    assert str(second.index) == "shelf"
    found = second.similarity_search("foo", k=2, return_metadata=False)
    assert [d.page_content for d in found] == ["foo", "foo"]
    assert first.index.query(_count_all()) == 4
    assert not langchain_redis.RedisVectorStore(EMB, index_name="other", redis_url=redis8.url).exists()


def test_index_schema_given_by_keyword_names_the_index_too(sluice: Client, redis8: Any) -> None:
    schema = RedisvlSchema.from_dict({
        "index": {"name": "byschema", "prefix": "byschema", "storage_type": "hash"},
        "fields": [
            {"name": "text", "type": "text"},
            {"name": "embedding", "type": "vector", "attrs": {"dims": EMB.dims, "distance_metric": "cosine", "algorithm": "FLAT"}},
        ],
    })  # fmt: skip
    store = langchain_redis.RedisVectorStore(EMB, index_schema=schema, redis_url=redis8.url)
    store.add_texts(["one", "two"])
    assert str(store.index) == "byschema"
    assert len(store.similarity_search("one", k=5)) == 2


def test_sort_by_orders_the_nearest_by_a_metadata_field(sluice: Client, redis8: Any) -> None:
    # Given five priced documents, the cheapest farthest from the query
    rows = [{"price": p, "name": n} for p, n in [(30, "c"), (10, "a"), (50, "e"), (20, "b"), (40, "d")]]
    store = langchain_redis.RedisVectorStore.from_texts(
        ["red car", "blue car", "red bike", "green car", "red boat"], EMB, rows,
        index_name="sorted", metadata_schema=[{"name": "price", "type": "numeric"}], redis_url=redis8.url,
    )  # fmt: skip
    nearest = {d.metadata["price"] for d in store.similarity_search("red car", k=3)}
    # When searched with sort_by (redisvl's forms)
    asc = store.similarity_search("red car", k=3, sort_by="price")
    desc = store.similarity_search("red car", k=3, sort_by=("price", "DESC"))
    listed = store.similarity_search_with_score("red car", k=3, sort_by=[("price", "ASC"), "name"])
    # Then they are the same k nearest documents, ordered by the field
    assert [d.metadata["price"] for d in asc] == sorted(nearest)
    assert [d.metadata["price"] for d in desc] == sorted(nearest, reverse=True)
    assert [d.metadata["price"] for d, _ in listed] == sorted(nearest)
    # Even when the field is not returned, and with vectors
    bare = store.similarity_search("red car", k=3, sort_by="price", return_metadata=False)
    assert [d.page_content for d in bare] == [d.page_content for d in asc]
    triples = store.similarity_search_with_score_by_vector(
        EMB.embed_query("red car"), k=3, sort_by="price", with_vectors=True
    )
    assert [d.metadata["price"] for d, _, _ in triples] == sorted(nearest)
    # And a document without the field comes last; a bad direction is refused by name
    store.add_texts(["red car too"], [{"name": "x"}])
    assert store.similarity_search("red car", k=5, sort_by="price")[-1].metadata == {"name": "x"}
    with pytest.raises(ValueError, match="ASC"):
        store.similarity_search("red car", sort_by=("price", "UP"))
    with pytest.raises(TypeError, match="sort_by"):
        store.similarity_search("red car", sort_by=3)


async def test_sort_by_in_async_searches(sluice: Client, redis8: Any) -> None:
    store = langchain_redis.RedisVectorStore.from_texts(
        ["one", "two", "three"], EMB, [{"n": 3}, {"n": 1}, {"n": 2}],
        index_name="sortedasync", metadata_schema=[{"name": "n", "type": "numeric"}], redis_url=redis8.url,
    )  # fmt: skip
    found = await store.asimilarity_search("one", k=3, sort_by=("n", "DESC"))
    assert [d.metadata["n"] for d in found] == [3, 2, 1]


def _count_all() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from redisvl.query import CountQuery
        from redisvl.query.filter import FilterExpression

    return CountQuery(FilterExpression("*"))

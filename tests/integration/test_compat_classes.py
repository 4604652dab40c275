"""The drop-in classes: the peers' signatures, and the differences their docstrings promise."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation

from sluice.compat import clients, community, langchain_redis
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.vectors import Num
from support.peers import enable_community_vectors
from support.settings import fast_settings
from support.workers import ThreadWorker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
enable_community_vectors()

import langchain_community.cache as seed_cache  # noqa: E402
import langchain_community.chat_message_histories as seed_histories  # noqa: E402
import langchain_community.vectorstores.redis as seed_vectors  # noqa: E402
import langchain_redis as seed_lr  # noqa: E402

EMB = HashingEmbeddings()
PAIRS = [
    (seed_cache.RedisCache, community.RedisCache),
    (seed_cache.RedisSemanticCache, community.RedisSemanticCache),
    (seed_vectors.Redis, community.Redis),
    (seed_histories.RedisChatMessageHistory, community.RedisChatMessageHistory),
    (seed_lr.RedisCache, langchain_redis.RedisCache),
    (seed_lr.RedisSemanticCache, langchain_redis.RedisSemanticCache),
    (seed_lr.RedisVectorStore, langchain_redis.RedisVectorStore),
    (seed_lr.RedisChatMessageHistory, langchain_redis.RedisChatMessageHistory),
]


@pytest.mark.parametrize(("seed", "ours"), PAIRS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_same_names_and_constructor_parameters(seed: type, ours: type) -> None:
    assert ours.__name__ == seed.__name__
    theirs = [p for p in inspect.signature(seed.__init__).parameters.values() if p.name != "self"]
    mine = inspect.signature(ours.__init__).parameters
    for p in theirs:
        assert p.name in mine, p.name
        assert mine[p.name].kind == p.kind and mine[p.name].default == p.default, p.name
    for name in ("from_texts", "from_existing_index", "as_retriever"):
        if hasattr(seed, name):
            assert callable(getattr(ours, name))


def test_redis_config_has_the_same_fields_and_defaults() -> None:
    theirs, mine = seed_lr.RedisConfig.model_fields, langchain_redis.RedisConfig.model_fields
    assert set(theirs) <= set(mine)
    plain = ("distance_metric", "indexing_algorithm", "vector_datatype", "content_field", "embedding_field",
             "default_tag_separator", "key_prefix", "redis_url", "legacy_key_format")  # fmt: skip
    for name in plain:
        assert mine[name].default == theirs[name].default, name
    assert langchain_redis.RedisConfig(index_name="x").key_prefix == "x"


@pytest.fixture
def sluice(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    client = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(client.settings):
        yield client
    client.close()
    clients.close_all()


def test_clear_no_longer_flushes_the_database(sluice: Client, redis8: Any, namespace: str) -> None:
    # Given a drop-in cache with an entry, and an unrelated key in the same database
    r = redis.Redis.from_url(redis8.url)
    r.set(f"{namespace}-unrelated", "keep me")
    cache = community.RedisCache(redis_=r)
    cache.update("p", "llm", [Generation(text="x")])
    assert cache.lookup("p", "llm") == [Generation(text="x")]
    # When the cache is cleared
    cache.clear()
    # Then its entries are gone and the other key is not (langchain-community ran FLUSHDB)
    assert cache.lookup("p", "llm") is None
    assert r.get(f"{namespace}-unrelated") == b"keep me"
    r.delete(f"{namespace}-unrelated")


def test_each_history_object_reads_the_previous_turn(sluice: Client, redis8: Any) -> None:
    # Given a history written through one object, with a non-default key prefix
    first = community.RedisChatMessageHistory("s1", url=redis8.url, key_prefix="app:", ttl=60)
    first.add_messages([HumanMessage("hi"), AIMessage("hello")])
    # When another object for the same session reads (as RunnableWithMessageHistory does each turn)
    second = community.RedisChatMessageHistory("s1", url=redis8.url, key_prefix="app:")
    # Then it sees the appends, under the session id the migration gives such keys
    assert [m.content for m in second.messages] == ["hi", "hello"]
    assert second.session_id == "app:s1" and second.key == "app:s1"
    assert 0 < sluice.redis.pttl(sluice.keys.history("app:s1")) <= 60_000
    default = community.RedisChatMessageHistory("s2", url=redis8.url)
    assert default.session_id == "s2" and default.key == "message_store:s2"


def test_community_vector_store_ids_retriever_and_lifecycle(sluice: Client, redis8: Any) -> None:
    # Given a store made with from_texts (schema generated from the metadata, as the peer does)
    texts = ["red apples", "green apples", "yellow bananas", "blue berries"]
    metas = [{"year": 2020 + i, "color": t.split()[0]} for i, t in enumerate(texts)]
    store = community.Redis.from_texts(
        texts, EMB, metas, index_name="fruit", redis_url=redis8.url, ids=["a", "b", "c", "d"]
    )
    assert {f["name"] for f in store.schema["numeric"]} == {"year"}
    # Then old-style keys are accepted as ids, and the peer's extra retriever type works
    assert [d.page_content for d in store.get_by_ids(["doc:fruit:a", "b"])] == ["red apples", "green apples"]
    near = store.as_retriever(
        search_type="similarity_distance_threshold", search_kwargs={"distance_threshold": 0.5, "k": 4}
    )
    assert near.invoke("green apples")[0].page_content == "green apples"
    with pytest.raises(ValueError, match="distance_threshold must be provided"):
        store.as_retriever(search_type="similarity_distance_threshold").invoke("x")
    found = store.similarity_search("apples", k=4, filter=Num("year") >= 2022)
    # (shaped as langchain-community shapes results: the key in metadata["id"], no Document.id)
    assert {d.metadata["id"] for d in found} == {"doc:fruit:c", "doc:fruit:d"}
    assert {d.id for d in found} == {None}
    store.delete(["doc:fruit:a"])
    assert store.get_by_ids(["a"]) == []
    # And from_existing_index / drop_index behave as the peer's
    again = community.Redis.from_existing_index(EMB, "fruit", redis_url=redis8.url)
    assert len(again.similarity_search("fruit", k=10)) == 3
    assert community.Redis.drop_index("fruit", True, redis_url=redis8.url)
    with pytest.raises(ValueError, match="does not exist"):
        community.Redis.from_existing_index(EMB, "fruit", redis_url=redis8.url)


def test_langchain_redis_vector_store(sluice: Client, redis8: Any) -> None:
    config = langchain_redis.RedisConfig.with_metadata_schema(
        [{"name": "year", "type": "numeric"}], index_name="books", redis_url=redis8.url
    )
    store, ids = langchain_redis.RedisVectorStore.from_texts(
        ["one book", "two books", "three books"], EMB, [{"year": 1}, {"year": 2}, {"year": 3}],
        config=config, keys=["x", "y", "z"], return_keys=True,
    )  # fmt: skip
    assert ids == ["x", "y", "z"]
    found = store.similarity_search("books", k=3, filter=Num("year") > 1)
    assert sorted(d.metadata["year"] for d in found) == [2, 3] and {d.id for d in found} == {None}
    assert [d.metadata for d in store.get_by_ids(["books:x"])] == [{"year": 1}]
    by_year = store.similarity_search("books", k=3, sort_by=("year", "DESC"))  # as redisvl's SORTBY
    years = [d.metadata["year"] for d in by_year]
    assert years == sorted(years, reverse=True)
    with pytest.raises(ConfigError, match="ttl"):
        langchain_redis.RedisVectorStore(EMB, config=config, ttl=60)
    assert langchain_redis.RedisVectorStore(EMB, config=config, ttl=0).ttl == 0  # redisvl: no expiry


def test_langchain_redis_history_deletes_only_its_session(sluice: Client, redis8: Any) -> None:
    a = langchain_redis.RedisChatMessageHistory("a", redis_url=redis8.url)
    b = langchain_redis.RedisChatMessageHistory("b", redis_url=redis8.url)
    a.add_message(HumanMessage("to a"))
    b.add_message(HumanMessage("to b"))
    a.delete()
    assert a.messages == [] and len(b) == 1 and b.id == "b"
    assert b.search_messages("to") == [{"content": "to b", "additional_kwargs": {}, "type": "human"}]


def test_an_apps_resp3_client_is_accepted(sluice: Client, redis8: Any) -> None:
    # Given the app's own redis-py client, speaking RESP3 (redis-py 8's default)
    r = redis.Redis.from_url(redis8.url)
    config = langchain_redis.RedisConfig(index_name="resp3", redis_client=r)
    store = langchain_redis.RedisVectorStore(EMB, config=config)
    # When the drop-ins use it, then searches and histories read right (sluice talks RESP2 on a twin)
    store.add_texts(["first text", "second text"], ids=["1", "2"])
    assert [d.id for d in store.get_by_ids(["2"])] == ["2"]
    assert [d.page_content for d in store.similarity_search("second text", k=1)] == ["second text"]
    history = langchain_redis.RedisChatMessageHistory("s", redis_client=r)
    history.add_message(HumanMessage("hi"))
    assert [m.content for m in history.messages] == ["hi"]
    r.close()

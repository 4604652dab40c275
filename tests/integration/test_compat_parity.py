"""The drop-ins do what their peers do where the peers' users rely on it (issue 18): the peers'
filter expressions, the shape of search results and of returned ids, ``store.index`` as a
redisvl index, MMR's ``fetch_k``, ``delete``'s answer, ``ttl=0``, the redis-py client
attributes, ``AsyncRedisCache``, ``search_messages`` and the error for an asyncio client."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import Generation
from redisvl.query import CountQuery
from redisvl.query import filter as rv

from sluice.compat import clients, community, langchain_redis
from sluice.compat.clients import WrongClient
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from sluice.vectors import IndexSchema, MetadataField, VectorField
from sluice.vectors.filters import FilterError
from support.settings import fast_settings
from support.workers import ThreadWorker

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langchain_community.vectorstores.redis import RedisFilter, RedisNum, RedisTag, RedisText

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
EMB = HashingEmbeddings()
ROWS = [
    {"name": "joe", "num": 1, "val": "foo", "category": ["a", "b"]},
    {"name": "john", "num": 2, "val": "bar", "category": ["a", "c"]},
    {"name": "jane", "num": 3, "val": "baz", "category": ["b", "c", "a"]},
]
SCHEMA = [
    {"name": "name", "type": "tag"},
    {"name": "num", "type": "numeric"},
    {"name": "val", "type": "text"},
    {"name": "category", "type": "tag"},
]


@pytest.fixture
def sluice(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    client = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(client.settings):
        yield client
    client.close()
    clients.close_all()


def lr_store(url: str, name: str = "parity", **config: Any) -> langchain_redis.RedisVectorStore:
    store, _ = langchain_redis.RedisVectorStore.from_texts(
        ["foo text", "bar text", "baz text"], EMB, ROWS, index_name=name, key_prefix=name,
        metadata_schema=SCHEMA, redis_url=url, keys=["1", "2", "3"], return_keys=True, **config,
    )  # fmt: skip
    return store  # type: ignore[no-any-return]


# --- filters ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "nums"),
    [
        (rv.Text("val") == "foo", [1]),
        (rv.Text("val") % "ba*", [2, 3]),
        (rv.Num("num") > 2, [3]),
        (rv.Num("num") != 2, [1, 3]),
        (rv.Tag("category") == "b", [1, 3]),
        (rv.Tag("category") == ["b", "c"], [1, 2, 3]),
        ((rv.Tag("category") == "c") & (rv.Num("num") <= 2), [2]),
        ((rv.Tag("name") == "joe") | (rv.Text("val") == "baz"), [1, 3]),
        ("@num:[2 +inf] -@name:{jane}", [2]),
    ],
)
def test_redisvl_filters_select_the_same_documents(
    sluice: Client, redis8: Any, expression: Any, nums: list[int]
) -> None:
    # Given langchain-redis's drop-in over three documents
    store = lr_store(redis8.url)
    # When searched and MMR-searched with a redisvl filter (or a query string of that kind)
    found = store.similarity_search("foo", k=3, filter=expression)
    mmr = store.max_marginal_relevance_search("foo", k=3, fetch_k=5, filter=expression)
    # Then both return exactly the documents the filter selects
    assert sorted(d.metadata["num"] for d in found) == nums
    assert sorted(d.metadata["num"] for d in mmr) == nums


def test_langchain_community_filters_select_the_same_documents(sluice: Client, redis8: Any) -> None:
    # Given the community drop-in, whose metadata has a field called "text" (as the peer's tests do)
    rows = [{"num": r["num"], "text": r["val"], "category": r["category"]} for r in ROWS]
    store = community.Redis.from_texts(["red", "green", "blue"], EMB, rows, redis_url=redis8.url)

    def nums(expression: Any) -> list[int]:
        return sorted(d.metadata["num"] for d in store.similarity_search("red", k=3, filter=expression))

    # Then its filters mean what they meant, on the metadata field "text" and on the content
    assert nums(RedisText("text") == "foo") == [1]
    assert nums(RedisText("text") % "ba*") == [2, 3]
    assert nums(RedisFilter.num("num") != 2) == [1, 3]
    assert nums(RedisNum("num") >= 2) == [2, 3]
    assert nums(RedisFilter.tag("category") == ["b", "c"]) == [1, 2, 3]
    assert nums((RedisTag("category") == "c") & (RedisNum("num") < 3)) == [2]
    assert nums(RedisText("content") % "green") == [2]


def test_the_facade_accepts_peer_filters_too(sluice: Client) -> None:
    schema = IndexSchema(
        vector=VectorField(dims=EMB.dims), metadata=(MetadataField(name="num", type="numeric"),)
    )
    store = sluice.vectorstore("facadepeer", EMB, schema=schema)
    store.add_texts(["one", "two", "three"], [{"num": 1}, {"num": 2}, {"num": 3}], ids=["a", "b", "c"])
    assert {d.id for d in store.similarity_search("one", k=3, filter=rv.Num("num") >= 2)} == {"b", "c"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [d.id for d in store.similarity_search("one", k=3, filter=RedisNum("num") < 2)] == ["a"]


def test_filters_sluice_cannot_express_are_refused_before_any_query(sluice: Client, redis8: Any) -> None:
    store = lr_store(redis8.url)
    with pytest.raises(FilterError, match="geo"):
        store.similarity_search("foo", filter=rv.Geo("location") == rv.GeoRadius(-122.4, 37.7, 100, "km"))
    with pytest.raises(FilterError, match="tag wildcards"):
        store.similarity_search("foo", filter=rv.Tag("category") % "a*")


# --- results and ids -------------------------------------------------------------------------------
def test_langchain_redis_results_are_shaped_as_the_peer_shapes_them(sluice: Client, redis8: Any) -> None:
    store = lr_store(redis8.url)
    # Search results: no Document.id, the metadata as stored; none with return_metadata=False
    [doc] = store.similarity_search("foo text", k=1, filter=rv.Num("num") == 1)
    assert doc.id is None and doc.metadata == ROWS[0]
    assert [d.metadata for d in store.similarity_search("foo", k=2, return_metadata=False)] == [{}, {}]
    [(scored, _)] = store.similarity_search_with_score("foo", k=1, filter=rv.Num("num") == 2)
    assert scored.id is None
    # get_by_ids sets the id, and add_texts returns ids without the key prefix
    assert [d.id for d in store.get_by_ids(["2"])] == ["2"]
    assert store.add_texts(["more"], ids=["4"]) == ["4"]


def test_community_results_and_keys_are_shaped_as_the_peer_shapes_them(sluice: Client, redis8: Any) -> None:
    # Given a community store whose schema names two fields, and a document lacking one of them
    store, keys = community.Redis.from_texts_return_keys(
        ["apples", "pears"], EMB, [{"color": "red", "size": 3}, {"color": "green"}],
        index_name="fruits", redis_url=redis8.url, keys=["a", "b"],
    )  # fmt: skip
    # Then the keys are the peer's, results carry the key in metadata and the schema's fields only
    assert keys == ["doc:fruits:a", "doc:fruits:b"]
    assert store.add_texts(["plums"], ids=["c"]) == ["doc:fruits:c"]
    [doc] = store.similarity_search("pears", k=1, filter=RedisText("color") == "green")
    assert doc.id is None and doc.metadata == {"id": "doc:fruits:b", "color": "green", "size": None}
    [bare] = store.similarity_search("pears", k=1, return_metadata=False)
    assert bare.metadata == {}
    # And the keys work wherever ids do
    assert store.delete(keys[:1]) is True
    assert [d.page_content for d in store.get_by_ids(["doc:fruits:b", "a"])] == ["pears"]


def test_mmr_returns_at_most_fetch_k_documents(sluice: Client, redis8: Any) -> None:
    lr = lr_store(redis8.url)
    cm = community.Redis.from_texts(["foo", "bar", "baz"], EMB, redis_url=redis8.url)
    for store in (lr, cm):
        assert len(store.max_marginal_relevance_search("foo", k=3, fetch_k=2)) == 2
        assert len(store.max_marginal_relevance_search("foo", k=2, fetch_k=3)) == 2


async def test_async_searches_are_shaped_too(sluice: Client, redis8: Any) -> None:
    store = lr_store(redis8.url, "parityasync")
    found = await store.asimilarity_search("foo", k=3, filter=rv.Num("num") > 1)
    assert sorted(d.metadata["num"] for d in found) == [2, 3] and {d.id for d in found} == {None}
    assert len(await store.amax_marginal_relevance_search("foo", k=3, fetch_k=2)) == 2
    assert await store.adelete([]) is False and await store.adelete(["nope"]) is False
    assert await store.adelete(["1"]) is True


def test_langchain_redis_delete_answers_as_the_peer(sluice: Client, redis8: Any) -> None:
    store = lr_store(redis8.url)
    assert store.delete([]) is False and store.delete(None) is False
    assert store.delete(["no-such-id"]) is False
    assert store.delete(["1", "no-such-id"]) is True
    assert store.get_by_ids(["1"]) == []
    assert community.Redis.from_texts(["x"], EMB, redis_url=redis8.url).delete(["nope"]) is True


def test_a_redisvl_schema_shapes_the_index_and_the_results(sluice: Client, redis8: Any) -> None:
    # Given a langchain-redis config with a redisvl schema that indexes one metadata field
    from redisvl.schema import IndexSchema as RedisvlSchema

    schema = RedisvlSchema.from_dict({
        "index": {"name": "withschema", "storage_type": "hash"},
        "fields": [
            {"name": "kind", "type": "tag", "attrs": {"separator": ";"}},
            {"name": "text", "type": "text"},
            {"name": "embedding", "type": "vector", "attrs": {"dims": EMB.dims, "distance_metric": "cosine", "algorithm": "FLAT"}},
        ],
    })  # fmt: skip
    config = langchain_redis.RedisConfig(index_name="withschema", redis_url=redis8.url, schema=schema)
    store = langchain_redis.RedisVectorStore(EMB, config=config)
    store.add_texts(["one", "two"], [{"kind": "a", "extra": 1}, {"kind": "b", "extra": 2}])
    # Then the field is filterable, results carry the schema's fields only, return_all everything
    [doc] = store.similarity_search("one", k=2, filter=rv.Tag("kind") == "a")
    assert doc.metadata == {"kind": "a"}
    [(full, _)] = store.similarity_search_with_score(
        "one", k=1, filter=rv.Tag("kind") == "a", return_all=True
    )
    assert full.metadata == {"kind": "a", "extra": 1}
    # And with_vectors gives the peer's triples
    [(vdoc, distance, vector)] = store.similarity_search_with_score_by_vector(
        EMB.embed_query("two"), k=1, with_vectors=True
    )
    assert vdoc.page_content == "two" and distance < 0.01 and len(vector) == EMB.dims
    assert store.index.schema.fields["kind"].attrs.separator == ";"


# --- store.index -----------------------------------------------------------------------------------
def test_store_index_answers_the_redisvl_calls(sluice: Client, redis8: Any, tmp_path: Path) -> None:
    store = lr_store(redis8.url, "parityindex")
    index = store.index
    assert index == "parityindex" and index.name == "parityindex" and index.exists()
    assert isinstance(index.client, redis.Redis)
    # Counts see this store's writes, all or filtered
    store.add_texts(["four"], [{"num": 4, "category": ["d"]}])
    assert index.query(CountQuery(rv.FilterExpression("*"))) == 4
    assert index.query(CountQuery(rv.Tag("category") == "a")) == 3
    assert index.query(CountQuery(rv.Num("num") >= 3)) == 2
    # The schema is a redisvl one, with the fields of the index
    index.schema.to_yaml(str(tmp_path / "schema.yml"))
    text = (tmp_path / "schema.yml").read_text()
    assert "parityindex" in text and "category" in text and "vector" in text
    assert {f for f in index.schema.fields} >= {"text", "embedding", "num", "val", "category", "name"}
    with pytest.raises(Exception, match="VectorQuery is not run"):
        from redisvl.query import VectorQuery

        index.query(VectorQuery([0.0] * EMB.dims, "embedding"))
    # delete(drop=True) drops the index and its documents
    index.delete(drop=True)
    assert not index.exists()


# --- ttl, attributes, clients ----------------------------------------------------------------------
def test_ttl_zero_means_what_it_meant(sluice: Client, redis8: Any) -> None:
    r = redis.Redis.from_url(redis8.url)
    # Exact caches EXPIREd entries after 0 s: nothing is ever found
    for cache in (
        community.RedisCache(redis_=r, ttl=0),
        langchain_redis.RedisCache(redis_url=redis8.url, ttl=0),
    ):
        cache.update("p", "llm", [Generation(text="x")])
        assert cache.lookup("p", "llm") is None
    # Histories (and redisvl's caches) read 0 as "no expiry"
    history = langchain_redis.RedisChatMessageHistory("ttl0", redis_url=redis8.url, ttl=0)
    history.add_message(HumanMessage("kept"))
    assert [m.content for m in history.messages] == ["kept"]
    assert sluice.redis.pttl(sluice.keys.history(history.session_id)) == -1
    other = community.RedisChatMessageHistory("ttl0c", url=redis8.url, ttl=0)
    assert other.ttl is None
    assert langchain_redis.RedisChatMessageHistory("neg", redis_url=redis8.url, ttl=-1).ttl is None
    semantic = langchain_redis.RedisSemanticCache(EMB, redis_url=redis8.url, ttl=0)
    assert semantic.ttl is None
    r.close()


def test_a_cache_key_has_its_ttl_when_looked_at(sluice: Client, redis8: Any) -> None:
    r = redis.Redis.from_url(redis8.url)
    cache = community.RedisCache(redis_=r, ttl=60)
    cache.update("foo", "bar", [Generation(text="fizz")])
    assert 0 < cache.redis.pttl(cache._key("foo", "bar")) <= 60_000
    r.close()


def test_histories_expose_a_redis_py_client_and_community_writes_its_schema(
    sluice: Client, redis8: Any, tmp_path: Path
) -> None:
    lr = langchain_redis.RedisChatMessageHistory("attrs", redis_url=redis8.url)
    cm = community.RedisChatMessageHistory("attrs", url=redis8.url)
    assert lr.redis_client.ping() and cm.redis_client.ping()
    store = community.Redis.from_texts(
        ["a"], EMB, [{"kind": "x"}], index_name="written", redis_url=redis8.url
    )
    store.write_schema(tmp_path / "schema.yml")
    again = community.Redis.from_existing_index(
        EMB, index_name="written", redis_url=redis8.url, schema=str(tmp_path / "schema.yml")
    )
    assert again.schema == store.schema and [d.page_content for d in again.similarity_search("a", k=1)] == [
        "a"
    ]


def test_an_asyncio_client_where_a_sync_one_is_needed_says_so(sluice: Client, redis8: Any) -> None:
    aclient = redis.asyncio.Redis.from_url(redis8.url)
    with pytest.raises(WrongClient, match=r"asyncio client.*AsyncRedisCache"):
        community.RedisCache(redis_=aclient)
    with pytest.raises(ValueError, match="asyncio client"):
        langchain_redis.RedisCache(redis_client=aclient)


async def test_async_redis_cache_works_through_the_asyncio_client(sluice: Client, redis8: Any) -> None:
    # Given langchain-community's AsyncRedisCache over an app's asyncio client
    aclient = redis.asyncio.Redis.from_url(redis8.url)
    cache = community.AsyncRedisCache(redis_=aclient, ttl=60)
    assert cache.redis is aclient
    # Then the async methods work and the sync ones refuse, as the peer's do
    await cache.aupdate("prompt", "llm", [Generation(text="fizz")])
    assert await cache.alookup("prompt", "llm") == [Generation(text="fizz")]
    await cache.aclear()
    assert await cache.alookup("prompt", "llm") is None
    with pytest.raises(NotImplementedError, match="alookup"):
        cache.lookup("prompt", "llm")
    with pytest.raises(NotImplementedError, match="aupdate"):
        cache.update("prompt", "llm", [])
    with pytest.raises(ValueError, match=r"redis\.asyncio\.Redis"):
        community.AsyncRedisCache(redis_=redis.Redis.from_url(redis8.url))
    await aclient.aclose()


# --- search_messages -------------------------------------------------------------------------------
def test_search_messages_finds_the_messages_holding_the_words(sluice: Client, redis8: Any) -> None:
    history = langchain_redis.RedisChatMessageHistory("searching", redis_url=redis8.url)
    history.add_messages([
        HumanMessage("Tell me about Machine Learning"),
        AIMessage("Machine learning is a subset of AI"),
        HumanMessage("What's the weather like today?"),
        ToolMessage("Learned nothing", tool_call_id="t1"),
    ])  # fmt: skip
    assert [m["content"] for m in history.search_messages("weather")] == ["What's the weather like today?"]
    found = history.search_messages("machine learning", limit=3)
    assert [m["type"] for m in found] == ["human", "ai", "tool"]
    assert found[2] == {
        "content": "Learned nothing", "additional_kwargs": {}, "type": "tool", "tool_call_id": "t1", "status": "success",
    }  # fmt: skip
    assert history.search_messages("nonexistent") == [] and history.search_messages("") == []
    assert len(history.search_messages("machine", limit=1)) == 1

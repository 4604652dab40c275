"""Index schemas, documents as stored, job planning for index writes, and the embedder registry."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError, PayloadTooLarge
from sluice.keys import Keys
from sluice.settings import ComponentSpec, LimitSettings
from sluice.vectors import IndexSchema, MetadataField, VectorField
from sluice.vectors.documents import DocumentError, Hit, indexed_fields, merge, pack, unpack
from sluice.vectors.ingest import documents, new_ids, payloads
from sluice.vectors.schema import differences


def test_differences_name_each_changed_part() -> None:
    # Given an index schema and a wanted one that differs in three ways
    a = IndexSchema(vector=VectorField(dims=384), metadata=(MetadataField(name="lang", type="tag"),))
    b = IndexSchema(
        vector=VectorField(dims=256, metric="l2", ef_runtime=500),
        metadata=(MetadataField(name="lang", type="text"), MetadataField(name="year", type="numeric")),
    )
    # Then each difference is named; ef_runtime (a query-time setting) is not one
    assert differences(a, b) == [
        "metadata field 'lang' type: index has 'tag', asked for 'text'",
        "metadata field 'year': asked for but not in the index",
        "vector.dims: index has 384, asked for 256",
        "vector.metric: index has 'cosine', asked for 'l2'",
    ]
    assert differences(a, a) == []


def test_schema_refuses_clashing_or_reserved_names() -> None:
    with pytest.raises(ValidationError, match="distinct"):
        IndexSchema(vector=VectorField(dims=4), metadata=(MetadataField(name="text", type="tag"),))
    with pytest.raises(ValidationError, match="not one of"):
        MetadataField(name="_meta", type="tag")


def test_indexed_fields_follow_the_schema_types() -> None:
    schema = IndexSchema.for_dims(
        4, MetadataField(name="tags", type="tag"), MetadataField(name="year", type="numeric")
    )
    assert indexed_fields(schema, {"tags": ["a", "b"], "year": "2020", "other": 1}) == {
        "tags": ["a", "b"],
        "year": 2020.0,
    }
    with pytest.raises(DocumentError, match="numeric field"):
        indexed_fields(schema, {"year": "soon"})


def test_vectors_round_trip_in_both_dtypes() -> None:
    assert unpack(pack([0.5, -1.25], "float32")) == [0.5, -1.25]
    assert unpack(pack([0.5, -1.25], "float16"), "float16") == [0.5, -1.25]


def test_merge_orders_by_distance_then_id_and_keeps_k() -> None:
    shard_a = [Hit("b", "", {}, 0.1), Hit("d", "", {}, 0.4)]
    shard_b = [Hit("a", "", {}, 0.1), Hit("c", "", {}, 0.2)]
    assert [h.doc_id for h in merge([shard_a, shard_b], 3)] == ["a", "b", "c"]


def test_each_index_job_holds_documents_of_one_partition() -> None:
    # Given 50 documents and 4 partitions
    keys = Keys("ns", 4)
    docs = documents([f"t{i}" for i in range(50)], None, [f"d{i}" for i in range(50)], None, LimitSettings())
    # When planned into jobs
    jobs = payloads(keys, LimitSettings(), "ix", upserts=docs, batch_size=10)
    # Then every job's documents share the partition its target key routes to
    for job in jobs:
        parts = {keys.partition_of(f"index:ix:{d.id}") for d in job.upserts}
        assert parts == {keys.partition_of(job.target_key())}
        assert len(job.upserts) <= 10
    assert sorted(d.id for j in jobs for d in j.upserts) == sorted(f"d{i}" for i in range(50))


def test_ids_are_generated_where_missing_and_metadata_size_is_limited() -> None:
    ids = new_ids(["a", None, ""], 3)
    assert ids[0] == "a" and len(ids[1]) == 32 and ids[1] != ids[2]
    with pytest.raises(PayloadTooLarge, match="MAX_METADATA_BYTES"):
        documents(["t"], [{"x": "y" * 100}], ["a"], None, LimitSettings(max_metadata_bytes=50))


def test_hashing_embedder_is_deterministic_lexical_and_never_zero() -> None:
    e = HashingEmbeddings(dims=64)
    a, b, c = e.embed_documents(["reset my password", "reset my password?", "weather in Paris"])
    assert a == b == HashingEmbeddings(dims=64).embed_query("reset my password")
    dot = sum(x * y for x, y in zip(a, c, strict=True))
    assert dot < 0.5
    empty = e.embed_query("!!!")
    assert abs(sum(x * x for x in empty) - 1.0) < 1e-9


def test_registry_builds_once_per_name_and_explains_unknown_names() -> None:
    registry = EmbedderRegistry(
        {
            "small": ComponentSpec(
                import_path="sluice.embeddings.hashing:HashingEmbeddings", kwargs={"dims": 32}
            )
        }
    )
    assert registry.get("small") is registry.get("small")
    assert len(registry.get("small").embed_query("x")) == 32
    with pytest.raises(ConfigError, match=r"no embedder named 'big'.*\['small'\]"):
        registry.get("big")
    broken = EmbedderRegistry({"bad": ComponentSpec(import_path="no_such_module_xyz:Thing")})
    with pytest.raises(ConfigError, match="cannot import module"):
        broken.get("bad")


def test_hnsw_range_queries_widen_the_search_boundary() -> None:
    from sluice.vectors.backend import VectorQuery
    from sluice.vectors.schema import IndexSchema, VectorField
    from sluice.vectors.search import RANGE_EPSILON, query_args

    hnsw = IndexSchema(vector=VectorField(dims=4))
    flat = IndexSchema(vector=VectorField(dims=4, algorithm="flat"))
    q = VectorQuery([1.0, 0.0, 0.0, 0.0], k=3, distance_threshold=0.2)
    assert f"$EPSILON: {RANGE_EPSILON}" in query_args("i", hnsw, q)[2]
    assert (
        "$EPSILON: 0.05"
        in query_args("i", hnsw, VectorQuery(q.vector, distance_threshold=0.2, epsilon=0.05))[2]
    )
    assert "EPSILON" not in query_args("i", flat, q)[2]

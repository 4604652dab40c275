"""Index metadata across a migration (`IndexMeta.at`), read-only script detection, and the CLI's
schema flags (no server)."""

from __future__ import annotations

import argparse

import pytest

from sluice.scripts import read_only
from sluice.vectors import IndexSchema, MetadataField
from sluice.vectors.meta import GenerationSpec, IndexMeta
from sluice.vectors.migration import copyable, resumed
from sluice_workers.cli.index import add_parser, build_schema

OLD = IndexSchema.for_dims(8, MetadataField(name="lang", type="tag"))
NEW = IndexSchema.for_dims(8, MetadataField(name="lang", type="tag"), dtype="float16")


def meta(**changes: object) -> IndexMeta:
    base = IndexMeta(index="docs", backend="search", index_schema=OLD, embedder="hashing")
    return base.model_copy(update=changes)


def test_each_generation_is_seen_with_its_own_schema_and_backend() -> None:
    target = GenerationSpec(
        generation=2, backend="vsets", index_schema=NEW, embedder="hashing", shards=("0", "1")
    )
    migrating = IndexMeta.model_validate(
        {**meta().model_dump(), "other": target.model_dump(), "writing": (1, 2)}
    )
    one, two = migrating.at(1), migrating.at(2)
    assert (one.generation, one.backend, one.index_schema, one.writing, one.other) == (
        1,
        "search",
        OLD,
        (1,),
        None,
    )
    assert (two.generation, two.backend, two.index_schema, two.shards) == (2, "vsets", NEW, ("0", "1"))
    assert two.at(2) is two
    with pytest.raises(ValueError, match="no generation 3"):
        migrating.at(3)
    assert resumed(migrating) is not None and resumed(meta()) is None


def test_writing_must_name_known_generations() -> None:
    with pytest.raises(ValueError, match="writing"):
        IndexMeta(index="docs", backend="search", index_schema=OLD, writing=(1, 2))


def test_vectors_are_copied_only_when_they_serve_the_new_schema() -> None:
    assert copyable(meta(), NEW, "hashing")
    assert not copyable(meta(), NEW, "minilm")
    assert not copyable(meta(), IndexSchema.for_dims(16), "hashing")
    assert not copyable(meta(), IndexSchema.for_dims(8, metric="l2"), "hashing")
    q8 = meta(backend="vsets", index_schema=IndexSchema.for_dims(8, dtype="q8"))
    assert not copyable(q8, IndexSchema.for_dims(8), "hashing")
    assert copyable(q8.model_copy(update={"embedder": None}), IndexSchema.for_dims(8), None)


def test_no_writes_scripts_are_read_only() -> None:
    assert read_only("vector_set_search")
    assert not read_only("vector_set_write") and not read_only("enqueue")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["index", *argv])


def test_migrate_flags_change_only_what_they_name() -> None:
    args = parse("migrate", "docs", "--numeric", "year", "--drop-field", "lang", "--dtype", "float16")
    schema = build_schema(args, OLD, lambda: 0)
    assert [f.name for f in schema.metadata] == ["year"]
    assert (schema.vector.dims, schema.vector.dtype, schema.vector.m) == (8, "float16", OLD.vector.m)


def test_create_flags_build_a_schema_with_the_embedders_dims() -> None:
    schema = build_schema(parse("create", "docs", "--tag", "lang", "--metric", "l2"), None, lambda: 384)
    assert (schema.vector.dims, schema.vector.metric, schema.field_names()) == (384, "l2", ["lang"])

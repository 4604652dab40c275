"""A new vector index opened without a schema takes its metadata fields from the first write
(issue 17): `add_texts(texts, metadatas=[{"lang": "fr"}])` then `filter=Tag("lang") == "fr"` works,
on RediSearch and on Vector Sets, sync and async; a log line says what was inferred; later keys
keep the clear "not a field" error with its migrate hint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.errors import JobFailed
from sluice.facade.client import Client
from sluice.vectors import IndexSchema, MetadataField, Num, Tag
from sluice.vectors.filters import FilterError
from support.settings import fast_settings
from support.workers import ThreadWorker

DIMS = 32
TEXTS = ["bonjour le monde", "hello world", "hola mundo"]
METADATAS: list[dict[str, Any]] = [
    {"lang": "fr", "year": 2020, "tags": ["greeting", "short"], "draft": True, "extra": {"x": 1}},
    {"lang": "en", "year": 2021.5, "tags": ["greeting"], "draft": False, "extra": {"y": 2}},
    {"lang": "es", "year": 2022, "tags": ["long"]},
]
SESSION_LOG = "sluice.vectors.session"


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    settings = fast_settings(redis8.url, namespace)
    embedders = {**settings.embedders}
    embedders["hashing"] = embedders["hashing"].model_copy(update={"kwargs": {"dims": DIMS}})
    c = Client(settings.model_copy(update={"embedders": embedders}))
    with ThreadWorker(c.settings):
        yield c
    c.close()


def ids(docs: Any) -> set[str]:
    return {d.id for d in docs}


@pytest.mark.parametrize("backend", ["search", "vsets"])
def test_the_first_write_decides_the_fields_of_a_new_index(
    client: Client, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SESSION_LOG)
    # Given a new index and no schema
    vs = client.vectorstore("inferred", "hashing", backend=backend)
    # When the first write carries metadata
    vs.add_texts(TEXTS, METADATAS, ids=["fr", "en", "es"], wait=True)
    # Then its keys are fields: strings and lists of strings tags, numbers numeric, booleans tags
    assert ids(vs.similarity_search("hello", k=3, filter=Tag("lang") == "fr")) == {"fr"}
    assert ids(vs.similarity_search("hello", k=3, filter=Num("year") >= 2021)) == {"en", "es"}
    assert ids(vs.similarity_search("hello", k=3, filter=Tag("tags") == "greeting")) == {"fr", "en"}
    assert ids(vs.similarity_search("hello", k=3, filter=Tag("draft") == "true")) == {"fr"}
    assert ids(vs.similarity_search("hello", k=3, filter={"lang": "es"})) == {"es"}
    # and metadata comes back exactly as written, the skipped key included
    assert vs.get_by_ids(["fr"])[0].metadata == METADATAS[0]
    # and a log line said what was inferred, and what was not
    [line] = [r.getMessage() for r in caplog.records if "inferred" in r.getMessage()]
    assert "'inferred'" in line and "lang (tag), year (numeric), tags (tag), draft (tag)" in line
    assert "not filterable: 'extra'" in line and "schema=IndexSchema" in line
    meta = vs.session.meta
    assert meta is not None and meta.index_schema.field_names() == ["lang", "year", "tags", "draft"]


def test_later_keys_keep_the_not_a_field_error_and_its_migrate_hint(client: Client) -> None:
    # Given an index inferred from a first write
    vs = client.vectorstore("later", "hashing", backend="search")
    vs.add_texts(TEXTS[:1], METADATAS[:1], wait=True)
    # When a later write brings a new key
    vs.add_texts(["ciao"], [{"lang": "it", "color": "red"}], ids=["it"], wait=True)
    # Then the new key is stored but not filterable, and the error says how to change the schema
    assert vs.get_by_ids(["it"])[0].metadata == {"lang": "it", "color": "red"}
    with pytest.raises(FilterError, match=r"'color', which is not a field.*sluice index migrate"):
        vs.similarity_search("ciao", k=2, filter=Tag("color") == "red")
    assert ids(vs.similarity_search("ciao", k=2, filter=Tag("lang") == "it")) == {"it"}


def test_a_value_the_inferred_field_cannot_hold_fails_its_job_as_with_a_given_schema(client: Client) -> None:
    vs = client.vectorstore("clash", "hashing", backend="search")
    vs.add_texts(TEXTS[:1], [{"year": 2020}], wait=True)
    # a word where the inferred numeric field wants a number: the job fails and the reader hears why
    vs.add_texts(["x"], [{"year": "unknown"}])
    with pytest.raises(JobFailed, match="'year' is a numeric field but holds 'unknown'"):
        vs.similarity_search("x")


def test_a_given_schema_is_used_as_is(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=SESSION_LOG)
    schema = IndexSchema.for_dims(DIMS, MetadataField(name="lang", type="tag"))
    vs = client.vectorstore("given", "hashing", schema=schema, backend="search")
    vs.add_texts(TEXTS, METADATAS, wait=True)
    meta = vs.session.meta
    assert meta is not None and meta.index_schema == schema
    assert not [r for r in caplog.records if "inferred" in r.getMessage()]
    with pytest.raises(FilterError, match="not a field"):
        vs.similarity_search("x", filter=Num("year") > 1)


def test_an_existing_index_is_adopted_not_inferred_again(client: Client) -> None:
    first = client.vectorstore("adopted", "hashing", backend="search")
    first.add_texts(TEXTS[:1], [{"lang": "fr"}], wait=True)
    # another store object (another process) writes other keys first: the index keeps its fields
    second = client.vectorstore("adopted", "hashing", backend="search")
    second.add_texts(["x"], [{"year": 1}], wait=True)
    meta = second.session.meta
    assert meta is not None and meta.index_schema.field_names() == ["lang"]


def test_an_index_first_used_by_a_read_says_it_has_no_fields(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SESSION_LOG)
    vs = client.vectorstore("read_first", "hashing", backend="search")
    assert vs.similarity_search("anything") == []
    [line] = [r.getMessage() for r in caplog.records if "read_first" in r.getMessage()]
    assert "no metadata fields" in line and "write first" in line
    vs.add_texts(TEXTS[:1], [{"lang": "fr"}], wait=True)
    with pytest.raises(FilterError, match="not a field"):
        vs.similarity_search("x", filter=Tag("lang") == "fr")


async def test_the_async_first_write_infers_too(client: Client) -> None:
    vs = client.vectorstore("inferred_async", "hashing", backend="search")
    await vs.aadd_texts(TEXTS, METADATAS, ids=["fr", "en", "es"], wait=True)
    found = await vs.asimilarity_search("hello", k=3, filter=Tag("lang") == "en")
    assert ids(found) == {"en"}

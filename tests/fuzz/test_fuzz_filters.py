"""Fuzzing the filter DSL: any value handed to `Tag`, `Num`, `Text` or `as_filter` gives a filter
or a `FilterError`; any filter tree translates for both backends or is refused; and, against a real
Redis 8, a filtered search returns exactly the documents a plain-Python evaluation of the same
filter selects, on RediSearch and on Vector Sets (no silent wrong result)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fuzzing import FUZZ
from hypothesis import assume, example, given
from hypothesis import strategies as st

from sluice.facade.client import Client
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.vectors import IndexSchema, MetadataField, Num, Tag, Text, VectorField
from sluice.vectors.filters import (
    And,
    Filter,
    FilterError,
    Not,
    NumRange,
    Or,
    TagIn,
    as_filter,
    to_search,
    to_vsets,
)
from support.settings import fast_settings
from support.workers import ThreadWorker

SCHEMA = IndexSchema(
    vector=VectorField(dims=8),
    metadata=(
        MetadataField(name="lang", type="tag"),
        MetadataField(name="year", type="numeric"),
        MetadataField(name="title", type="text"),
    ),
)
anything: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=5)
    | st.lists(st.text(max_size=5) | st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
    | st.sets(st.text(max_size=3), max_size=2)
    | st.builds(object)
)
OPERATORS = {"tag": ["==", "!="], "num": ["==", "!=", "<", "<=", ">", ">=", "between"], "text": ["%"]}
operations = st.sampled_from([(h, op) for h, ops in OPERATORS.items() for op in ops])


def build(handle: str, op: str, value: Any, other: Any) -> Filter:
    field: Any = {"tag": Tag("lang"), "num": Num("year"), "text": Text("title")}[handle]
    apply = {
        "==": lambda: field == value,
        "!=": lambda: field != value,
        "<": lambda: field < value,
        "<=": lambda: field <= value,
        ">": lambda: field > value,
        ">=": lambda: field >= value,
        "between": lambda: field.between(value, other),
        "%": lambda: field % value,
    }
    result = apply[op]()
    assert isinstance(result, Filter)
    return result


@FUZZ
@given(operations, anything, anything)
@example(("tag", "=="), None, None)
@example(("tag", "=="), 5, None)
@example(("tag", "=="), {"en": 1}, None)
@example(("num", "=="), 10**400, None)
@example(("num", "between"), 1, 10**400)
@example(("num", ">="), float("nan"), None)
def test_any_value_gives_a_filter_or_a_filter_error(
    operation: tuple[str, str], value: Any, other: Any
) -> None:
    try:
        flt = build(*operation, value, other)
    except FilterError as e:
        assert str(e)
        return
    for translate in (to_search, to_vsets):
        try:
            assert isinstance(translate(flt, SCHEMA), str)
        except FilterError as e:
            assert "Vector Sets" in str(e)  # only full-text match is refused, and only there


@FUZZ
@given(
    st.dictionaries(st.text(max_size=6) | st.sampled_from(["lang", "year", "title"]), anything, max_size=3)
    | anything
)
def test_as_filter_takes_a_mapping_or_refuses(value: Any) -> None:
    try:
        flt = as_filter(value, SCHEMA)
    except FilterError:
        return
    assert flt is None or isinstance(flt, Filter)
    if flt is not None:
        try:
            to_search(flt, SCHEMA)
            to_vsets(flt, SCHEMA)
        except FilterError as e:
            assert "not a field of this index" in str(e) or "Vector Sets" in str(e) or "used on a" in str(e)


# --- differential: Redis answers what plain Python answers --------------------------------------------

TAGS = ["en", "fr", "EN", "a b", "x-y", "c++", "ü", "@me", "1.5", "a|b", "q'\"", "*", "tab\there", "日本"]
YEARS = [-5, 0, 1, 2.5, 2020, 2021, 2022, 1e15, -0.001, 3.0, 123456789.125]


def _docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for i in range(40):
        lang: Any = TAGS[i % len(TAGS)] if i % 3 else [TAGS[i % len(TAGS)], TAGS[(i * 7) % len(TAGS)]]
        docs.append((f"doc {i} word{i}", {"lang": lang, "year": YEARS[i % len(YEARS)], "title": f"t{i}"}))
    return docs


DOCS = _docs()


def matches(node: Filter, metadata: dict[str, Any]) -> bool:
    """The reference semantics, in plain Python."""
    if isinstance(node, TagIn):
        value = metadata[node.field]
        held = set(value) if isinstance(value, list) else {value}
        return bool(held & set(node.values))
    if isinstance(node, NumRange):
        x = float(metadata[node.field])
        low_ok = x > node.low if node.low_open else x >= node.low
        high_ok = x < node.high if node.high_open else x <= node.high
        return low_ok and high_ok
    if isinstance(node, And):
        return all(matches(p, metadata) for p in node.parts)
    if isinstance(node, Or):
        return any(matches(p, metadata) for p in node.parts)
    assert isinstance(node, Not)
    return not matches(node.part, metadata)


numbers = (
    st.sampled_from([*YEARS, math.inf, -math.inf, 1e-300, 5e-324, 1e300])
    | st.integers(-(10**16), 10**16)
    | st.floats(allow_nan=False)
)
tag_values = st.sampled_from(TAGS) | st.text(
    st.characters(codec="utf-8", exclude_characters=","), min_size=1, max_size=4
).filter(
    lambda v: (
        v.strip(" \t\n\r\x0b\x0c") == v
        and not any(ord(c) < 32 or ord(c) == 127 for c in v if c not in "\t\n")
    )
)
"""Tag values a filter accepts (`Tag` refuses the rest); never the separator, which splits a stored tag."""
leaves = st.one_of(
    st.builds(lambda v: Tag("lang") == v, tag_values),
    st.builds(lambda vs: Tag("lang") == vs, st.lists(tag_values, min_size=1, max_size=3)),
    st.builds(lambda v: Tag("lang") != v, tag_values),
    st.builds(lambda v: Num("year") == v, numbers),
    st.builds(lambda v: Num("year") >= v, numbers),
    st.builds(lambda v: Num("year") > v, numbers),
    st.builds(lambda v: Num("year") <= v, numbers),
    st.builds(lambda v: Num("year") < v, numbers),
    st.builds(lambda a, b: Num("year").between(a, b), numbers, numbers),
)
trees = st.recursive(
    leaves,
    lambda inner: (
        st.builds(lambda a, b: a & b, inner, inner)
        | st.builds(lambda a, b: a | b, inner, inner)
        | st.builds(lambda a: ~a, inner)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module", params=["search", "vsets"])
def indexed(request: pytest.FixtureRequest, redis8: Any) -> Iterator[SluiceVectorStore]:
    """40 documents, every field present on each (backends differ on missing fields, as documented)."""
    settings = fast_settings(redis8.url, f"f{uuid.uuid4().hex[:8]}")
    embedders = {"hashing": settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": 8}})}
    client = Client(settings.model_copy(update={"embedders": embedders}))
    algorithm = "flat" if request.param == "search" else "hnsw"
    schema = SCHEMA.model_copy(update={"vector": VectorField(dims=8, algorithm=algorithm, ef_runtime=500)})
    with ThreadWorker(client.settings):
        store = client.vectorstore("fuzz", "hashing", schema=schema, backend=request.param)
        store.add_texts([t for t, _ in DOCS], [m for _, m in DOCS], ids=[f"d{i}" for i in range(len(DOCS))])
        store.flush()
        yield store
    client.close()


def hits_redisearch_knn_bug(node: Filter) -> bool:
    """RediSearch 2.10.5 answers a KNN query with NO documents when its pre-filter ANDs two (or more)
    ORs that each hold an AND matching nothing, e.g. `((en | (fr de)) (en | (fr de)))=>[KNN ...]`;
    the same filter without KNN is right. A server bug, pinned by `test_redisearch_knn_prefilter_bug`."""
    if isinstance(node, And):
        ors = [p for p in node.parts if isinstance(p, Or) and any(isinstance(q, And) for q in p.parts)]
        return len(ors) >= 2 or any(hits_redisearch_knn_bug(p) for p in node.parts)
    if isinstance(node, Or):
        return any(hits_redisearch_knn_bug(p) for p in node.parts)
    return isinstance(node, Not) and hits_redisearch_knn_bug(node.part)


def explain(flt: Filter) -> str:
    parts = []
    for translate in (to_search, to_vsets):
        try:
            parts.append(repr(translate(flt, SCHEMA)))
        except FilterError as e:
            parts.append(f"({e})")
    return " / ".join(parts)


@FUZZ
@given(trees)
@example(Tag("lang") == "a b")
@example(Tag("lang") == "tab\there")
@example(Num("year") == 1e15)
@example(Num("year") > -0.001)
@example(Num("year").between(1e-300, 5e-324))
@example(~(Num("year") < 2020) & (Tag("lang") != "x-y"))
def test_a_filtered_search_returns_exactly_what_python_selects(
    indexed: SluiceVectorStore, flt: Filter
) -> None:
    # Given a random filter, and a query that ranks every document (k = all of them)
    assume(not (indexed.session.backend_choice == "search" and hits_redisearch_knn_bug(flt)))
    query = indexed.embeddings.embed_query("doc word")
    # When Redis evaluates it (or the backend refuses, saying why: Vector Sets cannot write every number)
    try:
        found = {d.id for d in indexed.similarity_search_by_vector(query, k=len(DOCS), filter=flt)}
    except FilterError as e:
        assert "Vector Sets" in str(e) and indexed.session.backend_choice == "vsets"
        return
    # Then it selects exactly the documents the reference semantics selects
    expected = {f"d{i}" for i, (_, meta) in enumerate(DOCS) if matches(flt, meta)}
    assert found == expected, explain(flt)


@pytest.mark.xfail(strict=True, reason="RediSearch 2.10.5 bug: remove the assume() above once this passes")
@pytest.mark.parametrize("indexed", ["search"], indirect=True)
def test_redisearch_knn_prefilter_bug(indexed: SluiceVectorStore) -> None:
    en, fr, de = Tag("lang") == "en", Tag("lang") == "fr", Tag("lang") == "de"
    flt = (en | (fr & de)) & (en | (fr & de))  # == en, since no document is tagged both fr and de
    assert hits_redisearch_knn_bug(flt)
    found = {
        d.id
        for d in indexed.similarity_search_by_vector(indexed.embeddings.embed_query("doc"), k=40, filter=flt)
    }
    assert found == {f"d{i}" for i, (_, meta) in enumerate(DOCS) if matches(en, meta)}


def test_numbers_print_exactly() -> None:
    # Given the numbers a filter writes into a query, they parse back to the same float
    from sluice.vectors.filters import _num

    for x in [1e15, 5e-324, 1.7976931348623157e308, -0.0, 0.1, 123456789.125, 2.0**53 + 2]:
        assert float(_num(x)) == x or (math.isinf(x) and _num(x) in ("+inf", "-inf"))

"""Wildcard text filters against a real RediSearch: `Text(...) % "ba*"` and `Text(...).like("b?r")`
select exactly the documents a plain-Python match of the same pattern over their words selects,
as a KNN pre-filter; and the server's expansion limit, which the docs warn about, is pinned."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sluice.facade.client import Client
from sluice.facade.vectorstore import SluiceVectorStore
from sluice.vectors import IndexSchema, MetadataField, Text, VectorField
from sluice.vectors.filters import Filter, FilterError
from support.settings import fast_settings
from support.workers import ThreadWorker

TITLES = [
    "bar baz", "banana split", "foobar", "rebarbative", "hello-world", "Bakery", "ba", "b",
    "a*b star", "bar_code", "BRA bra", "Café au lait", "zebra", "abracadabra", "rab", "kbar 2020x",
]  # fmt: skip
SCHEMA = IndexSchema(
    vector=VectorField(dims=8, algorithm="flat"),
    metadata=(MetadataField(name="title", type="text"),),
)


STEMS = {"rebarbative": "rebarb", "bakery": "bakeri", "bar_code": "bar_cod"}
"""The English stems RediSearch indexes beside these titles' words (read with FT.DEBUG DUMP_TERMS)."""


def words(title: str) -> set[str]:
    """RediSearch's words of a text: split on punctuation and spaces (not `_`), lowercased."""
    return set(re.findall(r"\w+", title.lower()))


def selects(pattern: str, title: str) -> bool:
    """Some word matches; a pattern led by `*` may match a word's stem too (as documented)."""
    held = words(title)
    if pattern.startswith("*"):
        held |= {STEMS[w] for w in held if w in STEMS}
    return any(fnmatch.fnmatchcase(w, pattern.lower()) for w in held)


@pytest.fixture(scope="module")
def store(redis8: Any) -> Iterator[SluiceVectorStore]:
    settings = fast_settings(redis8.url, f"p{uuid.uuid4().hex[:8]}")
    embedders = {"hashing": settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": 8}})}
    client = Client(settings.model_copy(update={"embedders": embedders}))
    with ThreadWorker(client.settings):
        vs = client.vectorstore("patterns", "hashing", schema=SCHEMA, backend="search")
        vs.add_texts(TITLES, [{"title": t} for t in TITLES], ids=[f"t{i}" for i in range(len(TITLES))])
        vs.flush()
        yield vs
    client.close()


def found(store: SluiceVectorStore, flt: Filter) -> set[str]:
    query = store.embeddings.embed_query("anything")
    return {d.id or "" for d in store.similarity_search_by_vector(query, k=len(TITLES), filter=flt)}


def expected(pattern: str) -> set[str]:
    return {f"t{i}" for i, title in enumerate(TITLES) if selects(pattern, title)}


@pytest.mark.parametrize(
    "pattern",
    ["ba*", "*bar", "*bar*", "b*", "*a", "*b", "b*r", "ba?", "b?", "*?", "*ar", "caf*", "CAFÉ", "202*"],
)
def test_a_pattern_selects_the_documents_holding_a_matching_word(
    store: SluiceVectorStore, pattern: str
) -> None:
    # Given titles indexed as a text field / When filtered by a pattern (as a KNN pre-filter)
    result = found(store, Text("title").like(pattern))
    # Then exactly the titles with a word matching it, as plain Python matches it
    assert result == expected(pattern)
    if "?" not in pattern:  # the % form reads * the same way
        assert found(store, Text("title") % pattern) == result


def test_the_issue_example_prefix_finds_what_it_promised(store: SluiceVectorStore) -> None:
    # Given `Text("title") % "ba*"`, which once dropped the * and found nothing
    result = found(store, Text("title") % "ba*")
    # Then it finds every title with a word starting with "ba", and no other
    assert result == {"t0", "t1", "t5", "t6", "t9"}  # bar baz, banana, Bakery, ba, bar_code


def test_patterns_combine_with_words_and_negation(store: SluiceVectorStore) -> None:
    both = found(store, Text("title") % "bar b*z")
    assert both == {"t0"}
    every = {f"t{i}" for i in range(len(TITLES))}
    assert found(store, ~(Text("title") % "*bar*")) == every - expected("*bar*")
    assert found(store, Text("text") % "ban*") == {"t1"}  # the document text is a text field too


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="abrkz0*?", min_size=1, max_size=5))
@example("a?")
@example("*b*a*")
def test_any_pattern_selects_what_python_selects_or_is_refused(
    store: SluiceVectorStore, pattern: str
) -> None:
    try:
        flt = Text("title").like(pattern)
    except FilterError as e:  # refused: stars alone, or a leading ?
        assert set(pattern) == {"*"} or pattern.startswith("?"), e
        return
    assert found(store, flt) == expected(re.sub(r"\*+", "*", pattern))


def test_a_pattern_matches_at_most_maxprefixexpansions_words(redis8: Any, namespace: str) -> None:
    """Pins the server limit the `Text` docstring and the README warn about: a pattern expands to at
    most MAXPREFIXEXPANSIONS (200 by default) distinct words, and RediSearch 2.10 drops the rest
    without an error or a warning. If this fails, the server changed: update the docs."""
    settings = fast_settings(redis8.url, namespace)
    embedders = {"hashing": settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": 8}})}
    client = Client(settings.model_copy(update={"embedders": embedders}))
    titles = [f"zz{i:04d}" for i in range(250)]
    with ThreadWorker(client.settings):
        vs = client.vectorstore("expansions", "hashing", schema=SCHEMA, backend="search")
        vs.add_texts(titles, [{"title": t} for t in titles], wait=True)
        query = vs.embeddings.embed_query("zz")
        capped = vs.similarity_search_by_vector(query, k=250, filter=Text("title") % "zz*")
        narrower = vs.similarity_search_by_vector(query, k=250, filter=Text("title") % "zz01*")
    client.close()
    assert len(capped) == 200
    assert len(narrower) == 100  # a pattern under the limit is exact

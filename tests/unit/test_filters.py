"""The filter DSL: translation to RediSearch and Vector Sets, and refusals at build time."""

from __future__ import annotations

import pytest

from sluice.vectors import IndexSchema, MetadataField, Num, Tag, Text, VectorField
from sluice.vectors.filters import FilterError, to_search, to_vsets

SCHEMA = IndexSchema(
    vector=VectorField(dims=4),
    metadata=(
        MetadataField(name="lang", type="tag"),
        MetadataField(name="year", type="numeric"),
        MetadataField(name="title", type="text"),
    ),
)


def test_no_filter_matches_everything() -> None:
    assert to_search(None, SCHEMA) == "*"
    assert to_vsets(None, SCHEMA) is None


@pytest.mark.parametrize(
    ("flt", "search", "vsets"),
    [
        (Tag("lang") == "en", "@lang:{en}", '("en" in .lang)'),
        (Tag("lang") == ["en", "de"], "@lang:{en|de}", '("en" in .lang or "de" in .lang)'),
        (Tag("lang") != "en", "(-@lang:{en})", '(not ("en" in .lang))'),
        (Num("year") >= 2020, "@year:[2020 +inf]", "(.year >= 2020)"),
        (Num("year") > 2020, "@year:[(2020 +inf]", "(.year > 2020)"),
        (Num("year") < 2.5, "@year:[-inf (2.5]", "(.year < 2.5)"),
        (Num("year") <= 2020, "@year:[-inf 2020]", "(.year <= 2020)"),
        (Num("year") == 2020, "@year:[2020 2020]", "(.year == 2020)"),
        (Num("year").between(2018, 2020), "@year:[2018 2020]", "(.year >= 2018 and .year <= 2020)"),
    ],
)
def test_leaf_filters_translate_to_both_backends(flt: object, search: str, vsets: str) -> None:
    # Given a leaf filter / When translated / Then each backend gets its own syntax
    assert to_search(flt, SCHEMA) == search  # type: ignore[arg-type]
    assert to_vsets(flt, SCHEMA) == vsets  # type: ignore[arg-type]


def test_operators_combine_with_precedence_kept_by_parentheses() -> None:
    # Given (a & b) | ~c
    flt = ((Tag("lang") == "en") & (Num("year") >= 2020)) | ~(Tag("lang") == "fr")
    # Then both translations group exactly as written
    assert to_search(flt, SCHEMA) == "((@lang:{en} @year:[2020 +inf]) | (-@lang:{fr}))"
    assert to_vsets(flt, SCHEMA) == '((("en" in .lang) and (.year >= 2020)) or (not ("fr" in .lang)))'


def test_tag_values_are_escaped_for_redisearch_and_quoted_for_vector_sets() -> None:
    flt = Tag("lang") == 'a b-c"d'
    assert to_search(flt, SCHEMA) == '@lang:{a\\ b\\-c\\"d}'
    # Vector Sets strings have no escapes: the value is quoted with the quote it does not hold
    assert to_vsets(flt, SCHEMA) == "('a b-c\"d' in .lang)"


def test_text_match_is_redisearch_only() -> None:
    # Given a full-text filter
    flt = Text("title") % "Redis, fast!"
    # Then RediSearch matches the words, and Vector Sets refuses at build time
    assert to_search(flt, SCHEMA) == "@title:(redis fast)"  # lowercased: RediSearch folds only ASCII
    with pytest.raises(FilterError, match="Vector Sets cannot express"):
        to_vsets(flt, SCHEMA)


@pytest.mark.parametrize(
    ("flt", "search"),
    [
        (Text("title") % "ba*", "@title:(w'ba*')"),
        (Text("title") % "*bar", "@title:(w'*bar')"),
        (Text("title") % "*AR*", "@title:(w'*ar*')"),
        (Text("title") % "b*r", "@title:(w'b*r')"),
        (Text("title") % "b**", "@title:(w'b*')"),  # one letter is enough: no MINPREFIX in w'...'
        (Text("title") % "redis, ba*!", "@title:(redis w'ba*')"),
        (Text("title") % "what?", "@title:(what)"),  # a trailing ? is punctuation
        (Text("title").like("b?r*"), "@title:(w'b?r*')"),
        (Text("title").like("*?"), "@title:(w'*?')"),
        (Text("title").like("Café"), "@title:(café)"),
        (~(Text("title") % "ba*"), "(-@title:(w'ba*'))"),
    ],
)
def test_text_patterns_translate_to_redisearch_wildcards(flt: object, search: str) -> None:
    # Given a word with wildcards / When translated / Then RediSearch gets a w'...' pattern
    assert to_search(flt, SCHEMA) == search  # type: ignore[arg-type]
    with pytest.raises(FilterError, match="Vector Sets cannot express"):
        to_vsets(flt, SCHEMA)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Text("title") % "*", r"lone `\*` matches every word"),
        (lambda: Text("title") % "redis * fast", r"lone `\*`"),
        (lambda: Text("title") % "b?r", r"for a one-character wildcard use Text\('title'\).like"),
        (lambda: Text("title").like("two words"), "needs one word"),
        (lambda: Text("title").like("c++"), "needs one word"),
        (lambda: Text("title").like("it's"), "needs one word"),
        (lambda: Text("title").like(""), "needs one word"),
        (lambda: Text("title").like("**"), "lone"),
        (lambda: Text("title").like("??at"), "cannot start with `\\?`"),
        (lambda: Text("title").like(3), "needs one word"),
    ],
)
def test_text_patterns_it_cannot_match_are_refused_when_built(build: object, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        build()  # type: ignore[operator]


def test_the_document_text_field_is_a_text_field_for_hybrid_queries() -> None:
    assert to_search(Text("text") % "hello", SCHEMA) == "@text:(hello)"


def test_unknown_field_names_the_fields_of_the_index() -> None:
    with pytest.raises(FilterError, match=r"'color'.*not a field.*\['text', 'lang', 'year', 'title'\]"):
        to_search(Tag("color") == "red", SCHEMA)
    with pytest.raises(FilterError, match="not a field"):
        to_vsets(Num("size") > 1, SCHEMA)


def test_an_operator_of_the_wrong_field_type_is_refused() -> None:
    with pytest.raises(FilterError, match=r"Num\('lang'\) used on a tag field"):
        to_search(Num("lang") > 1, SCHEMA)
    with pytest.raises(FilterError, match=r"Tag\('year'\) used on a numeric field"):
        to_vsets(Tag("year") == "x", SCHEMA)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Tag("lang") == "",
        lambda: Tag("lang") == [],
        lambda: Num("year") >= "2020",
        lambda: Num("year").between(0, float("nan")),
        lambda: Text("title") % "...",
    ],
)
def test_bad_values_are_refused_when_the_filter_is_built(build: object) -> None:
    with pytest.raises(FilterError):
        build()  # type: ignore[operator]

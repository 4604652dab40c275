"""Filters written for redisvl and langchain-community, read into sluice's DSL (no server)."""

from __future__ import annotations

import warnings

import pytest
from redisvl.query import filter as rv

from sluice.vectors import IndexSchema, MetadataField, VectorField
from sluice.vectors.filters import FilterError, to_search, to_vsets
from sluice.vectors.foreign_filters import is_foreign, translate

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langchain_community.vectorstores.redis import filters as lc

SCHEMA = IndexSchema(
    vector=VectorField(dims=4),
    metadata=(
        MetadataField(name="category", type="tag"),
        MetadataField(name="num", type="numeric"),
        MetadataField(name="val", type="text"),
        MetadataField(name="ts", type="numeric"),
    ),
)


def sluice_query(expression: object) -> str:
    return to_search(translate(expression), SCHEMA)


@pytest.mark.parametrize(
    ("expression", "query"),
    [
        (rv.Tag("category") == "a", "@category:{a}"),
        (rv.Tag("category") == ["b", "c"], "@category:{b|c}"),
        (rv.Tag("category") != "a", "(-@category:{a})"),
        (rv.Tag("category") == "a b|c", "@category:{a\\ b\\|c}"),
        (rv.Num("num") > 2, "@num:[(2 +inf]"),
        (rv.Num("num") <= 2.5, "@num:[-inf 2.5]"),
        (rv.Num("num") != 2, "(-@num:[2 2])"),
        (rv.Num("num").between(1, 3, inclusive="left"), "@num:[1 (3]"),
        (rv.Timestamp("ts") > 1_700_000_000, "@ts:[(1700000000 +inf]"),
        (rv.Text("val") == "foo", "@val:(foo)"),
        (rv.Text("val") != "foo", "(-@val:(foo))"),
        (rv.Text("val") % "ba*", "@val:(w'ba*')"),
        (rv.Text("val") % "*powerful engine*", "@val:(w'*powerful' w'engine*')"),
        (rv.Text("val") == "Foo", "@val:(foo)"),
        (rv.Text("val") % "engineer|doctor", "(@val:(engineer) | @val:(doctor))"),
        ((rv.Tag("category") == "a") & (rv.Num("num") < 5), "(@category:{a} @num:[-inf (5])"),
        ((rv.Tag("category") == "a") | (rv.Num("num") < 5), "(@category:{a} | @num:[-inf (5])"),
    ],
)
def test_redisvl_expressions_mean_the_same_in_sluice(expression: object, query: str) -> None:
    # Given a redisvl expression / When read / Then sluice sends the same query
    assert is_foreign(expression)
    assert sluice_query(expression) == query


@pytest.mark.parametrize(
    ("expression", "query"),
    [
        (lc.RedisTag("category") == ["b", "c"], "@category:{b|c}"),
        (lc.RedisFilter.tag("category") != "a", "(-@category:{a})"),
        (lc.RedisNum("num") >= 1.5, "@num:[1.5 +inf]"),
        (lc.RedisFilter.num("num") != 2, "(-@num:[2 2])"),
        (lc.RedisText("val") == "foo", "@val:(foo)"),
        (lc.RedisText("val") % "ba*", "@val:(w'ba*')"),
        ((lc.RedisTag("category") == "a") & (lc.RedisNum("num") < 3), "(@category:{a} @num:[-inf (3])"),
    ],
)
def test_langchain_community_expressions_mean_the_same_in_sluice(expression: object, query: str) -> None:
    assert is_foreign(expression)
    assert sluice_query(expression) == query


def test_match_all_and_empty_parts_are_no_filter() -> None:
    # Given expressions that match everything (the peers render empty values as "*")
    assert translate(rv.FilterExpression("*")) is None
    assert translate(rv.Tag("category") == "") is None
    # When "*" is one side of an AND, the other side is the filter
    assert sluice_query((rv.Tag("category") == "") & (rv.Num("num") > 1)) == "@num:[(1 +inf]"


def test_query_strings_of_that_kind_are_read_too() -> None:
    assert sluice_query("@category:{red} -@num:[1 2]") == "(@category:{red} (-@num:[1 2]))"
    assert not is_foreign("@category:{red}") and not is_foreign({"category": "red"})


def test_the_peers_content_field_can_be_renamed_to_the_index_text_field() -> None:
    flt = translate(lc.RedisText("content") % "apples", {"content": "text"})
    assert to_search(flt, SCHEMA) == "@text:(apples)"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        (rv.Tag("category") % "te*", "tag wildcards"),
        (rv.Geo("loc") == rv.GeoRadius(-122.4, 37.7, 10, "km"), "no geo fields"),
        (rv.Tag("category").is_missing(), "ismissing"),
        (rv.Text("val") % "%%engine%%", "fuzzy"),
        (rv.Text("val") == "foo bar", "has 2 words"),
        ("hello", "free-text terms"),
        ("@category:{x", "not closed"),
        ("@num:[1 two]", "not a number"),
        (rv.FilterExpression(), "cannot be read"),
    ],
)
def test_what_sluice_cannot_express_is_refused_with_the_reason(expression: object, reason: str) -> None:
    with pytest.raises(FilterError, match=reason):
        translate(expression)


def test_a_translated_filter_is_checked_against_the_index_like_any_other() -> None:
    # Given a peer filter on a field the index lacks, or full text on Vector Sets
    with pytest.raises(FilterError, match="not a field of this index"):
        sluice_query(rv.Tag("colour") == "red")
    with pytest.raises(FilterError, match="Vector Sets cannot express"):
        to_vsets(translate(rv.Text("val") % "foo"), SCHEMA)
    # And a tag sluice could never match (surrounding whitespace) is refused as sluice's own is
    with pytest.raises(FilterError, match="cannot start or end with whitespace"):
        translate("@category:{a\\ }")

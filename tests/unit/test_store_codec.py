"""The LangGraph store's pure parts: namespace encoding, vector filters, texts to embed, jobs."""

from __future__ import annotations

import pytest
from langgraph.store.base import MatchCondition, PutOp

from sluice.facade import store_codec as codec
from sluice.stores import items


def test_namespaces_encode_so_that_a_prefix_of_labels_is_a_lexical_range() -> None:
    names = [("a",), ("a", "b"), ("a", "b", "c"), ("a-",), ("ab",), ("b",)]
    encoded = [items.encode_namespace(n) for n in names]
    assert sorted(encoded) == encoded  # index order = tuple order
    assert [items.decode_namespace(e) for e in encoded] == names
    start = items.encode_namespace(("a", "b"))
    inside = [e for e in encoded if start <= e < start[:-1] + "\x20"]
    assert [items.decode_namespace(e) for e in inside] == [("a", "b"), ("a", "b", "c")]
    for bad in [("",), ("a\x1fb",)]:
        with pytest.raises(ValueError):
            items.encode_namespace(bad)


def test_filters_become_vsim_expressions_or_say_why_not() -> None:
    assert items.vector_filter(None) == ""
    assert items.vector_filter({"tag": "keep", "n": {"$gte": 2, "$lt": 5}, "ok": True, "x": None}) == (
        '(.tag == "keep") and (.n >= 2) and (.n < 5) and (.ok == 1) and (.x == null)'
    )
    assert items.vector_filter({"s": 'say "hi"'}) == "(.s == 'say \"hi\"')"
    for bad, why in [
        ({"meta": {"lang": "en"}}, "without query"),
        ({"a-b": 1}, "identifiers"),
        ({"n": {"$in": [1]}}, "unknown filter operator"),
    ]:
        with pytest.raises(ValueError, match=why):
            items.vector_filter(bad)
    assert items.attributes(
        {"tag": "é", "n": 1.5, "nested": {"x": 1}, "bad key": 1, "inf": float("inf")}
    ) == ('{"tag":"é","n":1.5}')


def test_texts_to_embed_are_named_as_langgraph_names_them() -> None:
    value = {"title": "T", "parts": [{"text": "one"}, {"text": "two"}], "n": 3}
    assert codec.Fields.of(["title", "parts[*].text", "missing"]).texts(value) == [
        ("title", "T"),
        ("parts[*].text.0", "one"),
        ("parts[*].text.1", "two"),
    ]
    whole = codec.Fields.of(None).texts({"b": 1, "a": "x"})
    assert whole == [("$", '{"a": "x", "b": 1}')]


def test_a_put_becomes_a_job_with_texts_for_the_workers_or_the_apps_vectors() -> None:
    op = PutOp(("u", "ada"), "k", {"text": "hello"}, ttl=2.0)
    p = codec.put_payload(op, {"text": "hello"}, [("text", "hello")], None, "hashing")
    assert (p.namespace, p.key, p.ttl, p.texts, p.embedder, p.vectors) == (
        ["u", "ada"],
        "k",
        120.0,
        [("text", "hello")],
        "hashing",
        [],
    )
    p = codec.put_payload(op, {"text": "hello"}, [("text", "hello")], [[0.5, 1]], None)
    assert p.vectors == [("text", [0.5, 1.0])] and p.texts == []
    assert codec.delete_payload(PutOp(("u",), "k", None)).op == "delete"
    assert codec.target(("u", "ada")) == p.target_key() == "store:u\x1fada"


def test_namespace_conditions_match_as_in_langgraph() -> None:
    ns = ("users", "ada", "memories")
    assert codec.matches(MatchCondition("prefix", ("users", "*")), ns)
    assert codec.matches(MatchCondition("suffix", ("*", "memories")), ns)
    assert not codec.matches(MatchCondition("suffix", ("prefs",)), ns)
    assert not codec.matches(MatchCondition("prefix", ("users", "ada", "memories", "x")), ns)
    conditions = [MatchCondition("prefix", ("users", "*", "x")), MatchCondition("suffix", ("y",))]
    assert codec.literal_prefix(conditions) == ("users",)

"""Hybrid search without a server: fusion arithmetic, the two command shapes, reply parsing, and
the capability that picks FT.HYBRID."""

from __future__ import annotations

import math

import pytest

from sluice.connection.capabilities import ProbeReplies, parse_capabilities
from sluice.errors import ConfigError
from sluice.vectors import IndexSchema, MetadataField, Tag
from sluice.vectors.documents import Hit, pack
from sluice.vectors.hybrid import HybridQuery, fuse, hybrid_args, parse_hybrid, parse_scored, text_query

SCHEMA = IndexSchema.for_dims(2, MetadataField(name="lang", type="tag"))
VEC = [1.0, 0.0]


def hit(doc_id: str, distance: float = math.nan) -> Hit:
    return Hit(doc_id, f"text of {doc_id}", {}, distance)


def test_the_text_leg_matches_any_word_within_the_filter() -> None:
    q = HybridQuery("Reset my PASSWORD, please!", VEC, filter=Tag("lang") == "en")
    assert text_query(q, SCHEMA) == "(@text:(reset|my|password|please)) @lang:{en}"
    assert text_query(HybridQuery("a a A", VEC), SCHEMA) == "@text:(a)"
    assert text_query(HybridQuery("?!", VEC), SCHEMA) is None


def test_rrf_sums_reciprocal_ranks_over_the_legs() -> None:
    # Given "b" second in the text leg and first in the vector leg, "a" only first in the text leg
    q = HybridQuery("x", VEC, k=3)
    fused = fuse([(hit("a"), 9.0), (hit("b"), 5.0)], [hit("b", 0.1), hit("c", 0.2)], q, "cosine")
    # Then b = 1/62 + 1/61 leads, a (1/61) and c (1/62) follow, ties by id
    assert [(f.hit.doc_id, round(f.score, 6)) for f in fused] == [
        ("b", round(1 / 62 + 1 / 61, 6)),
        ("a", round(1 / 61, 6)),
        ("c", round(1 / 62, 6)),
    ]
    assert fused[0].hit.distance == 0.1 and math.isnan(fused[1].hit.distance)


def test_linear_weighs_the_best_scaled_text_score_against_similarity() -> None:
    q = HybridQuery("x", VEC, k=3, fusion="linear", text_weight=0.25)
    fused = fuse([(hit("a"), 8.0), (hit("b"), 4.0)], [hit("b", 0.2)], q, "cosine")
    scores = {f.hit.doc_id: f.score for f in fused}
    assert scores == pytest.approx({"a": 0.25 * 1.0, "b": 0.25 * 0.5 + 0.75 * 0.8})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fusion": "max"}, "fusion must be"),
        ({"text_weight": 1.5}, "text_weight must be between 0 and 1"),
        ({"rrf_constant": 0}, "rrf_constant must be positive"),
        ({"window": 2}, "window >= k"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HybridQuery("x", VEC, k=4, **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"no option \['alpha'\]"):
        HybridQuery.of("x", VEC, 4, None, None, {"alpha": 1})


def test_ft_hybrid_arguments_follow_the_documented_syntax() -> None:
    q = HybridQuery("zx81 refund", VEC, k=3, filter=Tag("lang") == "en", window=30)
    args = hybrid_args("ix", SCHEMA, q, "(@text:(zx81|refund)) @lang:{en}")
    assert args == (
        "FT.HYBRID", "ix", "SEARCH", "(@text:(zx81|refund)) @lang:{en}", "SCORER", "BM25STD",
        "VSIM", "@embedding", "$vec", "KNN", 4, "K", 30, "EF_RUNTIME", 100, "FILTER", "@lang:{en}",
        "COMBINE", "RRF", 4, "CONSTANT", 60.0, "WINDOW", 30,
        "LOAD", 4, "@_id", "@text", "@_meta", "@__score", "LIMIT", 0, 3,
        "PARAMS", 2, "vec", pack(VEC),
    )  # fmt: skip
    linear = hybrid_args("ix", SCHEMA, HybridQuery("x", VEC, fusion="linear", text_weight=0.4), "@text:(x)")
    assert linear[linear.index("COMBINE") : linear.index("LOAD")] == (
        "COMBINE", "LINEAR", 6, "ALPHA", 0.4, "BETA", 0.6, "WINDOW", 20,
    )  # fmt: skip
    assert "FILTER" not in linear and linear[linear.index("SCORER") + 1] == "BM25STD.NORM"


def test_ft_hybrid_replies_parse_in_resp2_and_resp3() -> None:
    row = [b"_id", b"d1", b"text", b"hello", b"_meta", b'{"lang":"en"}', b"__score", b"0.032"]
    resp2 = [b"total_results", 1, b"results", [row], b"warnings", [], b"execution_time", b"0.5"]
    resp3 = {
        b"total_results": 1,
        b"results": [dict(zip(row[::2], row[1::2], strict=True))],
        b"warnings": [b"w"],
    }
    for reply, warnings in ((resp2, []), (resp3, ["w"])):
        fused, said = parse_hybrid(reply, SCHEMA)
        assert [(f.hit.doc_id, f.hit.text, f.hit.metadata, f.score) for f in fused] == [
            ("d1", "hello", {"lang": "en"}, 0.032)
        ]
        assert said == warnings


def test_scored_search_replies_parse() -> None:
    reply = [2, b"k1", b"7.5", [b"_id", b"d1", b"text", b"a", b"_meta", b"{}"], b"k2", b"1", [b"text", b"b"]]
    assert [(h.doc_id, h.text, s) for h, s in parse_scored(reply, SCHEMA)] == [
        ("d1", "a", 7.5),
        ("k2", "b", 1.0),
    ]


@pytest.mark.parametrize(
    ("modules", "commands", "expected"),
    [
        ([[b"name", b"search", b"ver", 21005]], None, False),  # RediSearch 2.10 (the servers here)
        ([[b"name", b"search", b"ver", 80400]], None, True),  # Redis 8.4's
        (None, [[b"ft.search"], [b"ft.hybrid"]], True),  # MODULE LIST refused: COMMAND INFO says
        (None, [[b"ft.search"], None], False),
    ],
)
def test_the_hybrid_capability(modules: object, commands: object, expected: bool) -> None:
    info = b"# Server\r\nredis_version:8.2.3\r\nredis_mode:standalone\r\n"
    caps = parse_capabilities(ProbeReplies(info=info, modules=modules, commands=commands))
    assert caps.hybrid is expected and caps.search

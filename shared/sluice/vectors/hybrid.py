"""Hybrid search: BM25 over the document text fused with KNN, two ways to one answer (no I/O).

Where the server has ``FT.HYBRID`` (RediSearch of Redis >= 8.4, `Capabilities.hybrid`), one
command runs both legs and fuses them. Elsewhere the same round trip carries a pair of queries,
an ``FT.SEARCH ... SCORER BM25STD WITHSCORES`` over the text field and the KNN query, fused here:

- ``rrf`` (reciprocal rank fusion): ``sum(1 / (rrf_constant + rank))`` over the legs that found a
  document (rank 1 is the best), the default and what ``FT.HYBRID`` does by default;
- ``linear``: ``text_weight * text + (1 - text_weight) * vector``, the text score divided by the
  best text score of the window, the vector score the relevance (cosine similarity, or its unit-
  vector scale for l2 / ip); ``FT.HYBRID`` normalises BM25 itself (``BM25STD.NORM``), so linear
  scores of the two paths agree in order of magnitude, not to the digit.

Each leg returns at most `window` candidates; a filter narrows both legs. The text leg matches any
word of the query (an OR), so BM25 ranks documents by how many and how rare the shared words are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sluice.errors import ConfigError, SluiceError
from sluice.vectors.documents import Hit, pack, parse_hash_document
from sluice.vectors.filters import Filter, to_search
from sluice.vectors.schema import IndexSchema, Metric

Fusion = Literal["rrf", "linear"]
OPTIONS = ("fusion", "text_weight", "rrf_constant", "window")
SCORE = "__score"
MAX_WORDS = 64
"""Query words the text leg uses (the first ones); a longer query adds little to BM25 but cost."""
_WORDS = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class HybridQuery:
    """Text and vector of one query; `text` is the query as the user typed it."""

    text: str
    vector: Sequence[float]
    k: int = 4
    filter: Filter | None = None
    fusion: Fusion = "rrf"
    text_weight: float = 0.3
    rrf_constant: float = 60.0
    window: int | None = None
    ef_runtime: int | None = None

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "linear"):
            raise ConfigError(f"fusion must be 'rrf' or 'linear', not {self.fusion!r}")
        if not 0.0 <= self.text_weight <= 1.0:
            raise ConfigError(f"text_weight must be between 0 and 1, not {self.text_weight!r}")
        if self.rrf_constant <= 0:
            raise ConfigError(f"rrf_constant must be positive, not {self.rrf_constant!r}")
        if self.k < 1 or (self.window is not None and self.window < self.k):
            raise ConfigError(f"need k >= 1 and window >= k, got k={self.k}, window={self.window}")

    @classmethod
    def of(
        cls,
        text: str,
        vector: Sequence[float],
        k: int,
        flt: Filter | None,
        ef: int | None,
        options: Mapping[str, Any],
    ) -> HybridQuery:
        """A query from a search call's keyword options, refusing ones it does not know."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"hybrid search has no option {unknown}; it takes filter, ef_runtime, {list(OPTIONS)}"
            )
        given = {o: v for o, v in options.items() if v is not None}
        return cls(text=text, vector=vector, k=k, filter=flt, ef_runtime=ef, **given)

    @property
    def candidates(self) -> int:
        """Candidates per leg: `window`, by default the larger of k and 20 (FT.HYBRID's default)."""
        return self.window or max(self.k, 20)


@dataclass(frozen=True, slots=True)
class Fused:
    """A hybrid hit: the document (its `distance` is the vector distance where the vector leg found
    it, else NaN) and its fused score, higher is better."""

    hit: Hit
    score: float


def text_query(query: HybridQuery, schema: IndexSchema) -> str | None:
    """The text leg's query: any of the query's words in the text field, within the filter;
    None when the query has no words."""
    words = list(dict.fromkeys(w.lower() for w in _WORDS.findall(query.text)))[:MAX_WORDS]
    if not words:
        return None
    text = f"@{schema.text_field}:({'|'.join(words)})"
    flt = to_search(query.filter, schema)
    return text if flt == "*" else f"({text}) {flt}"


def similarity(metric: Metric, distance: float) -> float:
    """A distance as a relevance in [0, 1] (cosine similarity; a unit-vector scale for l2 / ip)."""
    scale = math.sqrt(2) if metric == "l2" else 1.0
    return min(1.0, max(0.0, 1.0 - distance / scale))


def fuse(
    text: Sequence[tuple[Hit, float]], vector: Sequence[Hit], query: HybridQuery, metric: Metric
) -> list[Fused]:
    """Fuse the text leg (hits with BM25 scores, best first) and the vector leg (nearest first)."""
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    best = max((s for _, s in text), default=0.0)
    for rank, (hit, score) in enumerate(text, start=1):
        hits[hit.doc_id] = Hit(hit.doc_id, hit.text, hit.metadata, math.nan)
        if query.fusion == "rrf":
            scores[hit.doc_id] = 1.0 / (query.rrf_constant + rank)
        else:
            scores[hit.doc_id] = query.text_weight * (score / best if best > 0 else 0.0)
    for rank, hit in enumerate(vector, start=1):
        hits[hit.doc_id] = hit
        if query.fusion == "rrf":
            part = 1.0 / (query.rrf_constant + rank)
        else:
            part = (1.0 - query.text_weight) * similarity(metric, hit.distance)
        scores[hit.doc_id] = scores.get(hit.doc_id, 0.0) + part
    ranked = sorted(scores, key=lambda d: (-scores[d], d))
    return [Fused(hits[d], scores[d]) for d in ranked[: query.k]]


def merge_fused(per_shard: Sequence[Sequence[Fused]], k: int) -> list[Fused]:
    """Top-k over shards by fused score, ties by id."""
    return sorted((f for shard in per_shard for f in shard), key=lambda f: (-f.score, f.hit.doc_id))[:k]


# --- the pair of queries ------------------------------------------------------------------------


def text_args(index: str, schema: IndexSchema, query: HybridQuery, text: str) -> tuple[Any, ...]:
    """FT.SEARCH of the text leg: BM25 (Redis 8's default scorer, by name for RediSearch 2.x)."""
    fields = ["_id", schema.text_field, "_meta"]
    return (
        "FT.SEARCH", index, text, "SCORER", "BM25STD", "WITHSCORES", "RETURN", len(fields), *fields,
        "LIMIT", 0, query.candidates, "DIALECT", 2,
    )  # fmt: skip


def parse_scored(reply: Sequence[Any], schema: IndexSchema) -> list[tuple[Hit, float]]:
    """Hits and scores of a RESP2 ``FT.SEARCH ... WITHSCORES`` reply, in reply order."""
    out = []
    for i in range(1, len(reply) - 2, 3):
        fields = _as_map(reply[i + 2])
        hit = parse_hash_document(fields, schema.text_field, _text(reply[i]))
        out.append((Hit(hit.doc_id, hit.text, hit.metadata, math.nan), float(reply[i + 1])))
    return out


# --- FT.HYBRID -----------------------------------------------------------------------------------


def hybrid_args(index: str, schema: IndexSchema, query: HybridQuery, text: str) -> tuple[Any, ...]:
    """``FT.HYBRID`` arguments (Redis >= 8.4), in the order redis-py's ``hybrid_search`` sends them."""
    v = schema.vector
    knn: list[Any] = ["K", query.candidates]
    if v.algorithm == "hnsw":
        knn += ["EF_RUNTIME", query.ef_runtime or v.ef_runtime]
    vsim: list[Any] = ["VSIM", f"@{v.name}", "$vec", "KNN", len(knn), *knn]
    flt = to_search(query.filter, schema)
    if flt != "*":
        vsim += ["FILTER", flt]
    if query.fusion == "rrf":
        combine: list[Any] = ["CONSTANT", query.rrf_constant, "WINDOW", query.candidates]
        scorer = "BM25STD"
    else:
        combine = ["ALPHA", query.text_weight, "BETA", 1.0 - query.text_weight, "WINDOW", query.candidates]
        scorer = "BM25STD.NORM"
    load = ["@_id", f"@{schema.text_field}", "@_meta", f"@{SCORE}"]
    return (
        "FT.HYBRID", index, "SEARCH", text, "SCORER", scorer, *vsim,
        "COMBINE", query.fusion.upper(), len(combine), *combine,
        "LOAD", len(load), *load, "LIMIT", 0, query.k,
        "PARAMS", 2, "vec", pack(query.vector, v.dtype),
    )  # fmt: skip


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_map(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {_text(k): v for k, v in value.items()}
    if isinstance(value, list | tuple) and len(value) % 2 == 0:
        return {_text(k): v for k, v in zip(value[::2], value[1::2], strict=True)}
    raise SluiceError(f"unexpected reply from the search module: {str(value)[:200]}")


def parse_hybrid(reply: Any, schema: IndexSchema) -> tuple[list[Fused], list[str]]:
    """Fused hits and warnings of an ``FT.HYBRID`` reply (RESP2 pairs or a RESP3 map)."""
    top = _as_map(reply)
    fused = []
    for row in top.get("results") or []:
        fields = _as_map(row)
        hit = parse_hash_document(fields, schema.text_field, _text(fields.get("__key", "")))
        fused.append(Fused(Hit(hit.doc_id, hit.text, hit.metadata, math.nan), float(fields.get(SCORE, 0.0))))
    return fused, [_text(w) for w in top.get("warnings") or []]

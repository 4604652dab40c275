"""Whether stored vectors can be copied instead of re-embedded (no I/O but the embedder's).

Vectors are copied when the target holds vectors of the same size under the same metric and,
where a settings embedder is named, when that embedder gives the same vectors for a sample of
the stored texts (cosine >= 0.99): copied vectors must live beside the ones queries and new
writes make. Otherwise the migration says why and re-embeds only with ``--re-embed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from langchain_core.embeddings import Embeddings

from sluice.migrate.keyspace import DTYPES
from sluice.migrate.records import VectorSpec
from sluice.vectors.schema import Algorithm, DType, Metric

METRICS: Final[dict[str, Metric]] = {"COSINE": "cosine", "L2": "l2", "IP": "ip"}
ALGORITHMS: Final[dict[str, Algorithm]] = {"FLAT": "flat", "HNSW": "hnsw"}
SAME_VECTOR: Final = 0.99
SAMPLE: Final = 5


@dataclass(frozen=True, slots=True)
class Fit:
    copy: bool
    reason: str


def metric_of(spec: VectorSpec) -> Metric | None:
    return METRICS.get(spec.metric)


def dtype_of(spec: VectorSpec) -> DType:
    """float16 stays float16; float32 and float64 are stored as float32."""
    return "float16" if spec.dtype == "FLOAT16" else "float32"


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm if norm else 0.0


def check(
    spec: VectorSpec | None,
    dims: int,
    metric: Metric,
    samples: Sequence[tuple[str, list[float]]],
    embedder: Embeddings | None = None,
    embedder_name: str | None = None,
) -> Fit:
    """Can `spec`'s vectors serve a target of `dims` dimensions under `metric`?"""
    if spec is None:
        return Fit(False, "the source has no vector field")
    if spec.dtype not in DTYPES:
        return Fit(False, f"the source stores {spec.dtype} vectors, which sluice cannot read back")
    if metric_of(spec) != metric:
        return Fit(False, f"the source measures {spec.metric} distance, the target {metric}")
    if spec.dims != dims:
        return Fit(False, f"the source holds {spec.dims}-dimensional vectors, the target {dims}")
    if embedder is None:
        return Fit(True, f"same size ({dims}) and metric ({metric})")
    picked = list(samples)[:SAMPLE]
    if not picked:
        return Fit(
            True,
            f"same size ({dims}) and metric ({metric}); no stored vector to compare with {embedder_name!r}",
        )
    if picked:
        theirs = embedder.embed_documents([t for t, _ in picked])
        if theirs and len(theirs[0]) != spec.dims:
            return Fit(
                False,
                f"embedder {embedder_name!r} gives {len(theirs[0])}-dimensional vectors, the source holds {spec.dims}",
            )
        worst = min(
            _cosine(v, w) if len(v) == len(w) else 0.0 for (_, v), w in zip(picked, theirs, strict=True)
        )
        if worst < SAME_VECTOR:
            return Fit(
                False,
                f"embedder {embedder_name!r} does not give the stored vectors (cosine {worst:.3f} on a sample): "
                "they were made by another model",
            )
    return Fit(
        True,
        f"same size ({dims}) and metric ({metric}), and embedder {embedder_name!r} gives the same vectors",
    )

"""The vector suite's data: a deterministic fake embedder over clustered vectors, and exact answers.

Imported by the driver and by sluice's worker processes (the embedder is named in their settings
as ``benchmarks.vectordata:ClusteredEmbeddings``), so it needs only numpy and langchain-core.
Every system embeds the same texts with this embedder: storage and search are compared, not
models. Vectors are centres plus noise (clustered, as real embeddings are), never pure noise,
on which every HNSW has near-zero recall at 384 dimensions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

CATEGORIES = 10  # a tag filter on one category keeps 10% of the documents
FILTER_CATEGORY = "c3"


def doc_text(i: int) -> str:
    return f"document {i:07d}"


def query_text(j: int) -> str:
    return f"question {j:06d}"


def category(i: int) -> str:
    """Independent of the clusters: a filter keeps 10% of every cluster."""
    return f"c{(i * 7919) % CATEGORIES}"


class ClusteredEmbeddings(Embeddings):
    """Text -> a unit vector near one of `centres` random centres, chosen by a hash of the text.

    The same text gives the same vector in every process. The noise (norm `spread` relative to
    the centre's) is the sum of two rows of a fixed pool picked by the hash, with signs: cheap
    (a few µs a text, so the embedder does not dominate what is measured) and distinct per text.
    """

    def __init__(
        self, dims: int = 384, centres: int = 200, spread: float = 0.6, seed: int = 7, pool: int = 4096
    ) -> None:
        self.dims = dims
        rng = np.random.default_rng(seed)
        c = rng.standard_normal((centres, dims))
        self.centres = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.pool = rng.standard_normal((pool, dims)) * (spread / np.sqrt(2 * dims))

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 unit vector per text, as rows."""
        hashes = [
            int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in texts
        ]
        h = np.array(hashes, dtype=np.uint64)
        n = np.uint64(len(self.pool))
        a, b = (h % n).astype(np.int64), ((h // n) % n).astype(np.int64)
        sign = np.where((h >> np.uint64(40)) & np.uint64(1), 1.0, -1.0)[:, None]
        v = (
            self.centres[(h % np.uint64(len(self.centres))).astype(np.int64)]
            + self.pool[a]
            + sign * self.pool[b]
        )
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.matrix(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.matrix([text])[0].tolist()  # type: ignore[no-any-return]


def exact_top_k(
    docs: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
) -> list[set[int]]:
    """Document numbers of the true k nearest (cosine) of every query, among `mask` if given."""
    scores = queries @ docs.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return [set(map(int, row)) for row in top]


def recall(found: Sequence[Sequence[int]], truth: Sequence[set[int]], k: int) -> float:
    """Mean recall@k over queries."""
    if not truth:
        return float("nan")
    return float(np.mean([len(set(f[:k]) & t) / k for f, t in zip(found, truth, strict=True)]))

"""A deterministic, offline embedder: hashed word and character n-grams (numpy only).

Use it for tests, demos and benchmarks where no model can be downloaded. It is *lexical*, not
semantic: texts that share words and spellings come out close, paraphrases with other words do
not (paraphrase cosine ~0.4, unrelated ~0.03; a useful cut-off is ~0.2). The same text gives
the same vector in every process and on every machine (no salted hashing, no randomness).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np
from langchain_core.embeddings import Embeddings

_WORD = re.compile(r"\w+", re.UNICODE)

WORD_WEIGHT = 1.0
BIGRAM_WEIGHT = 0.7
CHAR_WEIGHT = 0.35


def _features(text: str, char_ngrams: tuple[int, int]) -> Iterator[tuple[str, float]]:
    words = _WORD.findall(text.lower())
    low, high = char_ngrams
    for i, word in enumerate(words):
        yield "w" + word, WORD_WEIGHT
        if i:
            yield f"b{words[i - 1]} {word}", BIGRAM_WEIGHT
        padded = f"<{word}>"
        for n in range(low, high + 1):
            for start in range(len(padded) - n + 1):
                yield "c" + padded[start : start + n], CHAR_WEIGHT


class HashingEmbeddings(Embeddings):
    """Word unigrams and bigrams plus character n-grams, hashed into `dims` signed buckets, L2-normalised.

    Text without word characters maps to one fixed unit vector (never all zeros, which cosine
    search cannot rank).
    """

    def __init__(self, dims: int = 256, char_ngrams: tuple[int, int] = (3, 5)) -> None:
        if dims < 8:
            raise ValueError(f"dims must be at least 8, not {dims}")
        low, high = char_ngrams
        if not 1 <= low <= high:
            raise ValueError(f"char_ngrams must be (low, high) with 1 <= low <= high, not {char_ngrams}")
        self.dims = dims
        self.char_ngrams = (low, high)
        self._fallback = np.full(dims, 1.0 / np.sqrt(dims), dtype=np.float64)

    def vector(self, text: str) -> np.ndarray:
        """One text as a float64 unit vector."""
        buckets: list[int] = []
        weights: list[float] = []
        for feature, weight in _features(text, self.char_ngrams):
            h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
            buckets.append(h % self.dims)
            weights.append(weight if (h >> 63) & 1 else -weight)
        if not buckets:
            return self._fallback.copy()
        v = np.bincount(np.asarray(buckets), weights=np.asarray(weights), minlength=self.dims)
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else self._fallback.copy()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(t).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.vector(text)]

    def __repr__(self) -> str:
        return f"HashingEmbeddings(dims={self.dims}, char_ngrams={self.char_ngrams})"

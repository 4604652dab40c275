"""A Redis cache of computed embeddings, keyed by hash(embedder fingerprint, text).

The index worker embeds through it: texts seen before (re-indexing unchanged documents) cost one
pipelined read and no embeddings call; the rest go to the embedder in ONE call per batch.
Vectors are stored as float32 bytes with a TTL (`settings.vectors.embeddings_cache_ttl`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from sluice.keys import Keys
from sluice.settings import VectorSettings
from sluice.transport.translate import translate_errors


class EmbeddingsCache:
    """Use `embed(fingerprint, embedder, texts)` instead of `embedder.embed_documents(texts)`."""

    def __init__(self, redis: Any, keys: Keys, settings: VectorSettings | None = None) -> None:
        self._redis = redis
        self._keys = keys
        ttl = (settings or VectorSettings()).embeddings_cache_ttl
        self._ttl_ms = int(ttl * 1000) if ttl else None
        self.calls = 0  # embeddings calls made (a metric for tests and logs)

    def embed(self, fingerprint: str, embedder: Embeddings, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for `texts`, in order; at most one `embed_documents` call for the misses."""
        return [v.astype(float).tolist() for v in self.embed_arrays(fingerprint, embedder, texts)]

    def embed_arrays(self, fingerprint: str, embedder: Embeddings, texts: Sequence[str]) -> list[np.ndarray]:
        """As `embed`, as float32 arrays (what the index writes: no round trip through Python floats)."""
        unique = list(dict.fromkeys(texts))
        if not unique:
            return []
        keys = [self._keys.embedding(fingerprint, t) for t in unique]
        with translate_errors("read the embeddings cache"):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            cached = pipe.execute()
        found: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for text, raw in zip(unique, cached, strict=True):
            if raw:
                found[text] = np.frombuffer(raw, dtype=np.float32)
            else:
                missing.append(text)
        if missing:
            self.calls += 1
            vectors = embedder.embed_documents(missing)
            if len(vectors) != len(missing):
                raise ValueError(f"embedder returned {len(vectors)} vectors for {len(missing)} texts")
            rows = [np.asarray(v, dtype=np.float32) for v in vectors]
            with translate_errors("write the embeddings cache"):
                pipe = self._redis.pipeline(transaction=False)
                for text, row in zip(missing, rows, strict=True):
                    found[text] = row
                    pipe.set(self._keys.embedding(fingerprint, text), row.tobytes(), px=self._ttl_ms)
                pipe.execute()
        return [found[t] for t in texts]

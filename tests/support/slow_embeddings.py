"""A settings embedder that blocks: slow to build, slow to embed, and its async methods block
too (as a sync model wrapped carelessly would). For tests that the event loop stays free."""

from __future__ import annotations

import time

from sluice.embeddings.hashing import HashingEmbeddings


class SlowEmbeddings(HashingEmbeddings):
    def __init__(self, delay: float = 0.3, **kwargs: object) -> None:
        time.sleep(delay)  # loading a model
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._delay = delay

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        time.sleep(self._delay)
        return super().embed_documents(texts)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)  # blocks the loop if called on it

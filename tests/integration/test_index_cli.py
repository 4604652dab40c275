"""`sluice index create|info|drop|load` as an operator runs them, against a real Redis 8 and workers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.facade.client import Client
from sluice.settings import ComponentSpec
from sluice.vectors import Num
from sluice_workers.cli.main import main as sluice_main
from support.settings import fast_settings
from support.workers import ThreadWorker, worker_env

DIMS = 32
EMBEDDERS = {
    "hashing": {"import_path": "sluice.embeddings.hashing:HashingEmbeddings", "kwargs": {"dims": DIMS}}
}


@pytest.fixture
def client(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    settings = fast_settings(redis8.url, namespace)
    spec = settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": DIMS}})
    monkeypatch.setenv("SLUICE_REDIS__URL", redis8.url)
    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    monkeypatch.setenv("SLUICE_EMBEDDERS", json.dumps(EMBEDDERS))
    c = Client(settings.model_copy(update={"embedders": {"hashing": spec}}))
    yield c
    c.close()


def index(*args: str) -> int:
    return sluice_main(["index", *args])


def test_create_info_and_drop(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    # When an operator creates an index from flags (dims taken from the embedder)
    assert index("create", "docs", "--embedder", "hashing", "--tag", "lang", "--numeric", "year") == 0
    assert "created: search, 32-dim cosine hnsw float32, embedder hashing" in capsys.readouterr().out
    # Then creating it again is a no-op, and another schema is refused naming the difference
    assert index("create", "docs", "--embedder", "hashing", "--tag", "lang", "--numeric", "year") == 0
    assert "exists already" in capsys.readouterr().out
    assert index("create", "docs", "--embedder", "hashing", "--tag", "lang") == 2
    assert "metadata field 'year': in the index but not asked for" in capsys.readouterr().err
    # and info shows it
    assert index("info", "docs", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["backend"], data["embedder"], data["documents"], data["generation"]) == (
        "search",
        "hashing",
        0,
        1,
    )
    # When dropped (only with --yes)
    assert index("drop", "docs") == 2
    assert index("drop", "docs", "--yes") == 0
    assert index("info", "docs") == 2
    assert "no index 'docs'" in capsys.readouterr().err


def test_load_follows_documents_to_applied_and_lists_dead_letters(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file of 300 documents, one of which has a year that is not a number
    lines = [
        {"id": f"d{i}", "text": f"document number {i} about redis", "metadata": {"year": 2000 + i}}
        for i in range(300)
    ]
    lines[123]["metadata"] = {"year": "last year"}
    lines.append("a bare string is a document too")  # type: ignore[arg-type]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert index("create", "docs", "--embedder", "hashing", "--numeric", "year", "--backend", "vsets") == 0
    # When loaded in batches while a worker runs
    with ThreadWorker(client.settings):
        code = index("load", str(path), "--index", "docs", "--batch", "40")
    out = capsys.readouterr()
    # Then the bar counts applied documents, the summary names the failed job and its reason
    assert code == 1
    assert "documents indexed" in out.err and "/301 documents indexed" in out.err
    assert (
        "failed" in out.out and "FAILED job" in out.out and "numeric field but holds 'last year'" in out.out
    )
    store = client.vectorstore("docs", "hashing")
    applied = re.search(r"(\d+) of 301 documents indexed into 'docs'", out.out)
    assert applied is not None, out.out
    failed = 301 - int(applied.group(1))
    store.session.open(lambda: DIMS)
    assert store.session.count() == 301 - failed and 1 <= failed <= 40
    assert [d.id for d in store.get_by_ids(["d299"])] == ["d299"]
    assert {
        d.metadata["year"] for d in store.similarity_search("redis", k=5, filter=Num("year") >= 2290)
    } <= set(range(2290, 2300))


def test_load_refuses_a_bad_file_before_enqueueing(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": 42}\n')
    assert index("load", str(path), "--index", "docs", "--embedder", "hashing") == 2
    assert "line 2" in capsys.readouterr().err
    assert client.status().totals()["backlog"] == 0


def test_load_as_a_process_creates_the_index_with_the_embedder(
    redis8: Any, namespace: str, tmp_path: Path
) -> None:
    settings = fast_settings(redis8.url, namespace)
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "text": f"text {i}"}) + "\n" for i in range(50)))
    env = worker_env(settings, SLUICE_EMBEDDERS=json.dumps(EMBEDDERS))
    spec = ComponentSpec.model_validate(EMBEDDERS["hashing"])
    with ThreadWorker(settings.model_copy(update={"embedders": {"hashing": spec}})):
        done = subprocess.run(
            [sys.executable, "-m", "sluice_workers.cli.main", "index", "load", str(path), "--index", "p", "--embedder", "hashing"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "50 of 50 documents indexed into 'p'" in done.stdout


def test_create_from_a_schema_file(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sluice.vectors import IndexSchema, MetadataField

    path = tmp_path / "schema.json"
    path.write_text(
        IndexSchema.for_dims(DIMS, MetadataField(name="kind", type="tag"), algorithm="flat").model_dump_json()
    )
    assert index("create", "flat", "--schema", str(path), "--backend", "search") == 0
    assert (
        "32-dim cosine flat float32, embedder (the app), metadata fields kind:tag" in capsys.readouterr().out
    )
    path.write_text("{not json")
    assert index("create", "broken", "--schema", str(path)) == 2
    assert "--schema" in capsys.readouterr().err

"""A secret in embedder and model kwargs, end to end with a worker on real Redis: the worker's
embedder and model get the real key, and no log line (any level, tracebacks included), dead
letter or job failure shows it — also when the constructor's own error quotes the key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from langchain_core.language_models import BaseChatModel

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import JobFailed
from sluice.facade.client import Client
from sluice.jobs.models import CacheWarmPayload, IndexDocument, IndexPayload
from sluice.models.fake import EchoChatModel
from sluice.models.registry import ModelRegistry
from sluice.ops.deadletters import DeadLetters
from sluice.settings import RedisSettings, Settings, WorkerSettings
from sluice.vectors import IndexSchema
from support.settings import FAST_WORKER
from support.workers import ThreadWorker

SECRET = "sk-live-Qm4-never-shown"
DIMS = 16


class KeyedEmbeddings(HashingEmbeddings):
    """A hashing embedder that, like a hosted one, needs an API key; records the key it was given."""

    keys: ClassVar[list[Any]] = []

    def __init__(self, api_key: str, dims: int = DIMS) -> None:
        KeyedEmbeddings.keys.append(api_key)
        super().__init__(dims=dims)


def keyed_model(api_key: str) -> BaseChatModel:
    KeyedEmbeddings.keys.append(api_key)
    return EchoChatModel()


def refusing_embeddings(api_key: str) -> Any:
    raise TypeError(f"the provider refused the key {api_key}")


class RejectedEmbeddings(HashingEmbeddings):
    """Built fine; every call fails as a hosted API's 401 does, quoting the key it was sent."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        super().__init__(dims=DIMS)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise RuntimeError(f"Error code: 401 - Incorrect API key provided: {self.api_key}")


@pytest.fixture
def client(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    # Given the keys in the environment, as a deployment's Secret would set them
    KeyedEmbeddings.keys.clear()
    env = {
        "SLUICE_EMBEDDERS__KEYED__IMPORT_PATH": f"{__name__}:KeyedEmbeddings",
        "SLUICE_EMBEDDERS__KEYED__KWARGS__API_KEY": SECRET,
        "SLUICE_EMBEDDERS__REFUSING__IMPORT_PATH": f"{__name__}:refusing_embeddings",
        "SLUICE_EMBEDDERS__REFUSING__KWARGS__API_KEY": SECRET,
        "SLUICE_EMBEDDERS__REJECTED__IMPORT_PATH": f"{__name__}:RejectedEmbeddings",
        "SLUICE_EMBEDDERS__REJECTED__KWARGS__API_KEY": SECRET,
        "SLUICE_MODELS__KEYED__IMPORT_PATH": f"{__name__}:keyed_model",
        "SLUICE_MODELS__KEYED__KWARGS__API_KEY": SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        namespace=namespace,
        redis=RedisSettings(url=redis8.url),
        worker=WorkerSettings(**{**FAST_WORKER, "max_deliveries": 2}),
    )
    c = Client(settings)
    yield c
    c.close()


def test_the_worker_uses_the_key_and_never_shows_it(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    schema = IndexSchema.for_dims(DIMS)
    store = client.vectorstore("ix", HashingEmbeddings(dims=DIMS), embedder="keyed", schema=schema)
    store.session.open(lambda: DIMS)
    refusing = client.vectorstore("ix2", HashingEmbeddings(dims=DIMS), embedder="refusing", schema=schema)
    refusing.session.open(lambda: DIMS)
    rejected = client.vectorstore("ix3", HashingEmbeddings(dims=DIMS), embedder="rejected", schema=schema)
    rejected.session.open(lambda: DIMS)
    llm_string = ModelRegistry(client.settings.models).llm_string("keyed")
    KeyedEmbeddings.keys.clear()
    with ThreadWorker(client.settings):
        # When the worker embeds with the keyed embedder and answers with the keyed model
        done = client.enqueue(
            [
                IndexPayload(index="ix", upserts=[IndexDocument(id="a", text="hello")], embedder="keyed"),
                CacheWarmPayload(model="keyed", llm_string=llm_string, prompts=["hi"]),
            ],
            notify=True,
        )
        client.wait(done, 30)
        # And an embedder whose constructor quotes the key in its error
        [refused] = client.enqueue(
            [IndexPayload(index="ix2", upserts=[IndexDocument(id="b", text="x")], embedder="refusing")],
            notify=True,
        )
        with pytest.raises(JobFailed) as failed:
            client.wait([refused], 30)
        # And an embedder built fine whose every call fails quoting the key (retried, then dead)
        [rejected_job] = client.enqueue(
            [IndexPayload(index="ix3", upserts=[IndexDocument(id="c", text="y")], embedder="rejected")],
            notify=True,
        )
        with pytest.raises(JobFailed) as call_failed:
            client.wait([rejected_job], 30)
    # Then both got the real key
    assert KeyedEmbeddings.keys == [SECRET, SECRET]
    assert [d.page_content for d in store.similarity_search("hello", k=1)] == ["hello"]
    # And the failure says what failed, with the key masked, in the error, the dead letter and the logs
    assert "the provider refused the key **********" in failed.value.reason
    assert SECRET not in str(failed.value)
    assert "Incorrect API key provided: **********" in call_failed.value.reason
    assert SECRET not in str(call_failed.value)
    letters = list(DeadLetters(client.redis, client.keys).iter())
    assert len(letters) == 2 and not any(SECRET in repr(d) for d in letters)
    assert caplog.records and SECRET not in caplog.text
    assert not any(SECRET in r.getMessage() or SECRET in str(r.args) for r in caplog.records)

"""The vector the app computed is the vector stored: any `Embeddings` works, with no settings entry.

Real Redis 8 and a live worker. The embedders here are ones a worker cannot construct: a class that
exists only in this module (vectors of the hashing embedder turned by a random rotation chosen per
instance), and a stateful one that gives each word a random direction the first time it sees it.
Both are lexical (like the hashing embedder), so the labelled sample pairs texts that share words.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.outputs import Generation

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import ConfigError, JobFailed
from sluice.facade.client import Client
from sluice.facade.semantic_cache import SemanticCache
from sluice.jobs.models import CacheWarmPayload
from sluice.models.registry import ModelRegistry
from support.settings import fast_settings
from support.workers import ThreadWorker


class RotatedHashing(Embeddings):
    """App-only: hashing vectors under a random rotation drawn per instance (same size, other vectors)."""

    def __init__(self, dims: int = 256) -> None:
        self.base = HashingEmbeddings(dims=dims)
        rng = np.random.default_rng(int.from_bytes(os.urandom(8), "little"))
        self.rotation, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
        self.queries = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [(self.rotation @ self.base.vector(t)).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return self.embed_documents([text])[0]


FUNCTION_WORDS = frozenset(
    ["a", "do", "does", "how", "i", "in", "is", "my", "of", "on", "should", "the", "what", "which"]
)


class LearnedWords(Embeddings):
    """Stateful: a word's direction is drawn when this instance first sees it; a text is the sum of
    its content words' directions."""

    def __init__(self, dims: int = 128) -> None:
        self.dims = dims
        self.words: dict[str, np.ndarray] = {}
        self._rng = np.random.default_rng(int.from_bytes(os.urandom(8), "little"))

    def _word(self, word: str) -> np.ndarray:
        if word not in self.words:
            v = self._rng.normal(size=self.dims)
            self.words[word] = v / np.linalg.norm(v)
        return self.words[word]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            words = [w.strip("?.,!'").lower() for w in text.split()]
            words = [w for w in words if w not in FUNCTION_WORDS] or [""]
            v = sum((self._word(w) for w in words), np.zeros(self.dims))
            out.append((v / (np.linalg.norm(v) or 1.0)).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


STORED = {
    "How do I reset my password?": "reset",
    "What is the capital of France?": "france",
    "How long should I proof sourdough bread?": "sourdough",
    "Which planet has the tallest volcano?": "volcano",
    "How do I cancel my gym subscription?": "gym",
    "What time does the museum open on Sundays?": "museum",
}
QUERIES = [  # (asked, the answer it should get, or None for no cached answer)
    ("how do I reset my password", "reset"),
    ("What is the capital of France", "france"),
    ("how long should i proof sourdough bread", "sourdough"),
    ("which planet has the tallest volcano", "volcano"),
    ("How do I cancel my gym subscription", "gym"),
    ("what time does the museum open on sundays?", "museum"),
    ("Best pizza in Naples", None),
    ("How many legs does a spider have?", None),
    ("Explain quantum entanglement simply", None),
    ("Recommend a thriller novel for the beach", None),
]


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    # no settings embedder at all: the app's embeddings are all a semantic cache needs
    settings = fast_settings(redis8.url, namespace).model_copy(update={"embedders": {}})
    c = Client(settings)
    with ThreadWorker(c.settings):
        yield c
    c.close()


def fill(cache: SemanticCache, llm: str = "llm") -> None:
    for i, (prompt, answer) in enumerate(STORED.items()):
        if i % 2 == 0:  # LangChain's order: a lookup (a miss), the model, then the update
            assert cache.lookup(prompt, llm) is None
        cache.update(prompt, llm, [Generation(text=answer)])
    cache.flush()


def served(cache: SemanticCache, llm: str = "llm") -> list[tuple[str, str | None, str | None]]:
    out = []
    for query, expected in QUERIES:
        hit = cache.lookup_with_score(query, llm)
        out.append((query, expected, hit.generations[0].text if hit is not None else None))
    return out


@pytest.mark.parametrize("embeddings", [RotatedHashing, LearnedWords], ids=["app-only", "stateful"])
@pytest.mark.parametrize("backend", ["search", "vsets"])
def test_an_embedder_the_workers_cannot_build_serves_hits_and_never_another_answer(
    client: Client, embeddings: type[Embeddings], backend: str
) -> None:
    # Given a semantic cache with embeddings no worker can construct, and no settings embedder
    assert client.settings.embedders == {}
    cache = client.semantic_cache(embeddings(), backend=backend, distance_threshold=0.35)  # type: ignore[arg-type]
    # When prompts are stored (some after a lookup, some not) and the labelled sample is asked
    fill(cache)
    results = served(cache)
    # Then every served answer is the right one, and the paraphrases are served
    wrong = [(q, want, got) for q, want, got in results if got is not None and got != want]
    assert wrong == []
    hits = sum(1 for _, want, got in results if want is not None and got == want)
    assert hits == sum(1 for _, want in QUERIES if want is not None)


def test_a_fill_after_a_lookup_carries_the_lookups_vector(client: Client) -> None:
    # Given app embeddings that count their calls
    embeddings = RotatedHashing()
    cache = client.semantic_cache(embeddings)  # type: ignore[arg-type]
    # When LangChain's order runs: a lookup that misses, then the update
    assert cache.lookup("Where is the nearest pharmacy?", "llm") is None
    cache.update("Where is the nearest pharmacy?", "llm", [Generation(text="two streets down")])
    # Then the prompt was embedded once (no probe, no second embedding), and the entry is served
    assert embeddings.queries == 1
    assert cache.lookup("Where is the nearest pharmacy?", "llm") == [Generation(text="two streets down")]


async def test_async_fills_carry_the_apps_vector(client: Client) -> None:
    cache = client.semantic_cache(LearnedWords())  # type: ignore[arg-type]
    assert await cache.alookup("How do I reset my password?", "llm") is None
    await cache.aupdate("How do I reset my password?", "llm", [Generation(text="reset")])
    await cache.aupdate("Which planet has the tallest volcano?", "llm", [Generation(text="volcano")])
    hit = await cache.alookup_with_score("how do I reset my password", "llm")
    assert hit is not None and hit.generations == [Generation(text="reset")]
    await client.aclose()


def test_warming_a_cache_of_app_vectors_says_what_to_configure(client: Client) -> None:
    # Given a cache created without a settings embedder (its vectors are the app's)
    cache = client.semantic_cache(RotatedHashing(), name="apponly")  # type: ignore[arg-type]
    assert cache.lookup("warm me", "llm") is None
    # When a worker is asked to embed into it (cache-warm names an embedder)
    llm_string = ModelRegistry(client.settings.models).llm_string("fake")
    job = CacheWarmPayload(
        model="fake", llm_string=llm_string, prompts=["hello"], cache="apponly", embedder="x"
    )
    [handle] = client.enqueue([job], notify=True)
    # Then the job is refused with what to do instead
    with pytest.raises(JobFailed) as failed:
        client.wait([handle], 20)
    assert "holds the app's vectors" in failed.value.reason
    assert "embedder=NAME" in failed.value.reason and "SLUICE_EMBEDDERS" in failed.value.reason


def test_a_settings_embedder_that_disagrees_on_probe_texts_is_refused(redis8: Any, namespace: str) -> None:
    # Given a settings embedder of the same size as the app's embeddings, but other vectors
    client = Client(fast_settings(redis8.url, namespace))
    cache = client.semantic_cache(HashingEmbeddings(char_ngrams=(2, 4)), embedder="hashing")
    # When the cache is first used, then it is refused, naming what to configure
    with pytest.raises(ConfigError, match="disagree on 5 of 5 probe texts") as refused:
        cache.lookup("p", "llm")
    assert "Omit embedder=" in str(refused.value) and "SLUICE_EMBEDDERS" in str(refused.value)
    # And the matching embeddings pass the same check
    assert (
        client.semantic_cache(HashingEmbeddings(), embedder="hashing", name="ok").lookup("p", "llm") is None
    )
    client.close()


def test_an_unknown_settings_embedder_says_it_is_optional(client: Client) -> None:
    with pytest.raises(ConfigError, match="omit embedder="):
        client.semantic_cache(HashingEmbeddings(), embedder="openai")


def test_an_index_warmed_by_a_settings_embedder_checks_the_next_apps_embeddings(
    redis8: Any, namespace: str
) -> None:
    # Given a cache created with the settings embedder 'hashing' (warmed by workers)
    client = Client(fast_settings(redis8.url, namespace))
    assert client.semantic_cache(HashingEmbeddings(), embedder="hashing").lookup("p", "llm") is None
    # When another app instance opens it without naming an embedder, with embeddings that differ
    other = client.semantic_cache(RotatedHashing())  # type: ignore[arg-type]
    # Then it is refused: its vectors would not be comparable with the warmed ones
    with pytest.raises(ConfigError, match="disagree"):
        other.lookup("p", "llm")
    client.close()

"""The demo's steps: each pushes work through the streams, reads it back, and returns a `Step`
row for the summary table. `sluice demo` (cli/demo.py) runs them in order.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import resources
from typing import Any

from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage, HumanMessage

from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import SluiceError
from sluice.facade.client import Client
from sluice.jobs.models import CacheWarmPayload, IndexDocument
from sluice.models.prompts import cache_prompt, text_of
from sluice.models.registry import ModelRegistry
from sluice.queue.progress import Applied
from sluice.types import StreamEntryRef
from sluice.vectors import IndexSchema, MetadataField, Tag, VectorField, ingest
from sluice_workers.demo.agent import agent_memory
from sluice_workers.demo.step import Step

DEMO_MODEL = "fake"
DEMO_CACHE = "demo"


def _progress_line(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r  {label:<28} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def play_conversation(client: Client, turns: int) -> Step:
    step = Step("conversation (history-append)")
    history = client.chat_history("demo-session")
    history.clear()
    started = time.perf_counter()
    for i in range(turns):
        history.add_messages([HumanMessage(f"question {i}"), AIMessage(f"answer {i}")])
        step.jobs += 1
        t0 = time.perf_counter()
        read = history.messages  # waits for the session's queued appends, from any process
        step.latencies_ms.append((time.perf_counter() - t0) * 1000)
        _progress_line("conversation turns", i + 1, turns)
        expected = [x for k in range(i + 1) for x in (f"question {k}", f"answer {k}")]
        if [m.content for m in read] != expected:
            raise SluiceError(f"conversation read back out of order after turn {i}")
    step.seconds = time.perf_counter() - started
    step.note = f"{len(history.messages)} messages read back in order"
    return step


def _corpus() -> list[dict[str, Any]]:
    text = resources.files("sluice_workers.demo").joinpath("corpus.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _wait_with_progress(
    client: Client, handles: list[StreamEntryRef], label: str, timeout: float = 120
) -> None:
    """A progress bar of *applied* jobs (not merely enqueued ones)."""
    progress = Applied(client.redis, client.keys, client.settings.queue.group)
    progress.add(handles)
    done = progress.wait(
        timeout, lambda p: _progress_line(label, p.applied_units + p.failed_units, len(handles))
    )
    if progress.failed:
        ref, reason = next(iter(progress.failed.items()))
        raise SluiceError(
            f"{len(progress.failed)} {label} jobs were dead-lettered, e.g. {ref.entry_id}: {reason}"
        )
    if not done:
        raise SluiceError(f"{len(progress.left)} {label} jobs not applied after {timeout}s")


def index_corpus(client: Client, embedder: str) -> tuple[Step, Any]:
    step = Step("index corpus (index jobs)")
    docs = _corpus()
    dims = len(EmbedderRegistry(client.settings.embedders).get(embedder).embed_query("probe"))
    schema = IndexSchema(
        vector=VectorField(dims=dims),
        metadata=(
            MetadataField(name="topic", type="tag"),
            MetadataField(name="lang", type="tag"),
            MetadataField(name="year", type="numeric"),
        ),
    )
    store = client.vectorstore("demo-docs", embedder, schema=schema)
    store.add_texts(["warm-up"], ids=["warm-up"], wait=True)  # creates the index
    started = time.perf_counter()
    upserts = [IndexDocument(id=d["id"], text=d["text"], metadata=d["metadata"]) for d in docs]
    payloads = ingest.payloads(
        client.keys, client.settings.limits, "demo-docs", upserts=upserts, embedder=embedder, batch_size=25
    )
    handles = client.enqueue(payloads, notify=True)
    _wait_with_progress(client, handles, "index jobs applied")
    step.jobs = len(handles)
    step.seconds = time.perf_counter() - started
    step.note = f"{len(docs)} documents, embedder {embedder!r}"
    return step, store


def search_corpus(store: Any) -> Step:
    step = Step("search: filtered + MMR (sync reads)")
    queries = [
        "how do consumers recover messages",
        "bread needs a warm kitchen",
        "a galaxy far away",
        "validate input with models",
        "pruning roses in winter",
    ]
    hits = 0
    for q in queries:
        t0 = time.perf_counter()
        found = store.similarity_search(q, k=3, filter=Tag("lang") == "en")
        step.latencies_ms.append((time.perf_counter() - t0) * 1000)
        hits += bool(found)
        t0 = time.perf_counter()
        store.max_marginal_relevance_search(q, k=3, fetch_k=10)
        step.latencies_ms.append((time.perf_counter() - t0) * 1000)
        step.jobs += 0
    first = store.similarity_search(queries[0], k=1, filter=Tag("topic") == "redis")
    step.note = (
        f"{hits}/{len(queries)} queries answered; top redis hit: {first[0].page_content if first else '-'}"
    )
    return step


PROMPTS = [
    "How do I reset my password?",
    "What is the capital of France?",
    "How long should sourdough proof?",
    "Which planet has the tallest volcano?",
    "When should roses be pruned?",
    "What does XAUTOCLAIM do?",
    "How do I make a vinaigrette?",
    "Why is the Moon always showing the same face?",
]
PARAPHRASES = [  # (asked, the warmed prompt whose answer it should get); real rewordings for MiniLM
    ("I forgot my password, how can I reset it?", "How do I reset my password?"),
    ("Could you tell me the capital of France?", "What is the capital of France?"),
    ("On which planet is the highest volcano?", "Which planet has the tallest volcano?"),
    ("what is the right time to prune roses", "When should roses be pruned?"),
]
NEAR_MISSES = [  # close to a warmed prompt, but another question: never served its answer
    "Why is the Moon not always showing the same face?",
    "When should roses be planted?",
    "What is the capital of Spain?",
    "How do I reset my router?",
]


def warm_caches(client: Client, embedder: str | None) -> tuple[Step, str]:
    step = Step("warm LLM caches (cache-warm jobs)")
    llm_string = ModelRegistry(client.settings.models).llm_string(DEMO_MODEL)
    if embedder is not None:  # the app creates the semantic index on first use; workers fill it
        _semantic(client, embedder).lookup(cache_prompt("warm-up"), llm_string)
    payloads = [
        CacheWarmPayload(
            model=DEMO_MODEL,
            llm_string=llm_string,
            prompts=[cache_prompt(p)],
            cache=DEMO_CACHE,
            embedder=embedder,
        )
        for p in PROMPTS
    ]
    started = time.perf_counter()
    handles = client.enqueue(payloads, notify=True)
    _wait_with_progress(client, handles, "prompts warmed")
    step.jobs = len(handles)
    step.seconds = time.perf_counter() - started
    step.note = f"model {DEMO_MODEL!r} (deterministic, offline); one job per prompt"
    return step, llm_string


def exact_lookups(client: Client, llm_string: str) -> Step:
    step = Step("exact cache: LangChain calls (sync)")
    cache = client.llm_cache(name=DEMO_CACHE)
    model = ModelRegistry(client.settings.models).get(DEMO_MODEL)
    set_llm_cache(cache)
    try:
        hits = 0
        for p in PROMPTS:
            t0 = time.perf_counter()
            found = cache.lookup(cache_prompt(p), llm_string)
            step.latencies_ms.append((time.perf_counter() - t0) * 1000)
            hits += found is not None
            model.invoke(p)  # served from the cache: the model is not called again
    finally:
        set_llm_cache(None)
        cache.close()
    step.note = f"hit rate {hits}/{len(PROMPTS)}"
    return step


def _semantic(client: Client, embedder: str) -> Any:
    embeddings = EmbedderRegistry(client.settings.embedders).get(embedder)
    threshold = 0.35 if embedder == "minilm" else 0.45  # thresholds belong to an embedder
    return client.semantic_cache(embeddings, embedder=embedder, name=DEMO_CACHE, distance_threshold=threshold)


def _explained(asked: str, lookup: Any) -> str:
    if lookup.hit is not None:
        return f"  hit      {lookup.hit.distance:.2f}  {asked!r} -> {text_of(lookup.hit.prompt)!r}"
    if not lookup.considered:
        return f"  miss           {asked!r}: nothing of this model is stored"
    near = lookup.considered[0]
    why = f"the verifier: {near.reason}" if near.outcome == "refused" else f"{near.outcome}"
    return f"  refused  {near.distance:.2f}  {asked!r} ~ {text_of(near.prompt)!r} ({why})"


def semantic_lookups(client: Client, llm_string: str, embedder: str) -> Step:
    step = Step("semantic cache: paraphrases, near-misses")
    cache = _semantic(client, embedder)
    print(f"semantic cache ({embedder}, distance threshold {cache.distance_threshold}, built-in verifier):")
    served = refused = by_verifier = 0
    for asked, expected in PARAPHRASES:
        t0 = time.perf_counter()
        lookup = cache.lookup_with_score(cache_prompt(asked), llm_string, explain=True)
        step.latencies_ms.append((time.perf_counter() - t0) * 1000)
        served += lookup.hit is not None and text_of(lookup.hit.prompt) == expected
        print(_explained(asked, lookup))
    for asked in NEAR_MISSES:
        t0 = time.perf_counter()
        lookup = cache.lookup_with_score(cache_prompt(asked), llm_string, explain=True)
        step.latencies_ms.append((time.perf_counter() - t0) * 1000)
        refused += lookup.hit is None
        by_verifier += lookup.hit is None and any(c.outcome == "refused" for c in lookup.considered)
        print(_explained(asked, lookup))
    step.note = (
        f"paraphrases served {served}/{len(PARAPHRASES)}; near-misses refused {refused}/{len(NEAR_MISSES)} "
        f"({by_verifier} by the verifier)"
    )
    return step


MINILM = {"import_path": "sluice.embeddings.minilm:MiniLMEmbeddings"}


def demo_environment() -> dict[str, str]:
    """Variables that make the demo's client and workers know MiniLM by name, when it is installed
    (``sluice[embed]``, which ``make demo`` installs) and the environment names no embedders."""
    from sluice.embeddings import minilm
    from sluice.settings import Settings

    if "SLUICE_EMBEDDERS" in os.environ or not minilm.available():
        return {}
    embedders = {n: s.model_dump(mode="json") for n, s in Settings().embedders.items()}
    return {"SLUICE_EMBEDDERS": json.dumps({**embedders, "minilm": MINILM})}


def _demo_embedder(client: Client) -> str:
    from sluice.embeddings import minilm

    if minilm.available() and "minilm" in client.settings.embedders:
        return "minilm"
    return "hashing"


def run_steps(client: Client, turns: int) -> list[Step]:
    """Every step the Redis at hand supports, in order (vectors need RediSearch or Vector Sets)."""
    steps = [play_conversation(client, turns)]
    agent = agent_memory(client)
    if agent is not None:
        steps.append(agent)
    embedder: str | None = None
    if client.capabilities.vectors:
        embedder = _demo_embedder(client)
        if embedder == "hashing":
            print("embeddings: hashing (lexical, not semantic; pip install 'sluice[embed]' for MiniLM)")
        else:
            print("embeddings: minilm (all-MiniLM-L6-v2 int8 ONNX, offline, 384 dimensions)")
        indexed, store = index_corpus(client, embedder)
        steps += [indexed, search_corpus(store)]
    else:
        print("skipping vector steps: this Redis has neither RediSearch nor Vector Sets")
    warmed, llm_string = warm_caches(client, embedder)
    steps += [warmed, exact_lookups(client, llm_string)]
    if embedder is not None:
        steps.append(semantic_lookups(client, llm_string, embedder))
    return steps

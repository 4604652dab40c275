"""The systems of the checkpoints suite: sluice's checkpointer and store (a worker process applies
their jobs) and langgraph-checkpoint-redis 0.5.2 (`RedisSaver`, `RedisStore`: writes in the call),
plus the workload both get: checkpoint chains, pending writes, a 10-step graph, store items.

The peer is imported only when built, so a missing peer is reported as that system's error.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypedDict

import redis as redis_py
from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from pydantic import SecretStr

NAMESPACE = "benchlg"
KINDS = ["checkpoint", "store"]
PEER = "langgraph-checkpoint-redis"
WAIT = 600.0  # seconds a sluice read may wait for the workers (sizes where they embed for minutes)
EMBEDDERS = {
    "hashing": ("sluice.embeddings.hashing:HashingEmbeddings", 256),
    "minilm": ("sluice.embeddings.minilm:MiniLMEmbeddings", 384),
}


def embeddings_of(name: str) -> Embeddings:
    from sluice.embeddings.registry import EmbedderRegistry

    return EmbedderRegistry(settings_for("redis://unused", name).embedders).get(name)


def settings_for(url: str, embedder: str) -> Any:
    from sluice.settings import ComponentSpec, RedisSettings, Settings, WorkerSettings

    return Settings(
        namespace=NAMESPACE,
        redis=RedisSettings(url=SecretStr(url)),
        worker=WorkerSettings(kinds=KINDS, block_ms=100, batch_size=256),
        embedders={
            name: ComponentSpec(import_path=p) for name, (p, _) in EMBEDDERS.items() if name == embedder
        }
        | {"hashing": ComponentSpec(import_path=EMBEDDERS["hashing"][0])},
    )


def sluice_worker(url: str, embedder: str, stop: Any) -> None:
    from sluice_workers.runtime.process import run_process

    run_process(settings_for(url, embedder), 0, stop)


# --- the workload ---------------------------------------------------------------------------------
def message(thread: str, step: int) -> AnyMessage:
    text = f"step {step} of {thread}: the forecast says rain in the Alps on day {step % 7}; pack a jacket."
    return HumanMessage(text) if step % 2 == 0 else AIMessage(text * 2)


@dataclass
class Put:
    """One `put` of a chain: the config it extends, the checkpoint, its metadata and versions."""

    thread: str
    parent: str | None
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    versions: dict[str, Any]

    def config(self) -> dict[str, Any]:
        conf: dict[str, Any] = {"thread_id": self.thread, "checkpoint_ns": ""}
        if self.parent:
            conf["checkpoint_id"] = self.parent
        return {"configurable": conf}


def chain(saver: Any, thread: str, steps: int) -> list[Put]:
    """`steps` checkpoints of one thread, each adding a message (the state a chat agent keeps)."""
    from langgraph.checkpoint.base import empty_checkpoint

    puts: list[Put] = []
    versions: dict[str, Any] = {}
    messages: list[AnyMessage] = []
    parent: str | None = None
    for step in range(steps):
        messages = [*messages, message(thread, step)]
        versions = {
            "messages": saver.get_next_version(versions.get("messages"), None),
            "step": saver.get_next_version(versions.get("step"), None),
        }
        cp: Any = empty_checkpoint()
        cp["channel_values"] = {"messages": messages, "step": step}
        cp["channel_versions"] = dict(versions)
        cp["versions_seen"] = {"model": dict(versions)}
        puts.append(Put(thread, parent, cp, {"source": "loop", "step": step, "parents": {}}, dict(versions)))
        parent = cp["id"]
    return puts


def writes_of(thread: str, step: int) -> list[tuple[str, Any]]:
    return [("messages", [message(thread, step)]), ("step", step)]


class State(TypedDict):
    messages: list[AnyMessage]


def agent(checkpointer: Any, steps: int) -> Any:
    """A graph of `steps` super-steps: a model node answering with its step number, looping."""
    from langgraph.graph import END, START, StateGraph

    def model(state: State) -> State:
        n = len(state["messages"])
        return {"messages": [*state["messages"], AIMessage(f"step {n}: still thinking about the Alps")]}

    def more(state: State) -> str:
        return END if len(state["messages"]) > steps else "model"

    builder = StateGraph(State)
    builder.add_node("model", model)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", more)
    return builder.compile(checkpointer=checkpointer)


TOPICS = [
    "hiking", "cooking", "redis", "python", "music", "gardening", "finance", "travel", "chess", "weather",
    "cycling", "poetry", "physics", "movies", "coffee", "sailing", "painting", "history", "football", "birds",
]  # fmt: skip


def item_text(rng: random.Random, topic: int) -> str:
    """Words of one topic and a few of others: clustered vectors, as real notes are."""
    words = [f"{TOPICS[topic]}{rng.randrange(12)}" for _ in range(10)]
    words += [f"{TOPICS[rng.randrange(len(TOPICS))]}{rng.randrange(12)}" for _ in range(3)]
    return " ".join(words)


def items(n: int, groups: int, seed: int = 7) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    return [
        (f"k{i}", {"text": item_text(rng, rng.randrange(len(TOPICS))), "group": i % groups}) for i in range(n)
    ]


def queries(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [item_text(rng, rng.randrange(len(TOPICS))) for _ in range(n)]


class Remembered(Embeddings):
    """An embedder that embeds each text once, then answers from memory: a search timed with it
    measures the search alone (the query vectors were computed before, untimed)."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.known: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        todo = [t for t in texts if t not in self.known]
        if todo:
            self.known.update(zip(todo, self.inner.embed_documents(todo), strict=True))
        return [self.known[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


# --- the systems ---------------------------------------------------------------------------------
class Sluice:
    """`client.checkpointer()` and `client.store(...)`, defaults; a spawned worker process applies."""

    name = "sluice"

    def __init__(self, url: str, embedder: str) -> None:
        from sluice.facade.client import Client

        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.proc = ctx.Process(target=sluice_worker, args=(url, embedder, self.stop))
        self.proc.start()
        self.client = Client(settings_for(url, embedder))
        self.saver = self.client.checkpointer(wait_timeout=WAIT)
        self.embedder = embedder

    def store(self, dims: int, embed: Embeddings | str) -> Any:
        # a long wait: the read after the last put waits for the workers to embed every item
        return self.client.store(index={"dims": dims, "embed": embed, "fields": ["text"]}, wait_timeout=WAIT)

    def settle_threads(self, threads: Sequence[str]) -> None:
        for t in threads:
            self.saver.flush(t)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The worker stopped (SIGSTOP) meanwhile: on a small machine it would otherwise take the
        app's CPU while the app's own cost is timed (in production it runs elsewhere)."""
        assert self.proc.pid is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.client.close()
        self.stop.set()
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)


class Peer:
    """langgraph-checkpoint-redis: `RedisSaver` and `RedisStore` (their defaults)."""

    name = PEER

    def __init__(self, url: str) -> None:
        from langgraph.checkpoint.redis import RedisSaver

        self.redis = redis_py.Redis.from_url(url)
        self.saver = RedisSaver(redis_client=self.redis)
        self.saver.setup()
        self._stores: list[Any] = []

    def store(self, dims: int, embed: Embeddings) -> Any:
        from langgraph.store.redis import RedisStore

        store = RedisStore(self.redis, index={"dims": dims, "embed": embed, "fields": ["text"]})
        store.setup()
        self._stores.append(store)
        return store

    def settle_threads(self, threads: Sequence[str]) -> None:
        """Nothing to wait for: its writes are done when `put` returns."""

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Nothing runs beside it."""
        yield

    def close(self) -> None:
        self.redis.close()


def unique_thread(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


Factory = Callable[[str, str], Any]
FACTORIES: dict[str, Factory] = {"sluice": Sluice, PEER: lambda url, _embedder: Peer(url)}

"""The systems of the cache suite, each behind one small adapter, and the sluice worker processes.

Every adapter's lookup takes ``(prompt, llm_string)`` and returns LangChain generations (or
None), so every system is timed through the same call and its answer is checked the same way.
Peers are built with their documented constructors on a plain redis-py client of the same
server; none of them is tuned beyond what its users would write.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis as redis_py
from langchain_core.outputs import Generation
from pydantic import SecretStr

from sluice.keys import digest
from sluice.stores import generations as codec

NAMESPACE = "bench-caches"
LookupFn = Callable[[str, str], Sequence[Generation] | None]
UpdateFn = Callable[[str, str, list[Generation]], Any]

LABELS = {
    "sluice": "sluice `llm_cache()`",
    "sluice-local": "sluice `llm_cache(local_cache=N)`, hot",
    "sluice-sync": "sluice `llm_cache(write='sync')`",
    "raw-get": "raw redis-py GET (no decode)",
    "raw": "raw redis-py GET + decode",
    "raw-set": "raw redis-py SET (pre-encoded)",
    "langchain-redis": "langchain-redis `RedisCache`",
    "langchain-community": "langchain-community `RedisCache`",
    "sluice-busy": "sluice `llm_cache()`, 2 workers applying meanwhile",
    "sluice-semantic": "sluice `semantic_cache()` (HNSW)",
    "sluice-semantic-busy": "sluice `semantic_cache()`, 2 workers applying meanwhile",
    "langchain-redis-semantic": "langchain-redis `RedisSemanticCache` (FLAT)",
    "redisvl": "redisvl `SemanticCache` (FLAT)",
}
PEER_MODULES = {
    "langchain-redis": "langchain_redis",
    "langchain-community": "langchain_community.cache",
    "langchain-redis-semantic": "langchain_redis",
    "redisvl": "redisvl.extensions.cache.llm",
}
INSTALL = "pip install 'sluice[bench]'   (langchain-redis, langchain-community, redisvl)"


def missing_peer(system: str) -> str | None:
    """Why a peer cannot run here (its package is not importable), or None."""
    module = PEER_MODULES.get(system)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError as e:
        return f"{LABELS[system]} skipped ({e}); install the peers with: {INSTALL}"
    return None


# --- exact caches ---------------------------------------------------------------------------------
def raw_entry_decoder(version_width: int) -> Callable[[bytes | str | None], list[Generation] | None]:
    """What an app hand-rolling the cache would do with the value sluice stores: strip, parse, build."""

    def decode(raw: bytes | str | None) -> list[Generation] | None:
        return None if raw is None else codec.decode(raw[version_width + 1 :])

    return decode


def langchain_redis_exact(url: str) -> Any:
    from langchain_redis import RedisCache

    return RedisCache(redis_client=redis_py.Redis.from_url(url), prefix="bench_lcr")


def langchain_community_exact(url: str) -> Any:
    from langchain_community.cache import RedisCache

    return RedisCache(redis_py.Redis.from_url(url))  # never call its clear(): it runs FLUSHDB


# --- semantic caches ------------------------------------------------------------------------------
def langchain_redis_semantic(url: str, embeddings: Any, threshold: float) -> Any:
    from langchain_redis import RedisSemanticCache

    return RedisSemanticCache(
        embeddings=embeddings,
        redis_client=redis_py.Redis.from_url(url),
        distance_threshold=threshold,
        name="bench_lcr_semantic",
    )


@dataclass
class RedisvlCache:
    """redisvl's `SemanticCache` used as an LLM cache: the model is a tag filter inside the query,
    the answer is stored as the same generations JSON sluice stores, and decoded the same way."""

    cache: Any
    embeddings: Any

    @classmethod
    def build(cls, url: str, embeddings: Any, threshold: float) -> RedisvlCache:
        from redisvl.extensions.cache.llm import SemanticCache  # type: ignore[import-untyped]
        from redisvl.utils.vectorize import CustomVectorizer  # type: ignore[import-untyped]

        cache = SemanticCache(
            name="bench_rvl",
            distance_threshold=threshold,
            vectorizer=CustomVectorizer(embed=embeddings.embed_query),
            filterable_fields=[{"name": "llm", "type": "tag"}],
            redis_client=redis_py.Redis.from_url(url),
        )
        return cls(cache, embeddings)

    def lookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        from redisvl.query.filter import Tag  # type: ignore[import-untyped]

        hits = self.cache.check(
            vector=self.embeddings.embed_query(prompt),
            num_results=1,
            filter_expression=Tag("llm") == digest(llm_string),
        )
        return codec.decode(hits[0]["response"]) if hits else None

    def update(self, prompt: str, llm_string: str, generations: list[Generation]) -> None:
        self.cache.store(
            prompt=prompt,
            response=codec.encode(generations),
            vector=self.embeddings.embed_query(prompt),
            filters={"llm": digest(llm_string)},
        )


# --- sluice worker processes ----------------------------------------------------------------------
def bench_settings(
    url: str, namespace: str, kinds: Sequence[str], governor: dict[str, Any] | None = None, **worker: Any
) -> Any:
    """`governor`: `GovernorSettings` fields (the foreground suite's duty cycles; default settings if None)."""
    from sluice.settings import GovernorSettings, RedisSettings, Settings, WorkerSettings

    return Settings(
        namespace=namespace,
        redis=RedisSettings(url=SecretStr(url)),
        worker=WorkerSettings(kinds=list(kinds), block_ms=100, **worker),
        governor=GovernorSettings(**(governor or {})),
    )


def _worker_main(
    url: str,
    namespace: str,
    kinds: list[str],
    worker: dict[str, Any],
    nice: int,
    cpus: Sequence[int] | None,
    index: int,
    stop: Any,
) -> None:
    import os

    from sluice_workers.runtime.process import run_process

    if nice:
        os.nice(nice)  # a lower CPU priority than the app and Redis on a shared machine
    if cpus:
        os.sched_setaffinity(0, cpus)
    run_process(bench_settings(url, namespace, kinds, **worker), index, stop)


class Workers:
    """`n` real sluice worker processes (spawned, default handlers) for the length of a `with`."""

    def __init__(
        self,
        url: str,
        namespace: str,
        kinds: Sequence[str],
        n: int = 2,
        *,
        nice: int = 0,
        cpus: Sequence[int] | None = None,
        **worker: Any,
    ) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._procs = [
            ctx.Process(
                target=_worker_main, args=(url, namespace, list(kinds), worker, nice, cpus, i, self._stop)
            )
            for i in range(n)
        ]

    def __enter__(self) -> Workers:
        for p in self._procs:
            p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for p in self._procs:
            p.join(30)
        for p in self._procs:
            if p.is_alive():
                p.terminate()
                p.join(10)


# --- the sluice side ------------------------------------------------------------------------------
def client_for(url: str, namespace: str = NAMESPACE) -> Any:
    from sluice.facade.client import Client

    return Client.from_url(url, namespace=namespace)


def wait_for_workers(client: Any, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while client.status().totals()["workers"] < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} sluice worker processes did not start within {timeout:.0f}s")
        time.sleep(0.1)


def drain(client: Any, timeout: float) -> float:
    """Wait until every job is applied (XACKDEL leaves the streams empty); the monotonic time then."""
    deadline = time.monotonic() + timeout
    while True:
        totals = client.status().totals()
        now = time.monotonic()
        if not totals["backlog"] and not totals["pending"]:
            return now
        if now > deadline:
            raise RuntimeError(f"jobs still unapplied after {timeout:.0f}s: {totals}")
        time.sleep(0.05)

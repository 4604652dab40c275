"""Outages longer than max_deliveries x visibility_timeout, with jobs pending: a hung Redis
(SIGSTOP) and a full one (maxmemory under noeviction). Healthy jobs must not be taken for poison:
after recovery there are no dead letters and every job is applied once, in order.

Each test runs its own server (stopped by pid by the factory) and bounds its own time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis as redis_py

from sluice.facade.client import Client
from sluice.jobs.codec import Job
from sluice.jobs.models import HistoryAppendPayload
from sluice.ops.deadletters import DeadLetters
from sluice.stores.history import HistoryStore
from sluice_workers.handlers.base import Failures, Handler
from sluice_workers.handlers.registry import build_handlers
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until

SESSIONS = 10
JOBS = 300
MAX_DELIVERIES = 2
VISIBILITY = 1.0
OUTAGE = 3 * MAX_DELIVERIES * VISIBILITY  # well past max_deliveries x visibility_timeout


def append(session: str, text: str) -> HistoryAppendPayload:
    return HistoryAppendPayload(session_id=session, messages=[{"type": "human", "data": {"content": text}}])


class Slow:
    """The real history handler, slowed down so that the outage finds entries in hand."""

    kind = "history-append"

    def __init__(self, inner: Handler) -> None:
        self.inner = inner

    def handle(self, jobs: Sequence[Job]) -> Failures:
        time.sleep(0.02)
        return self.inner.handle(jobs)


def _settings(url: str, namespace: str) -> Any:
    settings = fast_settings(
        url,
        namespace,
        max_deliveries=MAX_DELIVERIES,
        visibility_timeout=VISIBILITY,
        batch_size=8,
        concurrency=4,
        reclaim_interval=0.2,
    )
    return settings.model_copy(
        update={
            "redis": settings.redis.model_copy(update={"socket_timeout": 0.5, "socket_connect_timeout": 0.5})
        }
    )


def _check_all_applied_once(client: Client) -> None:
    store = HistoryStore(client.redis, client.keys)
    for s in range(SESSIONS):
        got = [str(m.content) for m in store.read(f"s{s}")]
        assert got == [str(i) for i in range(s, JOBS, SESSIONS)], f"session s{s}"
    assert DeadLetters(client.redis, client.keys).count() == 0


def test_a_hung_redis_longer_than_the_poison_budget_dead_letters_nothing(
    redis_factory: Any, namespace: str
) -> None:
    server = redis_factory.redis(8)
    settings = _settings(server.url, namespace)
    with Client(fast_settings(server.url, namespace)) as client:
        handlers = build_handlers(client.redis, settings, cluster=False)
        handles = client.enqueue([append(f"s{i % SESSIONS}", str(i)) for i in range(JOBS)])
        with ThreadWorker(
            settings, handlers={**handlers, "history-append": Slow(handlers["history-append"])}
        ):
            wait_until(lambda: client.status().totals()["pending"] > 0, 10, "entries in hand")
            server.pause()
            try:
                time.sleep(OUTAGE)
            finally:
                server.resume()
            client.wait(handles, timeout=60)
        _check_all_applied_once(client)


def test_a_full_redis_longer_than_the_poison_budget_dead_letters_nothing(
    redis_factory: Any, namespace: str
) -> None:
    server = redis_factory.redis(8, config=["maxmemory-policy noeviction"])
    settings = _settings(server.url, namespace)
    with Client(fast_settings(server.url, namespace)) as client:
        handlers = build_handlers(client.redis, settings, cluster=False)
        handles = client.enqueue([append(f"s{i % SESSIONS}", str(i)) for i in range(JOBS)])
        admin = server.client()
        with ThreadWorker(
            settings, handlers={**handlers, "history-append": Slow(handlers["history-append"])}
        ):
            wait_until(lambda: client.status().totals()["pending"] > 0, 10, "entries in hand")
            # Set the limit below what Redis holds: every write a handler makes is refused (OOM)
            admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) - 200_000)
            try:
                admin.set("probe", "x")
                raise AssertionError("Redis accepted a write above maxmemory")
            except redis_py.exceptions.OutOfMemoryError:
                pass
            time.sleep(OUTAGE)
            assert DeadLetters(client.redis, client.keys).count() == 0
            # When memory is freed
            admin.config_set("maxmemory", 0)
            client.wait(handles, timeout=60)
        _check_all_applied_once(client)

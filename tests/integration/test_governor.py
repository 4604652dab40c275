"""The governor of the server time workers take (DESIGN rule 7): a bucket shared by all worker
processes, backoff while the apps' lookups slow down, and no throttling without readers.

Behaviour, not speed: budgets are checked in the server-milliseconds the bucket was paid and in
the server's own command statistics, never by timing a run against a wall-clock limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py

from sluice.facade.client import Client
from sluice.ops import governor
from sluice.settings import GovernorSettings, Settings
from sluice.vectors import IndexSchema
from sluice_workers.cli.status import render
from support.settings import fast_settings
from support.workers import ProcessWorker, worker_env

DIMS = 256  # the "hashing" embedder's default


def settings_for(url: str, namespace: str, **gov: Any) -> Settings:
    base = fast_settings(url, namespace, kinds=["index"])
    return base.model_copy(update={"governor": GovernorSettings(**gov)})


def server_ms(raw: Any) -> float:
    """CPU time of the server's main thread so far (INFO cpu), ms: what the apps wait behind."""
    cpu = raw.info("cpu")
    return (float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])) * 1000


def server_now_ms(raw: Any) -> float:
    sec, usec = raw.time()
    return float(sec) * 1000 + float(usec) / 1000


def drained(client: Client) -> bool:
    totals = client.status().totals()
    return totals["backlog"] == 0 and totals["pending"] == 0


def index_docs(client: Client, n: int, *, start: int = 0, algorithm: str = "hnsw") -> None:
    schema = IndexSchema.for_dims(DIMS, algorithm=algorithm)
    store = client.vectorstore(
        "gov", "hashing", schema=schema, backend="search", read_your_writes=False, batch_size=10
    )
    texts = [
        f"document {i}: notes about topic {i % 97} and item {i * 7919 % 1000}"
        for i in range(start, start + n)
    ]
    for at in range(0, n, 500):
        store.add_texts(
            texts[at : at + 500], ids=[f"d{start + at + j}" for j in range(len(texts[at : at + 500]))]
        )


@pytest.fixture
def own_server(redis_factory: Any) -> Any:
    return redis_factory.redis(8, modules=True)


@pytest.fixture
def raw(own_server: Any) -> Iterator[Any]:
    client = redis_py.Redis.from_url(own_server.url)
    yield client
    client.close()


def start_workers(settings: Settings, n: int) -> list[ProcessWorker]:
    return [ProcessWorker(settings, env=worker_env(settings)).start() for _ in range(n)]


def stop_workers(workers: list[ProcessWorker]) -> None:
    for w in workers:
        w.terminate(20)


def test_two_worker_processes_share_one_budget(own_server: Any, raw: Any, namespace: str) -> None:
    # Given two worker processes whose governor allows 20% of wall time, and far more HNSW inserts
    # queued than that share can write at once
    duty, burst = 0.2, 5.0
    settings = settings_for(
        own_server.url, namespace, duty_cycle=duty, burst_ms=burst, report_foreground=False
    )
    client = Client(settings)
    index_docs(client, 10)  # create the index (and load the scripts) before measuring
    workers = start_workers(settings, 2)
    try:
        deadline = time.monotonic() + 60
        while not drained(client) and time.monotonic() < deadline:
            time.sleep(0.1)
        raw.config_resetstat()
        t0, server0 = server_now_ms(raw), server_ms(raw)
        spent0 = governor.read(raw, client.keys).spent_ms
        # When they index 3,000 documents
        index_docs(client, 3_000, start=10)
        paying: set[str] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = governor.read(raw, client.keys)
            paying |= {w for w, ms in state.per_worker_ms.items() if ms > 0}
            if drained(client):
                break
            time.sleep(0.1)
        assert drained(client), "the workers did not finish indexing within 120 s"
        elapsed = server_now_ms(raw) - t0
        state = governor.read(raw, client.keys)
        taken = server_ms(raw) - server0
    finally:
        stop_workers(workers)
        client.close()
    paid = state.spent_ms - spent0
    # Then both processes paid into the one bucket, which had to hold them back ...
    assert len(paying) == 2, f"processes that paid: {paying}"
    assert state.waits > 0
    # ... and together they stayed within the shared budget, in the bucket's accounting (one
    # pipeline of debt per process at most) and in the server's own (its main thread's CPU time:
    # every command of the run, reads and acknowledgements included, which the bucket does not pace)
    assert paid <= duty * elapsed + burst + 2 * 2 * settings.worker.write_budget_ms
    assert taken <= 1.5 * duty * elapsed + burst + 200
    assert paid > 0.5 * duty * elapsed, "the budget was not used: the test measured nothing"
    assert state.backoffs == 0  # nobody was reading


def test_a_bulk_load_without_readers_is_not_throttled(own_server: Any, raw: Any, namespace: str) -> None:
    # Given one worker whose duty cycle is more than the load needs, and no app reading
    settings = settings_for(own_server.url, namespace, duty_cycle=1.0, burst_ms=50)
    client = Client(settings)
    workers = start_workers(settings, 1)
    try:
        # When it indexes 2,000 documents
        index_docs(client, 2_000)
        rates = []
        deadline = time.monotonic() + 120
        while not drained(client) and time.monotonic() < deadline:
            rates.append(governor.read(raw, client.keys).rate)
            time.sleep(0.05)
        state = governor.read(raw, client.keys)
        shown = render(client.status())
    finally:
        stop_workers(workers)
        client.close()
    # Then the governor never lowered its rate: no backoffs, the full duty cycle throughout
    assert state.spent_ms > 0
    assert state.backoffs == 0
    assert {r for r in rates if r is not None} <= {1.0}
    assert state.foreground_p99_us is None  # no reports: nothing to leave room for
    # and `sluice status` says so, with whether the query engine has worker threads (not in this build)
    assert "governor: budget 100% of wall time" in shown and "0 backoffs" in shown
    assert "foreground: no lookup reports" in shown
    assert "query engine worker threads: not available" in shown


class SlowScripts:
    """Foreground latency without DEBUG SLEEP: a busy Lua loop of about `ms` from another connection,
    repeated, so the apps' lookups queue behind it."""

    def __init__(self, url: str, ms: float = 4.0, gap_s: float = 0.004) -> None:
        self.redis = redis_py.Redis.from_url(url)
        self.ms, self.gap_s = ms, gap_s
        self.loops = self._calibrate()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _calibrate(self) -> int:
        n = 200_000
        began = time.perf_counter()
        self.redis.eval("local x = 0 for i = 1, tonumber(ARGV[1]) do x = x + i end return 1", 0, n)
        took = (time.perf_counter() - began) * 1000
        return max(10_000, int(n * self.ms / max(took, 0.05)))

    def _run(self) -> None:
        while not self.stop.is_set():
            self.redis.eval(
                "local x = 0 for i = 1, tonumber(ARGV[1]) do x = x + i end return 1", 0, self.loops
            )
            time.sleep(self.gap_s)

    def __enter__(self) -> SlowScripts:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.redis.close()


class Reader:
    """An app thread doing exact-cache lookups in a loop (the facade reports their p99)."""

    def __init__(self, client: Client) -> None:
        self.cache = client.llm_cache(write="direct")
        from langchain_core.outputs import Generation

        for i in range(50):
            self.cache.update(f"prompt {i}", "model", [Generation(text=f"answer {i}")])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            assert self.cache.lookup(f"prompt {i % 50}", "model") is not None
            i += 1
            time.sleep(0.001)

    def __enter__(self) -> Reader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def wait_for(predicate: Any, timeout: float, what: str, raw: Any, client: Client) -> governor.GovernorStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = governor.read(raw, client.keys)
        if predicate(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; governor: {state}")


def test_backs_off_while_lookups_slow_down_and_recovers_after(
    own_server: Any, raw: Any, namespace: str
) -> None:
    # Given a worker indexing continuously (cheap FLAT inserts, so its own writes hardly touch the
    # lookups) and an app doing exact-cache lookups that has learned its idle p99
    settings = settings_for(
        own_server.url,
        namespace,
        duty_cycle=0.5,
        report_interval=0.2,
        report_min_lookups=5,
        increase=0.1,
        foreground_ratio=4.0,
    ).model_copy(
        update={
            "worker": fast_settings(own_server.url, namespace, kinds=["index"], write_budget_ms=0.5).worker
        }
    )
    client = Client(settings)
    index_docs(client, 10, algorithm="flat")
    feeding = threading.Event()

    def feed() -> None:
        n = 10
        while not feeding.is_set():
            index_docs(client, 20, start=n, algorithm="flat")
            n += 20
            time.sleep(0.02)

    workers = start_workers(settings, 1)
    feeder = threading.Thread(target=feed, daemon=True)
    try:
        with Reader(client):
            wait_for(lambda s: s.foreground_p99_us is not None, 20, "a first report", raw, client)
            time.sleep(1.0)  # idle windows: the reader learns its idle p99
            assert client.foreground.idle.get("exact"), "no idle p99 learned"
            feeder.start()
            wait_for(lambda s: (s.spent_ms or 0) > 0, 30, "the worker to write", raw, client)
            before = governor.read(raw, client.keys)
            assert before.backoffs == 0
            # When another connection runs slow scripts, so the lookups' p99 rises
            with SlowScripts(own_server.url, ms=8.0):
                # Then the workers' rate is cut multiplicatively
                slow = wait_for(
                    lambda s: s.backoffs >= 2 and (s.rate or 1) <= 0.25, 20, "a backoff", raw, client
                )
                assert (
                    slow.foreground_ratio is not None
                    and slow.foreground_ratio > settings.governor.foreground_ratio
                )
            # And when the slow scripts stop, it climbs back to the duty cycle, step by step
            seen: list[float] = []

            def recovered(s: governor.GovernorStatus) -> bool:
                if s.rate is not None:
                    seen.append(s.rate)
                return s.rate is not None and s.rate >= 0.5 - 1e-9

            wait_for(recovered, 30, "the rate to recover", raw, client)
            assert any(0.25 < r < 0.5 for r in seen), f"no additive steps seen: {sorted(set(seen))}"
    finally:
        feeding.set()
        if feeder.is_alive():
            feeder.join(20)
        stop_workers(workers)
        client.close()

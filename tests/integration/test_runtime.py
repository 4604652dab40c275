"""The job runtime against a real Redis 8: delivery, retries, dead letters, reclaim, leases,
backpressure, trimming and read-your-writes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import redis as redis_py
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from sluice.errors import JobFailed, PermanentJobError, QueueFull, WaitTimeout
from sluice.facade.client import Client
from sluice.jobs.codec import Job
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import HistoryStore
from sluice.types import EntryId
from sluice_workers.handlers.base import Failures
from sluice_workers.handlers.history import HistoryHandler
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until


def msg(text: str) -> dict[str, Any]:
    return {"type": "human", "data": {"content": text}}


def append(session: str, *texts: str) -> HistoryAppendPayload:
    return HistoryAppendPayload(session_id=session, messages=[msg(t) for t in texts])


def contents(client: Client, session: str) -> list[str]:
    return [str(m.content) for m in HistoryStore(client.redis, client.keys).read(session)]


@pytest.fixture
def client(redis8: Any, namespace: str) -> Client:
    c = Client(fast_settings(redis8.url, namespace))
    yield c
    c.close()


class Flaky:
    """Wraps the history handler: fails the first `failures` deliveries of every job."""

    kind = "history-append"

    def __init__(self, inner: HistoryHandler, failures: int, error: type[Exception] = RuntimeError) -> None:
        self.inner = inner
        self.failures = failures
        self.error = error
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def handle(self, jobs: Sequence[Job]) -> Failures:
        failed: dict[EntryId, BaseException] = {}
        ok: list[Job] = []
        with self.lock:
            for j in jobs:
                self.calls[j.entry_id] += 1
                if self.calls[j.entry_id] <= self.failures:
                    failed[j.entry_id] = self.error(f"injected failure {self.calls[j.entry_id]}")
                else:
                    ok.append(j)
        failed.update(self.inner.handle(ok))
        return failed


def history_handler(client: Client) -> HistoryHandler:
    return HistoryHandler(HistoryStore(client.redis, client.keys))


def test_jobs_enqueued_before_the_first_worker_are_applied(client: Client) -> None:
    # Given jobs enqueued while no worker (and no consumer group) exists
    handles = client.enqueue([append("early", f"m{i}") for i in range(20)])
    # When a worker starts later
    with ThreadWorker(client.settings):
        client.wait(handles, timeout=10)
    # Then every job was applied, in order
    assert contents(client, "early") == [f"m{i}" for i in range(20)]


def test_history_keeps_order_and_every_field_across_interleaved_sessions(client: Client) -> None:
    a, b = client.chat_history("a"), client.chat_history("b")
    sent_a = [
        SystemMessage("be brief", id="s1"),
        HumanMessage("hi", id="h1", additional_kwargs={"x": [1, 2]}),
        AIMessage(
            "",
            id="a1",
            tool_calls=[{"name": "search", "args": {"q": "redis"}, "id": "call1"}],
            usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            response_metadata={"model": "m", "finish_reason": "tool_calls"},
        ),
        ToolMessage("found", tool_call_id="call1", id="t1"),
    ]
    with ThreadWorker(client.settings):
        for i, m in enumerate(sent_a):
            a.add_messages([m])
            b.add_messages([HumanMessage(f"b{i}")])
        assert a.messages == sent_a
        assert [m.content for m in b.messages] == [f"b{i}" for i in range(len(sent_a))]


def test_a_failing_job_is_retried_and_wait_returns_once_it_is_applied(client: Client) -> None:
    flaky = Flaky(history_handler(client), failures=2)
    with ThreadWorker(client.settings, handlers={"history-append": flaky}) as worker:
        handles = client.enqueue([append("retry", "x")])
        client.wait(handles, timeout=15)
        summary = worker.stop()
    assert contents(client, "retry") == ["x"]
    assert flaky.calls[handles[0].entry_id] == 3
    assert summary.consumers[0].retried["history-append"] == 2
    assert client.status().dead_letters == 0


def test_wait_reports_a_dead_lettered_job_with_its_reason(client: Client) -> None:
    flaky = Flaky(history_handler(client), failures=99, error=PermanentJobError)
    with ThreadWorker(client.settings, handlers={"history-append": flaky}):
        handles = client.enqueue([append("dead", "x")], notify=True)
        with pytest.raises(JobFailed, match="injected failure 1") as info:
            client.wait(handles, timeout=10)
    assert info.value.entry_id == handles[0].entry_id
    assert flaky.calls[handles[0].entry_id] == 1  # permanent: never retried


def test_a_job_that_keeps_failing_is_dead_lettered_after_max_deliveries(client: Client) -> None:
    settings = fast_settings(
        client.settings.redis.url.get_secret_value(), client.keys.namespace, max_deliveries=3
    )
    flaky = Flaky(history_handler(client), failures=99)
    with ThreadWorker(settings, handlers={"history-append": flaky}):
        handles = client.enqueue([append("poison", "x")])
        with pytest.raises(JobFailed, match="gave up after 3 deliveries"):
            client.wait(handles, timeout=20)
    assert flaky.calls[handles[0].entry_id] == 3


def test_poison_entries_are_dead_lettered_and_every_good_job_is_applied(client: Client) -> None:
    # Given 10,000 good jobs over 100 sessions, 500 undecodable entries and 500 jobs the handler refuses
    raw = client.redis
    good = [append(f"s{i % 100}", f"{i}") for i in range(10_000)]
    bad_jobs = [HistoryAppendPayload(session_id="bad", messages=[{"type": "alien", "data": {}}])] * 500
    handles = client.enqueue(good[:5000] + bad_jobs) + client.enqueue(good[5000:])
    stream = client.keys.stream("history-append", 0)
    for i in range(500):
        raw.xadd(stream, {"job": b"{not json" if i % 2 else b'{"v":1}'} if i % 3 else {"junk": "x"})
    # When one worker drains everything
    with ThreadWorker(client.settings) as worker:
        wait_until(lambda: client.status().totals()["backlog"] == 0, 60, "the backlog to drain")
        assert worker.alive()
    # Then every good job is applied once, in order, and every bad one is in the DLQ with a reason
    for s in (0, 37, 99):
        assert contents(client, f"s{s}") == [str(i) for i in range(s, 10_000, 100)]
    total = sum(len(contents(client, f"s{s}")) for s in range(100))
    assert total == 10_000
    status = client.status()
    assert status.dead_letters == 1000
    assert status.totals()["pending"] == 0
    from sluice.ops.deadletters import DeadLetters

    reasons = Counter(d.error.split(":")[0] for d in DeadLetters(raw, client.keys).iter())
    assert sum(reasons.values()) == 1000
    refused = [d for d in DeadLetters(raw, client.keys).iter(kind="history-append")]
    assert len(refused) == 500 and all("unknown message type 'alien'" in d.error for d in refused)
    with pytest.raises(JobFailed):
        client.wait(handles[5000:5001], timeout=1)


def test_entries_of_a_crashed_consumer_are_reclaimed_on_a_timer(client: Client) -> None:
    # Given entries delivered to a consumer that died without acknowledging them
    handles = client.enqueue([append("crash", f"m{i}") for i in range(10)])
    stream = handles[0].stream
    raw = client.redis
    raw.xgroup_create(stream, client.settings.queue.group, id="0", mkstream=True)
    taken = raw.xreadgroup(client.settings.queue.group, "dead-consumer", {stream: ">"}, count=100)
    assert len(taken[0][1]) == 10
    # When a worker runs, with no new traffic at all
    with ThreadWorker(client.settings) as worker:
        client.wait(
            handles,
            timeout=15,
        )
        summary = worker.stop()
    # Then it reclaimed them after the visibility timeout and applied each once
    assert summary.consumers[0].reclaimed == 10
    assert contents(client, "crash") == [f"m{i}" for i in range(10)]


def test_a_slow_handler_keeps_its_lease_and_runs_once(client: Client) -> None:
    settings = fast_settings(
        client.settings.redis.url.get_secret_value(), client.keys.namespace, visibility_timeout=1.0
    )
    calls: Counter[str] = Counter()
    inner = history_handler(client)

    class Slow:
        kind = "history-append"

        def handle(self, jobs: Sequence[Job]) -> Failures:
            for j in jobs:
                calls[j.entry_id] += 1
            time.sleep(3.0)  # three visibility timeouts
            return inner.handle(jobs)

    with (
        ThreadWorker(settings, handlers={"history-append": Slow()}),
        ThreadWorker(settings, handlers={"history-append": Slow()}),
    ):
        handles = client.enqueue([append("slow", "x")])
        client.wait(handles, timeout=20)
    assert calls[handles[0].entry_id] == 1
    assert contents(client, "slow") == ["x"]


def test_backpressure_refuses_past_the_backlog_limit_and_trims_nothing(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace, queue={"max_backlog": 10, "partitions": 1})
    client = Client(settings)
    client.enqueue([append("bp", str(i)) for i in range(10)])
    with pytest.raises(QueueFull, match="holds 10 unprocessed jobs \\(limit 10\\)") as info:
        client.enqueue([append("bp", "overflow")])
    assert info.value.stream == client.keys.stream("history-append", 0)
    assert client.redis.xlen(info.value.stream) == 10  # nothing was trimmed to make room
    # With policy=wait, an enqueue waits for a worker to make room
    waiting = Client(
        fast_settings(
            redis8.url,
            namespace,
            queue={"max_backlog": 10, "partitions": 1, "backlog_policy": "wait", "backlog_wait": 20},
        )
    )
    worker = ThreadWorker(settings)
    starter = threading.Timer(0.5, worker.start)
    starter.start()
    try:
        handles = waiting.enqueue([append("bp", "after")])
        waiting.wait(handles, timeout=10)
    finally:
        starter.join()
        worker.stop()
    assert contents(client, "bp") == [str(i) for i in range(10)] + ["after"]


def test_acknowledged_entries_are_deleted_so_streams_stay_small(client: Client) -> None:
    with ThreadWorker(client.settings):
        for round_ in range(5):
            handles = client.enqueue([append(f"t{i % 20}", str(round_)) for i in range(1000)])
            client.wait(handles, timeout=20)  # every partition: the worker stops after the loop
    wait_until(lambda: client.status().totals()["backlog"] == 0, 10, "drain")
    for stream in client.keys.streams("history-append"):
        assert client.redis.xlen(stream) == 0
        assert client.redis.memory_usage(stream) < 10_000
    assert sum(len(contents(client, f"t{i}")) for i in range(20)) == 5000


def test_wait_times_out_clearly_without_workers(client: Client) -> None:
    handles = client.enqueue([append("nobody", "x")])
    with pytest.raises(WaitTimeout, match="are workers running"):
        client.wait(handles, timeout=0.3)


def test_out_of_order_processing_ends_at_the_newest_version(client: Client) -> None:
    # Given the jobs of one session, applied newest first (as parallel consumers may)
    store = HistoryStore(client.redis, client.keys)
    handles = client.enqueue(
        [
            append("ooo", "a"),
            append("ooo", "b"),
            HistoryAppendPayload(session_id="ooo", op="clear"),
            append("ooo", "c"),
            append("ooo", "d"),
        ]
    )
    raw = client.redis
    entries = {eid.decode(): f for eid, f in raw.xrange(handles[0].stream)}
    from sluice.jobs.codec import decode

    jobs = [decode(h.stream, h.entry_id, entries[h.entry_id]) for h in handles]
    handler = HistoryHandler(store)
    for job in reversed(jobs):
        assert handler.handle([job]) == {}
    # Then the session reads as if they had been applied in order; and again after redelivery
    assert contents(client, "ooo") == ["c", "d"]
    for job in jobs:
        handler.handle([job])
    assert contents(client, "ooo") == ["c", "d"]


def test_a_redis_error_in_the_handler_does_not_kill_the_worker(client: Client) -> None:
    # Given a store key of the wrong type for one session
    client.redis.set(client.keys.history("wrongtype"), "not a zset")
    with ThreadWorker(client.settings) as worker:
        bad = client.enqueue([append("wrongtype", "x")])
        good = client.enqueue([append("fine", "y")])
        client.wait(good, timeout=10)
        with pytest.raises(JobFailed, match="wrong Redis type"):
            client.wait(bad, timeout=10)
        assert worker.alive()
    with pytest.raises(Exception, match="wrong Redis type"):
        client.chat_history("wrongtype").messages
    assert isinstance(client.redis, redis_py.Redis)


def test_a_resent_enqueue_adds_nothing_twice(client: Client) -> None:
    # Given an enqueue call that reached Redis, but whose reply the producer never saw
    from sluice.queue import plan as planning

    batches, _ = planning.plan(client.keys, client.settings.limits, [append("dup", "a"), append("dup", "b")])
    ((segment,),) = planning.rounds(batches)
    (first,) = client.producer._send([segment])
    # When the producer resends the very same jobs (same job ids)
    (again,) = client.producer._send([segment.resent()])
    # Then Redis answers with the first entry ids and holds each job once
    assert isinstance(first, list) and again == first
    assert client.redis.xlen(segment.stream) == 2
    with ThreadWorker(client.settings):
        client.wait(planning.handles(segment.stream, first), timeout=10)
    assert contents(client, "dup") == ["a", "b"]


def test_enqueue_resends_through_a_pause_longer_than_the_socket_timeout(
    redis_factory: Any, namespace: str
) -> None:
    # Given a server that stops answering (SIGSTOP) for longer than the client's socket timeout
    server = redis_factory.redis(8)
    settings = fast_settings(server.url, namespace, queue={"enqueue_retries": 6})
    settings = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"socket_timeout": 0.3, "retries": 0})}
    )
    client = Client(settings)
    client.enqueue([append("pause", "before")])
    server.pause()
    threading.Timer(1.0, server.resume).start()
    # When the app enqueues during the pause
    handles = client.enqueue([append("pause", "during")])
    # Then the resend after the pause is deduplicated: each job is in the stream once
    assert client.redis.xlen(handles[0].stream) == 2
    with ThreadWorker(settings):
        client.wait(handles, timeout=10)
    assert contents(client, "pause") == ["before", "during"]


def test_worker_exports_prometheus_metrics(client: Client) -> None:
    import urllib.request

    from sluice_workers.server.embedded import free_port

    port = free_port()
    url = client.settings.redis.url.get_secret_value()
    settings = fast_settings(url, client.keys.namespace, metrics_port=port)
    with ThreadWorker(settings):
        client.wait(client.enqueue([append("metrics", "x")]), timeout=10)

        def scraped() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return str(r.read().decode())

        wait_until(lambda: "sluice_stream_pending{" in scraped(), 10, "the stream gauges", interval=0.2)
        text = scraped()
    assert 'sluice_jobs_processed_total{kind="history-append"} 1.0' in text
    assert "sluice_batch_seconds_bucket" in text
    assert f'sluice_stream_lag{{stream="{client.keys.stream("history-append", 0)}"}}' in text


def test_from_redis_accepts_an_apps_resp3_decoding_client(redis8: Any, namespace: str) -> None:
    # Given the client an app already has: redis-py 8 defaults (RESP3), decoded replies
    app_client = redis_py.Redis.from_url(redis8.url, protocol=3, decode_responses=True)
    client = Client.from_redis(app_client, namespace=namespace)
    history = client.chat_history("from-redis")
    with ThreadWorker(fast_settings(redis8.url, namespace)):
        history.add_messages([HumanMessage("hi")])
        assert [m.content for m in history.messages] == ["hi"]
    assert client.capabilities.search
    app_client.close()

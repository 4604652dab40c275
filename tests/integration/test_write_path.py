"""The write path under the faults that broke it (issue 14): mixed batches, transport failures
that must not count as deliveries, exact delivery counts, deep pending lists, finishing twice,
dead-letter retries that keep a job's identity, and several consumer groups on one stream.

All against real servers; outage tests run their own server and stop it by pid.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.outputs import Generation

from sluice.connection.capabilities import probe
from sluice.errors import PermanentJobError, RedisTimeout, RedisUnavailable
from sluice.facade.client import Client
from sluice.jobs.codec import Job
from sluice.jobs.models import CacheFillPayload, HistoryAppendPayload
from sluice.ops.deadletters import DeadLetters
from sluice.queue.producer import Producer
from sluice.settings import Settings
from sluice.stores.generations import to_dicts
from sluice.stores.history import HistoryStore
from sluice.types import EntryId, StreamEntryRef
from sluice_workers.handlers.base import Failures, Handler
from sluice_workers.handlers.registry import build_handlers
from sluice_workers.runtime.transport import Ack, StreamTransport
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until


def append(session: str, *texts: str) -> HistoryAppendPayload:
    return HistoryAppendPayload(
        session_id=session, messages=[{"type": "human", "data": {"content": t}} for t in texts]
    )


def fill(i: int) -> CacheFillPayload:
    return CacheFillPayload(llm_string="m", prompt=f"p{i}", generations=to_dicts([Generation(text=f"a{i}")]))


def contents(client: Client, session: str) -> list[str]:
    return [str(m.content) for m in HistoryStore(client.redis, client.keys).read(session)]


def dead_letters(client: Client) -> DeadLetters:
    return DeadLetters(client.redis, client.keys, Producer(client.redis, client.settings))


class Counting:
    """Wraps a real handler: counts calls per entry, and raises `error` for the first `failures`
    calls of every job (after nothing was written)."""

    def __init__(self, inner: Handler, failures: int = 0, error: Exception | None = None) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.failures = failures
        self.error = error
        self.calls: Counter[tuple[str, str]] = Counter()  # by (stream, entry id): ids repeat across streams
        self.lock = threading.Lock()

    def handle(self, jobs: Sequence[Job]) -> Failures:
        with self.lock:
            for j in jobs:
                self.calls[j.stream, j.entry_id] += 1
            failing = self.error is not None and any(
                self.calls[j.stream, j.entry_id] <= self.failures for j in jobs
            )
        if failing:
            assert self.error is not None
            raise self.error
        return self.inner.handle(jobs)


def handlers(client: Client, settings: Settings) -> dict[str, Handler]:
    return build_handlers(client.redis, settings, cluster=False)


@pytest.fixture
def client(redis8: Any, namespace: str) -> Client:
    c = Client(fast_settings(redis8.url, namespace))
    yield c
    c.close()


# --- mixed batches and transport failures -------------------------------------------------------


def test_a_later_kind_failing_in_transport_neither_strands_nor_repeats_the_earlier_kinds(
    client: Client,
) -> None:
    # Given a worker whose history handler loses Redis 3 times per job (more than max_deliveries)
    settings = fast_settings(
        client.settings.redis.url.get_secret_value(),
        client.keys.namespace,
        max_deliveries=2,
        visibility_timeout=10,
    )
    built = handlers(client, settings)
    fills = Counting(built["cache-fill"])
    history = Counting(
        built["history-append"], failures=3, error=RedisUnavailable("injected: connection reset")
    )
    # When one batch holds cache fills (handled first) and history appends (handled after)
    fill_handles = client.enqueue([fill(i) for i in range(20)])
    history_handles = client.enqueue([append("mixed", f"m{i}") for i in range(5)])
    with ThreadWorker(settings, handlers={**built, "cache-fill": fills, "history-append": history}):
        # Then the fills are acknowledged at once, long before the visibility timeout (10 s)
        started = time.monotonic()
        client.wait(fill_handles, timeout=3)
        assert time.monotonic() - started < 3
        # and the appends, whose attempts failed in transport only, are applied, not dead-lettered
        client.wait(history_handles, timeout=15)
    assert set(fills.calls.values()) == {1}, "a fill was applied twice"
    assert contents(client, "mixed") == [f"m{i}" for i in range(5)]
    assert max(history.calls.values()) == 4
    assert dead_letters(client).count() == 0


def test_a_timeout_redis_answers_right_after_counts_as_a_delivery(client: Client) -> None:
    # Given a job whose every attempt times out while Redis itself answers (the job's doing)
    settings = fast_settings(
        client.settings.redis.url.get_secret_value(), client.keys.namespace, max_deliveries=2
    )
    built = handlers(client, settings)
    history = Counting(
        built["history-append"], failures=10**6, error=RedisTimeout("injected: read timed out")
    )
    (handle,) = client.enqueue([append("slow", "x")])
    with ThreadWorker(settings, handlers={**built, "history-append": history}):
        wait_until(lambda: dead_letters(client).count() == 1, 30, "the job to be dead-lettered")
    (letter,) = dead_letters(client).iter()
    assert letter.entry_id == handle.entry_id and letter.error.startswith("poison: delivered 3 times")
    assert history.calls[handle.stream, handle.entry_id] == 2


# --- delivery counts and deep pending lists ----------------------------------------------------


def _take(client: Client, stream: str, consumer: str, count: int) -> list[str]:
    _transport(client).ensure_groups([stream])
    taken = client.redis.xreadgroup(client.settings.queue.group, consumer, {stream: ">"}, count=count)
    return [i.decode() for i, _ in taken[0][1]]


def test_a_poison_entry_behind_many_retry_delayed_ones_is_dead_lettered_by_its_exact_count(
    client: Client,
) -> None:
    # Given an idle entry, then 20 x batch_size retry-delayed ones (not idle yet), then a poison
    # entry (idle, delivered max_deliveries times by consumers that crashed), all pending
    settings = fast_settings(
        client.settings.redis.url.get_secret_value(),
        client.keys.namespace,
        batch_size=8,
        max_deliveries=3,
        visibility_timeout=30,
    )
    handles = client.enqueue([append("deep", f"m{i}") for i in range(1 + 20 * 8 + 1)])
    stream, group = handles[0].stream, client.settings.queue.group
    ids = _take(client, stream, "crashed", len(handles))
    first, poison = ids[0], ids[-1]
    client.redis.xclaim(stream, group, "crashed", 0, [first], idle=10**7, justid=True)
    client.redis.xclaim(stream, group, "crashed", 0, [poison], idle=10**7, retrycount=3, justid=True)
    # When a worker reclaims
    with ThreadWorker(settings):
        client.wait(handles[:1], timeout=10)
        wait_until(lambda: dead_letters(client).count() == 1, 10, "the poison entry to be dead-lettered")
    # Then the poison entry's count was read exactly (4 > max_deliveries), never taken as 1
    (letter,) = dead_letters(client).iter()
    assert letter.entry_id == poison and letter.attempts == 4
    assert letter.error.startswith("poison: delivered 4 times")


def test_a_crashed_consumers_entry_behind_1000_busy_pending_ones_is_reclaimed_in_two_rounds(
    client: Client,
) -> None:
    # Given 1,000 pending entries a live consumer is busy with, then one of a crashed consumer
    settings = fast_settings(
        client.settings.redis.url.get_secret_value(),
        client.keys.namespace,
        batch_size=16,
        visibility_timeout=60,
        reclaim_interval=1.0,
    )
    handles = client.enqueue([append("busy", f"m{i}") for i in range(1001)])
    stream, group = handles[0].stream, client.settings.queue.group
    ids = _take(client, stream, "busy", 1000)
    (orphan,) = _take(client, stream, "crashed", 1)
    client.redis.xclaim(stream, group, "crashed", 0, [orphan], idle=10**7, justid=True)
    assert orphan == handles[-1].entry_id and len(ids) == 1000
    # When a worker starts, Then the orphan is applied within two reclaim intervals
    with ThreadWorker(settings):
        client.wait(handles[-1:], timeout=2 * settings.worker.reclaim_interval + 0.5)
    assert contents(client, "busy") == ["m1000"]


# --- finishing: once, in one script ------------------------------------------------------------


def _transport(client: Client, group: str | None = None) -> StreamTransport:
    settings = client.settings
    if group is not None:
        settings = settings.model_copy(update={"queue": settings.queue.model_copy(update={"group": group})})
    transport = StreamTransport(client.redis, settings, probe(client.redis))
    return transport


def test_finishing_an_entry_twice_dead_letters_and_signals_it_once(client: Client) -> None:
    (handle,) = client.enqueue([append("twice", "x")], notify=True)
    transport = _transport(client)
    transport.ensure_groups([handle.stream])
    transport.read("c", [handle.stream], 10, None)
    dead = Ack(
        handle.stream, handle.entry_id, notify=True, dead_reason="permanent: test", kind="history-append"
    )
    assert transport.ack([dead]) == 1
    assert transport.ack([dead]) == 0  # a resend after a lost reply, or a racing redelivery
    (letter,) = dead_letters(client).iter()
    assert letter.entry_id == handle.entry_id and letter.error == "permanent: test"
    assert b'"session_id":"twice"' in letter.job
    assert client.redis.llen(client.keys.done_signal(handle.stream, handle.entry_id)) == 1
    assert client.redis.xlen(handle.stream) == 0


@pytest.mark.parametrize("version", [7, 8])
def test_an_entry_is_deleted_only_when_every_consumer_group_has_acknowledged_it(
    redis_factory: Any, namespace: str, version: int
) -> None:
    server = redis_factory.redis(version)
    with Client(fast_settings(server.url, namespace)) as client:
        handles = client.enqueue([append("groups", f"m{i}") for i in range(3)])
        stream = handles[0].stream
        old, new = _transport(client, "old"), _transport(client, "new")
        old.ensure_groups([stream])
        new.ensure_groups([stream])
        assert old.other_groups(stream) == ["new"]
        for transport in (old, new):
            delivery = transport.read("c", [stream], 10, None)
            assert [j.entry_id for j in delivery.jobs] == [h.entry_id for h in handles]
        # one group's acknowledgement leaves the entries for the other
        assert old.ack([Ack(stream, h.entry_id) for h in handles]) == 3
        assert client.redis.xlen(stream) == 3
        # the last group's deletes them
        assert new.ack([Ack(stream, h.entry_id) for h in handles]) == 3
        assert client.redis.xlen(stream) == 0


# --- dead-letter retries keep the job's identity -------------------------------------------------


class AppliesThenRefuses:
    """Applies every job, then reports the ones in `refuse` as permanently failed (an effect that
    happened although the job was dead-lettered, e.g. a reply lost after the write)."""

    kind = "history-append"

    def __init__(self, inner: Handler, refuse: set[str]) -> None:
        self.inner, self.refuse = inner, refuse

    def handle(self, jobs: Sequence[Job]) -> Failures:
        failures = dict(self.inner.handle(jobs))
        for j in jobs:
            if j.entry_id in self.refuse:
                failures[j.entry_id] = PermanentJobError("injected after the write")
        return failures


def test_retrying_an_applied_history_append_has_no_second_effect(client: Client) -> None:
    built = handlers(client, client.settings)
    (first,) = client.enqueue([append("retry", "hello")])
    refusing = AppliesThenRefuses(built["history-append"], {first.entry_id})
    with ThreadWorker(client.settings, handlers={**built, "history-append": refusing}):
        wait_until(lambda: dead_letters(client).count() == 1, 10, "the append to be dead-lettered")
    assert contents(client, "retry") == ["hello"]  # applied although dead-lettered
    with ThreadWorker(client.settings):
        ((stream, entry_id),) = dead_letters(client).retry(list(dead_letters(client).iter()))
        client.wait([StreamEntryRef(stream, entry_id)], timeout=10)
    assert contents(client, "retry") == ["hello"]
    assert dead_letters(client).count() == 0


def test_a_retried_append_that_never_applied_takes_its_original_place(client: Client) -> None:
    built = handlers(client, client.settings)
    (lost,) = client.enqueue([append("order", "first")])

    class RefuseBeforeWriting:
        kind = "history-append"

        def handle(self, jobs: Sequence[Job]) -> Failures:
            keep = [j for j in jobs if j.entry_id != lost.entry_id]
            failures: dict[EntryId, BaseException] = dict(built["history-append"].handle(keep))
            if len(keep) < len(jobs):
                failures[lost.entry_id] = PermanentJobError("injected before the write")
            return failures

    with ThreadWorker(client.settings, handlers={**built, "history-append": RefuseBeforeWriting()}):
        wait_until(lambda: dead_letters(client).count() == 1, 10, "the first append to be dead-lettered")
        client.wait(client.enqueue([append("order", "second")]), timeout=10)
    assert contents(client, "order") == ["second"]
    with ThreadWorker(client.settings):
        ((stream, entry_id),) = dead_letters(client).retry(list(dead_letters(client).iter()))
        client.wait([StreamEntryRef(stream, entry_id)], timeout=10)
    assert contents(client, "order") == ["first", "second"]


# --- Cluster: fair reads ---------------------------------------------------------------------------


@pytest.mark.cluster
def test_a_cache_fill_flood_on_a_cluster_does_not_starve_history_appends(
    cluster: Any, namespace: str
) -> None:
    # Given a flood of cache fills, then a few history appends, on a 3-primary Cluster
    settings = fast_settings(cluster.url, namespace, batch_size=16)
    flood = 4000
    with Client(settings) as client:
        client.enqueue([fill(i) for i in range(flood)])
        appends = client.enqueue([append(f"fair{i}", "x") for i in range(8)])
        # When one worker drains them
        with ThreadWorker(settings):
            client.wait(appends, timeout=30)
            backlog = client.status().totals()["backlog"]
        # Then the appends were applied while most of the flood still waited (fair reads; the
        # streams are swept in one pipeline per node, from a rotating start)
        assert backlog > flood // 2, f"appends waited for the flood: {backlog} of {flood} left"

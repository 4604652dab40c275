"""Group commit against a real Redis 8: concurrent enqueues share script calls, each caller gets
its own handles or its own error, and jobs for one key keep their order. Also the producer's
own connection: a flushed script cache and a killed connection are recovered without losing or
doubling a job."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from sluice.errors import PayloadTooLarge, QueueFull, ServerError
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from sluice.queue import plan as planning
from sluice.stores.history import HistoryStore
from support.settings import fast_settings
from support.workers import ThreadWorker


def append(session: str, text: str) -> HistoryAppendPayload:
    return HistoryAppendPayload(session_id=session, messages=[{"type": "human", "data": {"content": text}}])


def contents(client: Client, session: str) -> list[str]:
    return [str(m.content) for m in HistoryStore(client.redis, client.keys).read(session)]


def script_calls(client: Client) -> int:
    stats = client.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.fixture
def client(redis8: Any, namespace: str) -> Any:
    c = Client(fast_settings(redis8.url, namespace))
    yield c
    c.close()


def segment(client: Client, *payloads: HistoryAppendPayload) -> planning.Segment:
    batches, _ = planning.plan(client.keys, client.settings.limits, payloads)
    ((one,),) = planning.rounds(batches)
    return one


def test_concurrent_threads_share_script_calls_and_each_session_keeps_its_order(client: Client) -> None:
    # Given 16 threads, each appending 25 messages to its own session, all starting at once
    client.enqueue([append("warm", "x")])  # the partition check and script load happen here
    threads, per = 16, 25
    start = threading.Barrier(threads)
    handles: dict[int, list[Any]] = {}
    before = script_calls(client)

    def run(t: int) -> None:
        history = client.chat_history(f"t{t}")
        start.wait()
        for j in range(per):
            history.add_messages([HumanMessage(f"{t}-{j}")])
        handles[t] = history._writes.handles(f"t{t}", 1.0)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    # Then fewer script calls than jobs went out, every caller got a handle per job ...
    assert script_calls(client) - before < threads * per
    assert all(len(handles[t]) == per for t in range(threads))
    # ... and once applied each session holds its messages once, in the order they were added
    with ThreadWorker(client.settings):
        for t in range(threads):
            client.chat_history(f"t{t}").flush(timeout=30)
    for t in range(threads):
        assert contents(client, f"t{t}") == [f"{t}-{j}" for j in range(per)]


def test_asyncio_tasks_share_script_calls_and_keep_order(client: Client) -> None:
    tasks, per = 64, 4

    async def main() -> None:
        await client.aenqueue([append("warm", "x")])
        before = script_calls(client)

        async def run(t: int) -> None:
            history = client.chat_history(f"a{t}")
            for j in range(per):
                await history.aadd_messages([HumanMessage(f"{t}-{j}")])

        await asyncio.gather(*(run(t) for t in range(tasks)))
        assert script_calls(client) - before < tasks * per
        await client.aclose()

    asyncio.run(main())
    with ThreadWorker(client.settings):
        for t in range(tasks):
            client.chat_history(f"a{t}").flush(timeout=30)
    for t in range(tasks):
        assert contents(client, f"a{t}") == [f"{t}-{j}" for j in range(per)]


def test_a_full_stream_refuses_only_the_group_that_does_not_fit(redis8: Any, namespace: str) -> None:
    # Given a stream that holds at most 3 jobs, and two callers' groups sent in one script call
    client = Client(fast_settings(redis8.url, namespace, queue={"max_backlog": 3}))
    big = segment(client, *(append("same", f"big{i}") for i in range(5)))
    small = segment(client, append("same", "small"))
    # When they go out together
    refused, accepted = client.producer._send([big, small])
    # Then the big group is refused as a whole and the small one is added
    assert isinstance(refused, QueueFull) and refused.limit == 3
    assert isinstance(accepted, list) and len(accepted) == 1
    assert client.redis.xlen(small.stream) == 1
    client.close()


def test_a_server_error_reaches_every_group_of_that_stream_and_no_other(client: Client) -> None:
    # Given one partition stream that is not a stream, and a healthy one
    broken = segment(client, append("s1", "a"))
    partner = segment(client, append("s1", "b"))
    healthy = next(
        segment(client, append(s, "c")) for s in (f"x{i}" for i in range(100)) if
        client.keys.stream_for("history-append", f"history:{s}") != broken.stream
    )  # fmt: skip
    client.redis.set(broken.stream, "not a stream")
    # When they are sent in one round trip
    first, second, other = client.producer._send([broken, partner, healthy])
    # Then both groups on the broken stream get the server's error, the other its entry id
    assert isinstance(first, ServerError) and first is second and "WRONGTYPE" in str(first)
    assert isinstance(other, list) and len(other) == 1
    client.redis.delete(broken.stream)


def test_one_callers_oversized_job_fails_that_caller_only(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace)
    limits = settings.limits.model_copy(update={"max_payload_bytes": 2_000})
    client = Client(settings.model_copy(update={"limits": limits}))
    results: dict[int, Any] = {}
    start = threading.Barrier(8)

    def run(t: int) -> None:
        text = "x" * 5_000 if t == 3 else f"ok{t}"
        start.wait()
        try:
            results[t] = client.enqueue([append(f"o{t}", text)])
        except PayloadTooLarge as e:
            results[t] = e

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(results[3], PayloadTooLarge)
    assert all(isinstance(results[t], list) and len(results[t]) == 1 for t in range(8) if t != 3)
    client.close()


def test_enqueue_survives_a_flushed_script_cache_and_a_killed_connection(client: Client) -> None:
    first = client.enqueue([append("recover", "one")])
    # When the server forgets its scripts, then drops every other client's connection
    client.redis.script_flush()
    second = client.enqueue([append("recover", "two")])
    client.redis.client_kill_filter(_type="normal", skipme=True)
    third = client.enqueue([append("recover", "three")])
    # Then each job is in the stream once, and all are applied in order
    assert client.redis.xlen(first[0].stream) == 3
    with ThreadWorker(client.settings):
        client.wait([*first, *second, *third], timeout=10)
    assert contents(client, "recover") == ["one", "two", "three"]

"""Load: 3 worker processes, 10 sessions x 200 messages appended concurrently while redelivery is
injected (a thief consumer steals entries and never acknowledges them, so the workers reclaim
them late and out of order; another thread re-runs the handler on jobs already applied) ->
every session holds exactly its 200 messages in order. And listing 10,000 sessions in pages."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import redis as redis_py
from langchain_core.messages import HumanMessage, message_to_dict

from sluice.errors import SluiceError
from sluice.facade.client import Client
from sluice.jobs import codec
from sluice.jobs.models import HistoryAppendPayload, JobEnvelope
from sluice.stores.history import HistoryStore, HistoryWrite
from sluice.types import StreamEntryRef
from sluice_workers.handlers.history import HistoryHandler
from support.settings import fast_settings
from support.workers import ProcessWorker, wait_until

SESSIONS, PER_SESSION = 10, 200


def texts(client: Client, session: str) -> list[str]:
    return [str(m.content) for m in HistoryStore(client.redis, client.keys).read(session)]


class Redelivery:
    """Steals fresh entries into a consumer that never acknowledges them, and re-applies known jobs."""

    def __init__(self, client: Client, url: str) -> None:
        self.client = client
        self.raw = redis_py.Redis.from_url(url)
        self.handler = HistoryHandler.build(client.redis, client.settings, cluster=False)
        self.known: list[codec.Job] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.stolen = 0
        self.reapplied = 0
        self.rng = random.Random(11)

    def remember(self, handles: Sequence[StreamEntryRef], payloads: Sequence[HistoryAppendPayload]) -> None:
        jobs = [
            codec.Job(h.stream, h.entry_id, JobEnvelope(namespace=self.client.settings.namespace, payload=p))
            for h, p in zip(handles, payloads, strict=True)
        ]
        with self.lock:
            self.known += jobs

    def steal(self) -> None:
        group = self.client.settings.queue.group
        streams = self.client.keys.streams("history-append")
        while not self.stop.wait(0.03):
            for name in streams:
                try:
                    reply = self.raw.xreadgroup(group, "thief", {name: ">"}, count=2, block=20)
                except redis_py.ResponseError:
                    continue  # no stream or group there (yet)
                for _, entries in reply or []:
                    for eid, fields in entries:
                        self.stolen += 1
                        with self.lock:
                            self.known.append(codec.decode(name, eid.decode(), fields))

    def reapply(self) -> None:
        while not self.stop.wait(0.02):
            with self.lock:
                if not self.known:
                    continue
                batch = self.rng.sample(self.known, min(8, len(self.known)))
            try:
                failures = self.handler.handle(batch)
            except SluiceError:
                continue
            assert not failures
            self.reapplied += len(batch)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_concurrent_sessions_keep_exact_order_and_count_under_redelivery(redis8: Any, namespace: str) -> None:
    # Given 3 worker processes that reclaim entries idle for 1.5 s, reading small batches
    settings = fast_settings(redis8.url, namespace, visibility_timeout=1.5, batch_size=16)
    client = Client(settings)
    chaos = Redelivery(client, redis8.url)
    workers = [ProcessWorker(settings).start() for _ in range(3)]
    wait_until(lambda: len(client.status().workers) == 3, 30, "three workers to beat")
    threads = [threading.Thread(target=chaos.steal), threading.Thread(target=chaos.reapply)]
    for t in threads:
        t.start()

    def produce(s: int) -> None:
        # half the sessions append through the facade, half enqueue jobs directly (handles kept);
        # one to three messages per call
        rng = random.Random(s)
        history = client.chat_history(f"load{s}", read_your_writes=False)
        i = 0
        while i < PER_SESSION:
            n = min(rng.randint(1, 3), PER_SESSION - i)
            messages = [HumanMessage(f"{s}:{j}") for j in range(i, i + n)]
            if s % 2:
                history.add_messages(messages)
            else:
                payload = HistoryAppendPayload(
                    session_id=f"load{s}", messages=[message_to_dict(m) for m in messages]
                )
                chaos.remember(client.enqueue([payload]), [payload])
            i += n
            time.sleep(0.005)  # spread appends over the workers' run

    producers = [threading.Thread(target=produce, args=(s,)) for s in range(SESSIONS)]
    try:
        # When 10 sessions append 200 messages each, concurrently
        for t in producers:
            t.start()
        for t in producers:
            t.join(120)
        time.sleep(1.0)
        chaos.stop.set()  # stop stealing; the last stolen entries are reclaimed by the workers
        for t in threads:
            t.join(10)

        def drained() -> bool:
            totals = client.status().totals()
            return totals["backlog"] == 0 and totals["pending"] == 0

        wait_until(drained, 90, "the workers to apply and acknowledge everything")
    finally:
        chaos.stop.set()
        outputs = [w.terminate(30)[1] for w in workers]
    # Then every session holds exactly its messages, in the order they were added
    for s in range(SESSIONS):
        assert texts(client, f"load{s}") == [f"{s}:{j}" for j in range(PER_SESSION)], f"session load{s}"
    assert client.status().dead_letters == 0
    # And redelivery really happened: stolen entries were reclaimed, applied jobs re-applied
    reclaimed = sum(int(n) for out in outputs for n in re.findall(r"reclaimed=(\d+)", out))
    assert chaos.stolen > 0 and reclaimed >= chaos.stolen, (chaos.stolen, reclaimed)
    assert chaos.reapplied > 100
    listed = client.sessions("load", count=100).sessions
    assert [(x.session_id, x.messages) for x in listed] == [
        (f"load{s}", PER_SESSION) for s in range(SESSIONS)
    ]
    client.close()


@pytest.mark.slow
def test_listing_10000_sessions_in_pages(redis8: Any, namespace: str) -> None:
    # Given 10,000 sessions of 100 users, some deleted and some expired
    client = Client(fast_settings(redis8.url, namespace))
    store = HistoryStore(client.redis, client.keys)
    names = [f"user{u:03d}:chat{c:03d}" for u in range(100) for c in range(100)]
    msg = message_to_dict(HumanMessage("hello"))
    for start in range(0, len(names), 1000):
        store.write(
            [
                HistoryWrite(n, f"{1_000 + i}-0", "append", [msg] * (1 + i % 3))
                for i, n in enumerate(names[start : start + 1000], start)
            ]
        )
    deleted = set(names[5::97])
    store.write([HistoryWrite(n, "999999-0", "delete", []) for n in deleted])
    expired = set(names[7::101]) - deleted
    store.write([HistoryWrite(n, "999999-1", "append", [msg], ttl=0.1) for n in expired])
    time.sleep(0.3)
    alive = [n for n in names if n not in deleted and n not in expired]
    # When every session is listed, 500 per page
    began = time.perf_counter()
    pages = [client.sessions(count=500)]
    while pages[-1].cursor is not None:
        pages.append(client.sessions(cursor=pages[-1].cursor, count=500))
    elapsed = time.perf_counter() - began
    # Then each live session comes exactly once, in name order, with its message count
    listed = [s for p in pages for s in p.sessions]
    assert [s.session_id for s in listed] == alive
    sizes = {n: 1 + i % 3 for i, n in enumerate(names)}
    assert all(s.messages == sizes[s.session_id] for s in listed)
    assert all(len(p.sessions) == 500 for p in pages[:-1])
    assert elapsed < 10, f"listing took {elapsed:.1f}s"
    # And a prefix lists one user's sessions only
    user = client.sessions("user042:", count=1000)
    assert [s.session_id for s in user.sessions] == [n for n in alive if n.startswith("user042:")]
    assert user.cursor is None
    # And a sweep takes the dead ones out of the index
    handler = HistoryHandler.build(client.redis, client.settings, cluster=False)
    swept = sum(handler.sweep() for _ in range(len(names) // 200 + 2))
    assert swept == len(expired)  # deleted sessions left the index with their delete
    assert client.redis.zcard(client.keys.sessions_names()) == len(alive)
    _cleanup(client, names)
    client.close()


def _cleanup(client: Client, names: Sequence[str]) -> None:
    keys = client.keys
    pipe = client.redis.pipeline(transaction=False)
    for n in names:
        pipe.delete(keys.history(n), keys.history_meta(n), keys.history_vdocs(n))
    pipe.delete(keys.history_sessions(), keys.sessions_names(), keys.sessions_expires())
    pipe.execute()

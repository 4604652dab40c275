"""Chaos: a Redis Cluster resharded under load (issue 14's "Resharding under load").

3 primaries (Redis 8: Vector Sets back the index), 3 `sluice worker` processes, 10,000 history
appends over 200 sessions and 2,000 index jobs enqueued over ~10 s, while the slots of 24 of those
sessions, of two job streams (live consumers read, claim and ack them), of one vector set and of
the session index move to another primary the way `redis-cli --cluster reshard` moves them
(SETSLOT IMPORTING / MIGRATING, MIGRATE one key at a time, SETSLOT NODE), five slots at a time,
each group staying about one enqueue round in each migration state. Jepsen-style accounting: 0 dead letters, every message
once and in order, every document indexed once. The servers' error statistics show that the
clients met MOVED and ASK / TRYAGAIN (INFO errorstats).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

import servers
from servers import need
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import HistoryStore
from support.resharding import Resharder
from support.settings import fast_settings
from support.workers import ProcessWorker
from topologies import ClusterTopology

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SESSIONS = 200
APPENDS = 10_000
DOCUMENTS = 2_000
ROUNDS = 20  # enqueue rounds: APPENDS / ROUNDS appends and DOCUMENTS / ROUNDS documents each
MOVED_SESSIONS = 24
GROUP = 5  # slots migrating at the same time
DEADLINE = 150.0  # seconds for the whole run, load and drain


@pytest.fixture
def topology() -> Iterator[ClusterTopology]:
    cluster = ClusterTopology(need(servers.redis8_binary))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def append(n: int) -> HistoryAppendPayload:
    return HistoryAppendPayload(
        session_id=f"s{n % SESSIONS}", messages=[{"type": "human", "data": {"content": str(n)}}]
    )


def drained(client: Client) -> bool:
    t = client.status().totals()
    return t["backlog"] == 0 and t["pending"] == 0


def error_stats(resharder: Resharder) -> dict[str, int]:
    """MOVED / ASK / TRYAGAIN replies the nodes sent (INFO errorstats), summed over the nodes."""
    out: dict[str, int] = {}
    for node in resharder.nodes.values():
        for name, stat in node.info("errorstats").items():
            code = name.removeprefix("errorstat_")
            out[code] = out.get(code, 0) + int(stat["count"])
    return out


class Load:
    """Enqueues the appends and documents in ROUNDS rounds; remembers any error."""

    def __init__(self, client: Client, store: Any) -> None:
        self.client, self.store = client, store
        self.rounds_done = 0
        self.last_round_at = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        per, docs = APPENDS // ROUNDS, DOCUMENTS // ROUNDS
        try:
            for r in range(ROUNDS):
                self.last_round_at = time.monotonic()
                self.client.enqueue([append(n) for n in range(r * per, (r + 1) * per)])
                numbers = range(r * docs, (r + 1) * docs)
                texts = [f"document {n} about topic {n % 17}" for n in numbers]
                self.store.add_texts(texts, ids=[f"d{n}" for n in numbers])
                self.rounds_done += 1
                time.sleep(0.4)
        except BaseException as e:
            traceback.print_exc()
            self.error = e

    def next_round(self) -> None:
        """Until the load has enqueued one more round and the workers had time to take it, or
        0.6 s (the load's enqueue may itself wait for the migration: a stream's slot)."""
        seen, deadline = self.rounds_done, time.monotonic() + 0.6
        while self.rounds_done == seen and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.15)


class Reshard:
    """Moves the slots GROUP at a time; each group stays one load round in each migration state:
    MIGRATING with the keys on the source, then with the keys on the target (the slot not yet
    handed over)."""

    def __init__(self, resharder: Resharder, slots: list[int], load: Load) -> None:
        self.resharder, self.slots, self.load = resharder, slots, load
        self.moves: list[tuple[int, int, int]] = []  # (slot, source, target)
        self.done_at = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        r = self.resharder
        try:
            for first in range(0, len(self.slots), GROUP):
                owners = [(slot, r.owner(slot)) for slot in self.slots[first : first + GROUP]]
                group = [(slot, source, r.other(source)) for slot, source in owners]
                for slot, source, target in group:
                    r.begin(slot, source, target)
                self.load.next_round()
                for slot, source, target in group:
                    r.move_keys(slot, source, target, batch=1, pause=0.01)
                self.load.next_round()
                for slot, source, target in group:
                    r.finish(slot, source, target)
                self.moves += group
            self.done_at = time.monotonic()
        except BaseException as e:
            traceback.print_exc()
            self.error = e


@pytest.mark.timeout(240)
def test_resharding_under_load_loses_doubles_and_dead_letters_nothing(
    topology: ClusterTopology, namespace: str
) -> None:
    # Given a 3-primary cluster, a vector index on Vector Sets, and 3 worker processes
    started = time.monotonic()
    settings = fast_settings(topology.url, namespace, batch_size=100)
    client = Client(settings)
    store = client.vectorstore("docs", "hashing", backend="vsets", batch_size=1)
    store.session.open(lambda: len(store.embeddings.embed_query("probe")))
    resharder = Resharder(topology)
    history = HistoryStore(client.redis, client.keys, cluster=True)
    # and the slots to move: 24 sessions' (distinct slots), a history and an index stream's, the
    # slot of one of the index's vector sets and the session index's
    keyslot = client.redis.keyslot
    chosen: dict[int, str] = {}
    for s in range(0, SESSIONS, 3):
        chosen.setdefault(keyslot(client.keys.history(f"s{s}")), f"s{s}")
        if len(chosen) == MOVED_SESSIONS:
            break
    meta = store.session.meta
    assert meta is not None
    vset = client.keys.vector_set("docs", meta.generation, meta.shards[0])
    others = [
        keyslot(client.keys.stream("history-append", 0)),
        keyslot(client.keys.stream("index", 1)),
        keyslot(vset),
        keyslot(client.keys.sessions_names()),  # the session index every history batch updates
    ]
    session_slots = list(chosen)
    slots = session_slots[:8] + others[:2] + session_slots[8:16] + others[2:] + session_slots[16:]
    assert len(set(slots)) == len(slots) == MOVED_SESSIONS + len(others)
    load = Load(client, store)
    reshard = Reshard(resharder, slots, load)
    workers: list[ProcessWorker] = []
    try:
        workers += [ProcessWorker(settings).start() for _ in range(3)]
        # When the load runs and, from its second round on, the slots move one group after another
        load.thread.start()
        while load.rounds_done < 2 and load.thread.is_alive():
            time.sleep(0.05)
        reshard.thread.start()
        load.thread.join(DEADLINE)
        reshard.thread.join(max(1.0, DEADLINE - (time.monotonic() - started)))
        assert load.error is None, f"enqueue failed during resharding: {load.error!r}"
        assert reshard.error is None, f"the resharding itself failed: {reshard.error!r}"
        while time.monotonic() - started < DEADLINE and not drained(client):
            time.sleep(0.25)
        for w in workers:
            w.kill()
        for w in workers:  # shown when an assertion below fails
            print("\n".join(ln for ln in w.output().splitlines() if "WARNING" in ln or "ERROR" in ln)[-3000:])
        assert drained(client), f"work not drained within {DEADLINE} s: {client.status().totals()}"
        # Then the slots did move while jobs were still being enqueued, under traffic that met MOVED
        # and ASK / TRYAGAIN
        assert [m[0] for m in reshard.moves] == slots
        assert load.rounds_done == ROUNDS and 0 < reshard.done_at < load.last_round_at
        assert all(resharder.owner(slot) == target for slot, _source, target in reshard.moves)
        stats = error_stats(resharder)
        assert stats.get("MOVED", 0) > 0 and stats.get("ASK", 0) + stats.get("TRYAGAIN", 0) > 0, stats
        # and nothing was dead-lettered, every message is there once and in order
        assert client.status().dead_letters == 0
        for s in range(SESSIONS):
            got = [int(str(m.content)) for m in history.read(f"s{s}")]
            assert got == list(range(s, APPENDS, SESSIONS)), f"session s{s} differs"
        # and every document is indexed once
        ids = [f"d{n}" for n in range(DOCUMENTS)]
        assert [h.doc_id if h else None for h in store.session.get(ids)] == ids
        assert store.session.count() == DOCUMENTS
        assert client.redis.zcard(client.keys.sessions_names()) == SESSIONS
        print(f"resharding: {len(reshard.moves)} slots moved, errorstats {stats}, "
              f"{time.monotonic() - started:.1f} s")  # fmt: skip
    finally:
        for w in workers:
            w.kill()
        resharder.close()
        client.close()

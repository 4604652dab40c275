"""Conversation stores against real Redis: fidelity, order under redelivery, TTL, trimming,
deleting, and listing sessions (Redis 8.2, and plain Redis 7 where semantic recall is missing)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, message_to_dict

from sluice.errors import CapabilityMissing, QueueFull
from sluice.facade.client import Client
from sluice.stores.history import HistoryStore, HistoryWrite
from sluice.stores.sessions import SessionPage
from sluice_workers.handlers.history import HistoryHandler
from support.messages import every_kind
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until


def human(text: str) -> dict[str, Any]:
    return message_to_dict(HumanMessage(text))


def texts(messages: list[Any]) -> list[str]:
    return [str(m.content) for m in messages]


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace))
    yield c
    c.close()


@pytest.fixture
def worker(client: Client) -> Iterator[ThreadWorker]:
    with ThreadWorker(client.settings) as w:
        yield w


@pytest.fixture
def store(client: Client) -> HistoryStore:
    return HistoryStore(client.redis, client.keys)


def test_every_message_kind_comes_back_field_for_field(client: Client, worker: ThreadWorker) -> None:
    # Given one message of every kind (tool calls, usage, ids, artifacts, merged chunks)
    sent = every_kind()
    history = client.chat_history("fidelity")
    # When they are appended in two jobs and read back
    history.add_messages(sent[:4])
    history.add_messages(sent[4:])
    back = history.messages
    # Then each is the same class with every field equal, in order
    assert [type(m) for m in back] == [type(m) for m in sent]
    assert [m.model_dump() for m in back] == [m.model_dump() for m in sent]


def test_reordered_and_repeated_jobs_give_the_session_applied_in_order(store: HistoryStore) -> None:
    # Given appends, a clear in the middle and trimming to 5 messages, versioned by entry id
    jobs = [
        HistoryWrite(
            "s",
            f"1000-{i}",
            "clear" if i == 6 else "append",
            [] if i == 6 else [human(f"m{i}a"), human(f"m{i}b")],
            max_messages=5,
        )
        for i in range(1, 12)
    ]
    store.write(jobs)
    expected = texts(store.read("s"))
    assert expected == ["m9b", "m10a", "m10b", "m11a", "m11b"]
    rng = random.Random(7)
    for attempt in range(5):
        # When the same jobs are applied in another order, some twice (redelivery, reclaim)
        shuffled = [HistoryWrite(f"s{attempt}", j.version, j.op, j.messages, max_messages=5) for j in jobs]
        shuffled += rng.sample(shuffled, 6)
        rng.shuffle(shuffled)
        for start in range(0, len(shuffled), 3):
            store.write(shuffled[start : start + 3])
        # Then the session reads exactly as when applied once, in order
        assert texts(store.read(f"s{attempt}")) == expected


def test_ttl_is_refreshed_by_every_write_and_the_session_then_expires(
    client: Client, worker: ThreadWorker
) -> None:
    # Given a history whose sessions live 1.5 s after their last write
    history = client.chat_history("short", ttl=1.5)
    history.add_messages([HumanMessage("one")])
    history.flush()
    time.sleep(0.6)
    # When it is written again
    history.add_messages([AIMessage("two")])
    history.flush()
    # Then the TTL starts over, for the messages and the session's metadata alike
    assert client.redis.pttl(client.keys.history("short")) > 1_000
    assert texts(history.messages) == ["one", "two"]
    # And without writes the session expires and leaves the listing
    wait_until(lambda: not history.messages, 5, "the session to expire")
    assert [s.session_id for s in client.sessions().sessions] == []


def test_max_messages_keeps_the_newest_and_get_recent_reads_the_last_k(
    client: Client, worker: ThreadWorker
) -> None:
    # Given a history that keeps 4 messages
    history = client.chat_history("trim", max_messages=4)
    # When 10 are appended one by one
    for i in range(10):
        history.add_messages([HumanMessage(f"m{i}")])
    # Then the newest 4 remain, in order, and get_recent reads the tail
    assert texts(history.messages) == ["m6", "m7", "m8", "m9"]
    assert texts(history.get_recent(2)) == ["m8", "m9"]
    assert texts(history.get_recent(50)) == ["m6", "m7", "m8", "m9"]


def test_a_redelivered_append_does_not_bring_back_trimmed_messages(store: HistoryStore) -> None:
    # Given a session trimmed to 2 messages by a later append
    old = HistoryWrite("t", "1000-1", "append", [human("a"), human("b")], max_messages=2)
    store.write([old, HistoryWrite("t", "1000-2", "append", [human("c"), human("d")], max_messages=2)])
    # When the older append is delivered again, even by a writer that does not trim
    store.write([old, HistoryWrite("t", "1000-1", "append", old.messages)])
    # Then the trimmed messages stay gone
    assert texts(store.read("t")) == ["c", "d"]


def test_delete_lands_after_pending_appends_and_a_late_older_append_cannot_revive_it(
    client: Client, worker: ThreadWorker, store: HistoryStore
) -> None:
    # Given appends and a delete sent back to back (no wait in between)
    history = client.chat_history("doomed")
    history.add_messages([HumanMessage("a")])
    history.add_messages([AIMessage("b")])
    history.delete()
    # Then the delete is applied after them: nothing left, nothing listed
    assert history.messages == []
    assert client.sessions().sessions == []
    # When an append older than the delete is delivered again
    store.write([HistoryWrite("doomed", "1-0", "append", [human("zombie")])])
    # Then the session stays deleted; a new append revives it
    assert history.messages == []
    history.add_messages([HumanMessage("again")])
    assert texts(history.messages) == ["again"]
    assert [(s.session_id, s.messages) for s in client.sessions().sessions] == [("doomed", 1)]


def test_clear_keeps_the_session_listed_with_no_messages(client: Client, worker: ThreadWorker) -> None:
    history = client.chat_history("cleared")
    history.add_messages([HumanMessage("a")])
    history.clear()
    assert history.messages == []
    assert [(s.session_id, s.messages) for s in client.sessions().sessions] == [("cleared", 0)]


def test_sessions_are_listed_by_prefix_in_pages_with_activity_and_size(
    client: Client, store: HistoryStore
) -> None:
    # Given sessions of two users, written at known times (entry ids carry the enqueue ms)
    ms = 1_700_000_000_000
    writes = [
        HistoryWrite(f"u1:{name}", f"{ms + i}-0", "append", [human("x")] * (i + 1))
        for i, name in enumerate(["a", "b", "c", "d", "e"])
    ]
    writes.append(HistoryWrite("u2:z", f"{ms + 9}-0", "append", [human("y")]))
    store.write(writes)
    store.write([HistoryWrite("u1:a", f"{ms + 20}-0", "append", [human("later")])])
    # When user 1's sessions are listed two at a time
    pages = [client.sessions("u1:", count=2)]
    while pages[-1].cursor is not None:
        pages.append(client.sessions("u1:", cursor=pages[-1].cursor, count=2))
    # Then every session of the prefix comes once, in name order, with its size and last write
    listed = [s for p in pages for s in p.sessions]
    assert [s.session_id for s in listed] == ["u1:a", "u1:b", "u1:c", "u1:d", "u1:e"]
    assert [s.messages for s in listed] == [2, 2, 3, 4, 5]
    assert listed[0].last_activity == (ms + 20) / 1000
    assert listed[1].last_activity_at.timestamp() == (ms + 1) / 1000
    assert [len(p.sessions) for p in pages] == [2, 2, 1]
    assert [s.session_id for s in client.sessions("u2").sessions] == ["u2:z"]
    assert client.sessions("u3").sessions == []


def test_expired_sessions_are_skipped_by_listing_and_swept_from_the_index(
    client: Client, store: HistoryStore
) -> None:
    # Given two sessions, one of which expires
    store.write([HistoryWrite("live", "1-0", "append", [human("a")])])
    store.write([HistoryWrite("brief", "1-1", "append", [human("b")], ttl=0.2)])
    time.sleep(0.4)
    # Then listing skips the expired one at once
    page = client.sessions(count=1)
    assert [s.session_id for s in page.sessions] == ["live"]  # "brief" sorts first: skipped, read on
    assert client.sessions(count=1, cursor=page.cursor) == SessionPage([], None)
    # And the worker's sweep removes it from the index
    handler = HistoryHandler.build(client.redis, client.settings, cluster=False)
    assert handler.sweep() == 1
    assert client.redis.zscore(client.keys.history_sessions(), "brief") is None
    assert client.redis.zscore(client.keys.sessions_expires(), "brief") is None
    assert client.redis.zscore(client.keys.history_sessions(), "live") is not None


async def test_asyncio_history_and_listing(client: Client, worker: ThreadWorker) -> None:
    history = client.chat_history("async")
    await history.aadd_messages([HumanMessage("a"), AIMessage("b"), HumanMessage("c")])
    assert texts(await history.aget_messages()) == ["a", "b", "c"]
    assert texts(await history.aget_recent(1)) == ["c"]
    assert [s.session_id for s in (await client.asessions("as")).sessions] == ["async"]
    await history.adelete()
    await history.aflush()
    assert await history.aget_messages() == []
    await client.aclose()


def test_plain_redis_7_keeps_history_and_says_what_semantic_recall_needs(redis7: Any, namespace: str) -> None:
    # Given a client and a worker on Redis 7 without modules
    client = Client(fast_settings(redis7.url, namespace))
    with ThreadWorker(client.settings):
        # Then plain history, trimming, deleting and listing work
        history = client.chat_history("r7", max_messages=2, ttl=60)
        history.add_messages([HumanMessage("a"), AIMessage("b"), HumanMessage("c")])
        assert texts(history.messages) == ["b", "c"]
        assert [(s.session_id, s.messages) for s in client.sessions().sessions] == [("r7", 2)]
        client.chat_history("gone").add_messages([HumanMessage("x")])
        gone = client.chat_history("gone")
        gone.delete()
        gone.flush()
        assert [s.session_id for s in client.sessions().sessions] == ["r7"]
    # And semantic recall says what is missing and how to get it
    with pytest.raises(CapabilityMissing, match=r"(?i)redis 8|redisearch"):
        client.chat_history("r7", semantic=True)
    with pytest.raises(CapabilityMissing):
        client.memory_retriever()
    client.close()


def test_buffered_appends_return_at_once_keep_order_and_are_read_back(
    client: Client, worker: ThreadWorker
) -> None:
    # Given a history whose appends go through the client's background sender
    history = client.chat_history("buffered", write="buffered", max_messages=50)
    other = client.chat_history("buffered", write="buffered")
    # When many appends, a clear and more appends are made back to back, by two objects
    for i in range(30):
        history.add_messages([HumanMessage(f"a{i}")])
    other.clear()
    for i in range(30):
        (history if i % 2 else other).add_messages([AIMessage(f"b{i}")])
    # Then a read waits for both the sending and the applying, and order holds across objects
    assert texts(history.messages) == [f"b{i}" for i in range(30)]
    assert [s.messages for s in client.sessions("buffered").sessions] == [30]


def test_a_buffered_append_that_cannot_be_enqueued_fails_the_next_read(redis8: Any, namespace: str) -> None:
    # Given a queue that holds one job, and no worker to drain it
    client = Client(fast_settings(redis8.url, namespace, queue={"max_backlog": 1}))
    history = client.chat_history("full", write="buffered", wait_timeout=2)
    # When appends are buffered beyond that
    history.add_messages([HumanMessage("one")])
    history.add_messages([HumanMessage("two")])
    # Then the append calls returned, and the next flush (or read) reports why they were refused
    with pytest.raises(QueueFull):
        history.flush()
    client.close()


@pytest.mark.cluster
def test_on_a_cluster_sessions_spread_over_primaries_and_still_list_trim_and_delete(
    cluster: Any, namespace: str
) -> None:
    # Given a worker and 30 sessions whose keys land on every primary
    client = Client(fast_settings(cluster.url, namespace))
    with ThreadWorker(client.settings):
        histories = [client.chat_history(f"c{i:02d}", max_messages=3, ttl=60) for i in range(30)]
        for h in histories:
            h.add_messages([HumanMessage("a"), AIMessage("b"), HumanMessage("c"), AIMessage("d")])
        slots = {client.redis.keyslot(client.keys.history(h.session_id)) for h in histories}
        assert len({client.redis.nodes_manager.get_node_from_slot(s).name for s in slots}) == 3
        # Then each keeps its newest 3, listing pages across them, and a delete lands
        assert [texts(h.messages) for h in histories] == [["b", "c", "d"]] * 30
        histories[0].delete()
        histories[0].flush()
        listed = client.sessions("c", count=7)
        names = [s.session_id for s in listed.sessions]
        while listed.cursor is not None:
            listed = client.sessions("c", cursor=listed.cursor, count=7)
            names += [s.session_id for s in listed.sessions]
        assert names == [f"c{i:02d}" for i in range(1, 30)]
    client.close()

"""Checkpointer jobs and stored checkpoints, without a server: what a put and a task's writes
enqueue, how stored members read back, and what tracked enqueues hand enqueue.lua."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT

from sluice.errors import ConfigError
from sluice.facade import checkpoint_codec as codec
from sluice.jobs.models import CheckpointPayload, HistoryAppendPayload
from sluice.keys import Keys
from sluice.queue import plan as planning
from sluice.queue.pending import PENDING_TTL_MS
from sluice.settings import LimitSettings
from sluice.stores import checkpoints as store
from sluice.stores.versions import padded

SERDE = JsonPlusSerializer()
CONFIG: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": "", "checkpoint_id": "parent-1"}}


def checkpoint(values: dict[str, Any], versions: dict[str, Any]) -> Any:
    c = empty_checkpoint()
    c["channel_values"] = values
    c["channel_versions"] = versions
    return c


def test_a_put_carries_blobs_of_new_versions_only_and_refs_to_every_channel() -> None:
    c = checkpoint({"a": "new", "b": "old"}, {"a": "2", "b": "1", "gone": "1"})
    p = codec.put_payload(SERDE, CONFIG, c, {"source": "loop", "step": 3}, {"a": "2", "gone": "1"}, 60.0)
    assert (p.thread_id, p.op, p.ns, p.checkpoint_id, p.ttl) == ("t1", "put", "", c["id"], 60.0)
    assert [(ch, v, kind) for ch, v, kind, _ in p.blobs] == [("a", "2", "msgpack"), ("gone", "1", "empty")]
    assert SERDE.loads_typed(p.blobs[0][2:]) == "new"
    stored = store._checkpoint(
        [_member("", c["id"], p.record), [b"x" * 29 + b"msgpack\0" + p.blobs[0][3], None, None], []]
    )
    assert stored.parent_id == "parent-1"
    assert stored.metadata == {"source": "loop", "step": 3}
    assert stored.blob_refs == ["a\x002", "b\x001", "gone\x001"]
    assert stored.blobs == {"a": ("2", ("msgpack", p.blobs[0][3]))}
    restored = codec.to_tuple(SERDE, "t1", stored)
    assert restored.checkpoint["channel_values"] == {"a": "new"}
    assert restored.checkpoint["id"] == c["id"]
    assert restored.parent_config == {
        "configurable": {"thread_id": "t1", "checkpoint_ns": "", "checkpoint_id": "parent-1"}
    }


def _member(ns: str, cid: str, record: str) -> bytes:
    return f"{ns}\0{cid}\0".encode() + padded("1-0").encode() + record.encode()


def test_writes_map_special_channels_to_their_negative_indexes_and_read_back_sorted() -> None:
    p = codec.writes_payload(
        SERDE, CONFIG, [("x", 1), (ERROR, "boom"), (INTERRUPT, {"q": 1})], "task", "a:b", None
    )
    assert [(i, ch) for i, ch, _, _ in p.writes] == [(0, "x"), (-1, ERROR), (-3, INTERRUPT)]
    members = [
        f"\0parent-1\0task\0{i}\0".encode() + padded("1-0").encode() + f"{ch}\0a:b\0{kind}\0".encode() + data
        for i, ch, kind, data in p.writes
    ]
    stored = store._checkpoint(
        [_member("", "parent-1", store.make_record(None, {}, ("msgpack", b"\x80"), [])), [], members]
    )
    assert [(w.idx, w.channel, w.task_path) for w in stored.writes] == [
        (0, "x", "a:b"),
        (-1, ERROR, "a:b"),
        (-3, INTERRUPT, "a:b"),
    ]
    # get_tuple orders them as LangGraph applies them: (task_path, task_id, idx)
    writes = sorted(stored.writes, key=lambda w: (w.task_path, w.task_id, w.idx))
    assert [w.idx for w in writes] == [-3, -1, 0]


def test_refusals_name_what_to_do() -> None:
    with pytest.raises(ConfigError, match="thread_id"):
        codec.thread_of({"configurable": {}})
    with pytest.raises(ConfigError, match="checkpoint_id"):
        codec.writes_payload(SERDE, {"configurable": {"thread_id": "t"}}, [("x", 1)], "task", "", None)

    class Pickler(JsonPlusSerializer):
        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            return "pickle", pickle.dumps(obj)

    with pytest.raises(ConfigError, match="no pickles"):
        codec.typed(Pickler(), {"a": 1})
    with pytest.raises(ConfigError, match="JSON"):
        codec.put_payload(SERDE, CONFIG, checkpoint({}, {}), {"bad": object()}, {}, None)  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="NUL"):
        store.write_call(Keys("ns"), CheckpointPayload(thread_id="t", ns="a\0b"), "1-0")


def test_channel_versions_increase_in_string_order() -> None:
    versions = [codec.next_version(None)]
    for _ in range(12):
        versions.append(codec.next_version(versions[-1]))
    assert versions == sorted(versions)
    assert int(codec.next_version(41).split(".")[0]) == 42


def test_a_tracked_enqueue_names_each_jobs_pending_set() -> None:
    keys = Keys("ns", 4)
    payloads = [
        CheckpointPayload(thread_id="t1", op="delete"),
        CheckpointPayload(thread_id="t1", op="delete"),
    ]
    batches, _ = planning.plan(keys, LimitSettings(), payloads, track=True)
    ((segment,),) = planning.rounds(batches)
    call = planning.script_call(keys, [segment], 100, 2.0)
    pending = keys.pending(batches[0].stream, "checkpoint:t1")
    assert call.keys[3:] == [pending, pending]
    assert call.args[3] == PENDING_TTL_MS
    assert call.args[4:6] == [2, 2]  # two jobs, tracked
    resent = planning.script_call(keys, [segment.resent()], 100, 2.0)
    assert resent.args[5] == 3 and resent.keys == call.keys  # tracked, and looked up first
    # an untracked enqueue keeps the three keys it always had
    batches, _ = planning.plan(keys, LimitSettings(), [HistoryAppendPayload(session_id="s")])
    ((segment,),) = planning.rounds(batches)
    assert len(planning.script_call(keys, [segment], 100, 2.0).keys) == 3


def test_a_threads_keys_share_one_hash_tag_even_with_braces_in_its_id() -> None:
    keys = Keys("ns")
    for thread_id in ("plain", "with{braces}", ""):
        tags = {k.split("{", 1)[1].split("}", 1)[0] for k in keys.checkpoint_keys(thread_id)}
        assert len(tags) == 1

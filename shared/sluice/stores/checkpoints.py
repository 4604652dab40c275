"""The LangGraph checkpoint store: four keys per thread, one hash tag, written only by workers.

Workers apply checkpointer jobs with checkpoint_write.lua (every item carries its job's version);
readers fetch a checkpoint with its blobs and pending writes in one checkpoint_read.lua call. The
values are LangGraph-serialised bytes that this module never decodes: it builds the calls and
splits the replies, and `sluice.facade.checkpointer` turns them into LangGraph objects. Nothing
here imports LangGraph, so workers run without it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import redis.exceptions as rex

from sluice.errors import StoreCorrupted
from sluice.jobs.models import CheckpointPayload
from sluice.keys import Keys
from sluice.stores.versions import padded
from sluice.transport.runner import Call
from sluice.transport.translate import ServerErrors
from sluice.vectors.backend import check

TOMBSTONE_TTL: Final = 24 * 3600.0
"""Seconds a deleted thread's tombstone stops redelivered older jobs from reviving it."""
VERSION_WIDTH: Final = 29
LIST_BUDGET: Final = 1000
"""Checkpoints one listing call looks at, at most (bounds the server time of one call)."""

WriteStatus = Literal["superseded", "applied", "deleted"]


def check_name(value: str, what: str) -> str:
    """Names live between NUL separators in stored members: refuse a NUL inside one."""
    if "\0" in value:
        raise ValueError(f"{what} {value[:60]!r} contains a NUL character, which sluice cannot store")
    return value


def blob_ref(channel: str, version: str) -> str:
    return f"{check_name(channel, 'channel name')}\0{check_name(version, 'channel version')}"


def make_record(
    parent_id: str | None,
    metadata: dict[str, Any],
    checkpoint: tuple[str, bytes],
    blob_refs: Sequence[str],
) -> str:
    """The stored checkpoint (without its channel values): its parent, metadata (JSON, so that
    listings filter on the server), the serialised rest of the checkpoint, and the blobs it reads."""
    kind, data = checkpoint
    return json.dumps(
        {"p": parent_id, "m": metadata, "c": [kind, base64.b64encode(data).decode()], "b": list(blob_refs)},
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )


# --- writes (the checkpoint handler) -------------------------------------------------------------
def write_call(keys: Keys, p: CheckpointPayload, version: str) -> Call:
    """The checkpoint_write.lua call applying one job at `version` (its entry id)."""
    thread_keys = keys.checkpoint_keys(p.thread_id)
    ttl_ms = int(p.ttl * 1000) if p.ttl else 0
    args: list[Any] = [padded(version), p.op, ttl_ms, int(TOMBSTONE_TTL * 1000)]
    if p.op == "put":
        args += [p.ns, p.checkpoint_id, p.record, p.run_id]
        for channel, channel_version, kind, data in p.blobs:
            args += [blob_ref(channel, channel_version), typed(kind, data)]
    elif p.op == "writes":
        args += [
            p.ns,
            p.checkpoint_id,
            check_name(p.task_id, "task id"),
            check_name(p.task_path, "task path"),
        ]
        for idx, channel, kind, data in p.writes:
            args += [idx, check_name(channel, "channel name"), typed(kind, data)]
    elif p.op == "delete-runs":
        args += p.run_ids
    for name, value in (("namespace", p.ns), ("checkpoint id", p.checkpoint_id)):
        check_name(value, name)
    return Call(tuple(args), route=thread_keys[0], script="checkpoint_write", keys=thread_keys)


def typed(kind: str, data: bytes) -> bytes:
    return check_name(kind, "serializer type").encode() + b"\0" + data


@dataclass(frozen=True, slots=True)
class WriteResult:
    status: WriteStatus
    runs_gone: list[str]  # runs of which the thread holds no checkpoint any more (deletions)


def write_result(reply: Any, key: str) -> WriteResult:
    if isinstance(reply, rex.ResponseError):
        if ServerErrors.matches(reply, ServerErrors.WRONGTYPE):
            raise StoreCorrupted(
                f"a key of checkpoint thread {key} has the wrong Redis type; delete or rename it"
            ) from None
        check(reply, "write a checkpoint")
    statuses: tuple[WriteStatus, ...] = ("superseded", "applied", "deleted")
    code, *runs = reply
    return WriteResult(statuses[int(code)], [_text(r) for r in runs])


def run_index_calls(keys: Keys, p: CheckpointPayload, result: WriteResult) -> list[Call]:
    """The run index after a write: a put of a run adds its thread; a deletion takes the thread
    out of the runs it holds no checkpoint of any more."""
    if p.op == "put" and p.run_id and result.status == "applied":
        key = keys.checkpoint_run(p.run_id)
        calls = [Call(("SADD", key, p.thread_id), route=key)]
        if p.ttl:
            calls.append(Call(("PEXPIRE", key, int(p.ttl * 1000)), route=key))
        return calls
    return [
        Call(("SREM", keys.checkpoint_run(r), p.thread_id), route=keys.checkpoint_run(r))
        for r in result.runs_gone
    ]


def runs_calls(keys: Keys, run_ids: Sequence[str]) -> list[Call]:
    """SMEMBERS of each run's threads (what `delete_for_runs` reads)."""
    return [Call(("SMEMBERS", keys.checkpoint_run(r)), route=keys.checkpoint_run(r)) for r in run_ids]


# --- reads (the checkpointer) --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredWrite:
    task_id: str
    idx: int
    channel: str
    task_path: str
    value: tuple[str, bytes]  # (serializer type, bytes)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    ns: str
    checkpoint_id: str
    parent_id: str | None
    metadata: dict[str, Any]
    checkpoint: tuple[str, bytes]  # the checkpoint without channel values, serialised
    blob_refs: list[str]  # "<channel>\0<channel version>" of every channel it has
    blobs: dict[str, tuple[str, tuple[str, bytes]]]  # channel -> (channel version, serialised value)
    writes: list[StoredWrite]


@dataclass(frozen=True, slots=True)
class ReadResult:
    checkpoints: list[StoredCheckpoint]
    cursor: bytes  # where a listing goes on; b"" = nothing further (always b"" but for listings)


def _read(keys: Keys, thread_id: str, args: tuple[Any, ...]) -> Call:
    _, ckpts, writes, blobs = keys.checkpoint_keys(thread_id)
    return Call(args, route=ckpts, script="checkpoint_read", keys=(ckpts, writes, blobs))


def get_call(keys: Keys, thread_id: str, ns: str, checkpoint_ids: Sequence[str]) -> Call:
    return _read(keys, thread_id, ("get", check_name(ns, "namespace"), *checkpoint_ids))


def latest_call(keys: Keys, thread_id: str, ns: str) -> Call:
    return _read(keys, thread_id, ("latest", check_name(ns, "namespace")))


def list_call(
    keys: Keys,
    thread_id: str,
    ns: str | None,
    *,
    before: str | None = None,
    cursor: bytes = b"",
    limit: int = 100,
    filter: dict[str, Any] | None = None,
) -> Call:
    """Newest first; `ns=None` lists every namespace. Continue with the reply's cursor."""
    flt = json.dumps(filter, ensure_ascii=False, allow_nan=False) if filter else ""
    return _read(
        keys,
        thread_id,
        (
            "list",
            check_name(ns or "", "namespace"),
            1 if ns is None else 0,
            before or "",
            cursor,
            limit,
            flt,
            LIST_BUDGET,
        ),
    )


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="surrogateescape")


def _typed(value: bytes) -> tuple[str, bytes]:
    kind, sep, data = value.partition(b"\0")
    if not sep:
        raise ValueError("no serializer type")
    return _text(kind), data


def _checkpoint(entry: Sequence[Any]) -> StoredCheckpoint:
    member, blob_values, write_members = entry
    ns, cid, rest = bytes(member).split(b"\0", 2)
    record = json.loads(rest[VERSION_WIDTH:])
    kind, data = str(record["c"][0]), str(record["c"][1])
    refs: list[str] = record.get("b") or []
    blobs: dict[str, tuple[str, tuple[str, bytes]]] = {}
    for ref, value in zip(refs, blob_values, strict=True):
        if value is not None:
            channel, _, version = ref.partition("\0")
            blobs[channel] = (version, _typed(bytes(value)[VERSION_WIDTH:]))
    writes = []
    for w in write_members:
        _, _, task, idx, tail = bytes(w).split(b"\0", 4)
        name, path, kind_w, value_w = tail[VERSION_WIDTH:].split(b"\0", 3)
        writes.append(StoredWrite(_text(task), int(idx), _text(name), _text(path), (_text(kind_w), value_w)))
    return StoredCheckpoint(
        ns=_text(ns),
        checkpoint_id=_text(cid),
        parent_id=record.get("p"),
        metadata=record.get("m") or {},
        checkpoint=(kind, base64.b64decode(data)),
        blob_refs=refs,
        blobs=blobs,
        writes=writes,
    )


def parse_read(reply: Any, thread_id: str) -> ReadResult:
    if isinstance(reply, rex.ResponseError):
        if ServerErrors.matches(reply, ServerErrors.WRONGTYPE):
            raise StoreCorrupted(
                f"a key of checkpoint thread {thread_id!r} has the wrong Redis type; delete or rename it"
            ) from None
        check(reply, "read checkpoints")
    cursor, *entries = reply
    try:
        found = [_checkpoint(e) for e in entries]
    except (ValueError, KeyError, TypeError) as e:
        raise StoreCorrupted(
            f"a checkpoint of thread {thread_id!r} is not in sluice's format ({e}); delete the thread"
        ) from None
    return ReadResult(found, bytes(cursor or b""))


def refresh_calls(keys: Keys, thread_id: str, ttl: float) -> list[Call]:
    """PEXPIRE of every key of the thread: a read keeps a thread with a TTL alive."""
    return [Call(("PEXPIRE", key, int(ttl * 1000)), route=key) for key in keys.checkpoint_keys(thread_id)]

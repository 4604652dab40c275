"""LangGraph checkpoints <-> checkpointer jobs and stored checkpoints: no I/O, one copy for the sync
and asyncio shells of `sluice.facade.checkpointer`.

Values go through the saver's serializer (LangGraph's `JsonPlusSerializer` unless the app passes
another); a serializer that falls back to pickle is refused. Metadata is stored as JSON, as
LangGraph's own savers store it, so that listings filter on the server.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any, Final, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from sluice.errors import ConfigError
from sluice.jobs.models import CheckpointPayload
from sluice.stores.checkpoints import StoredCheckpoint, blob_ref, make_record

DURABILITY_KEY: Final = "__pregel_durability"
"""Where LangGraph puts `durability=` in the config it hands the saver (CONFIG_KEY_DURABILITY)."""


def target(thread_id: str) -> str:
    """The target key of a thread's jobs (their partition, and their pending set)."""
    return CheckpointPayload(thread_id=thread_id).target_key()


def thread_of(config: RunnableConfig) -> tuple[str, str, str | None]:
    """(thread id, checkpoint namespace, checkpoint id or None) of a config."""
    conf = config.get("configurable") or {}
    thread_id = conf.get("thread_id")
    if thread_id is None or thread_id == "":
        raise ConfigError(
            "this checkpointer call needs a thread: pass config={'configurable': {'thread_id': ...}}"
        )
    return str(thread_id), str(conf.get("checkpoint_ns") or ""), conf.get("checkpoint_id") or None


def typed(serde: SerializerProtocol, value: Any) -> tuple[str, bytes]:
    kind, data = serde.dumps_typed(value)
    if kind == "pickle":
        raise ConfigError(
            f"the serializer pickled a {type(value).__name__}; sluice stores no pickles: make the value "
            "serializable by LangGraph's JsonPlusSerializer, or pass a serializer without pickle_fallback"
        )
    return kind, bytes(data)


def _metadata(config: RunnableConfig, metadata: CheckpointMetadata) -> dict[str, Any]:
    return dict(get_serializable_checkpoint_metadata(config, metadata))


def _run(metadata: dict[str, Any]) -> str:
    run = metadata.get("run_id")
    return run if isinstance(run, str) else ""


def put_payload(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
    ttl: float | None,
) -> CheckpointPayload:
    thread_id, ns, parent = thread_of(config)
    rest: dict[str, Any] = dict(checkpoint)
    values: dict[str, Any] = rest.pop("channel_values", None) or {}
    blobs = []
    for channel, version in new_versions.items():
        kind, data = typed(serde, values[channel]) if channel in values else ("empty", b"")
        blobs.append((channel, str(version), kind, data))
    refs = [blob_ref(channel, str(v)) for channel, v in checkpoint["channel_versions"].items()]
    md = _metadata(config, metadata)
    try:
        record = make_record(parent, md, typed(serde, rest), refs)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"checkpoint metadata must be JSON (str, numbers, bool, None, lists, dicts): {e}"
        ) from None
    return CheckpointPayload(
        thread_id=thread_id,
        op="put",
        ns=ns,
        checkpoint_id=checkpoint["id"],
        record=record,
        blobs=blobs,
        run_id=_run(md),
        ttl=ttl,
    )


def writes_payload(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
    ttl: float | None,
) -> CheckpointPayload:
    thread_id, ns, checkpoint_id = thread_of(config)
    if checkpoint_id is None:
        raise ConfigError("put_writes needs the checkpoint: config['configurable']['checkpoint_id']")
    items = [
        (WRITES_IDX_MAP.get(channel, idx), channel, *typed(serde, value))
        for idx, (channel, value) in enumerate(writes)
    ]
    return CheckpointPayload(
        thread_id=thread_id,
        op="writes",
        ns=ns,
        checkpoint_id=checkpoint_id,
        task_id=task_id,
        task_path=task_path,
        writes=items,
        ttl=ttl,
    )


def config_of(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def to_tuple(serde: SerializerProtocol, thread_id: str, stored: StoredCheckpoint) -> CheckpointTuple:
    checkpoint: Checkpoint = serde.loads_typed(stored.checkpoint)
    checkpoint["channel_values"] = {
        channel: serde.loads_typed(value)
        for channel, (_, value) in stored.blobs.items()
        if value[0] != "empty"
    }
    writes = sorted(stored.writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
    return CheckpointTuple(
        config=config_of(thread_id, stored.ns, stored.checkpoint_id),
        checkpoint=checkpoint,
        metadata=cast(CheckpointMetadata, stored.metadata),
        parent_config=config_of(thread_id, stored.ns, stored.parent_id) if stored.parent_id else None,
        pending_writes=[(w.task_id, w.channel, serde.loads_typed(w.value)) for w in writes],
    )


def copies(stored: Iterable[StoredCheckpoint], thread_id: str, ttl: float | None) -> list[CheckpointPayload]:
    """Jobs that write `stored` (one thread's checkpoints, any order) into thread `thread_id`, as
    they are: same ids, metadata, serialised values and writes; each blob sent once."""
    out: list[CheckpointPayload] = []
    sent: set[tuple[str, str, str]] = set()
    for s in sorted(stored, key=lambda s: s.checkpoint_id):
        blobs = []
        for channel, (version, (kind, data)) in s.blobs.items():
            if (s.ns, channel, version) not in sent:
                sent.add((s.ns, channel, version))
                blobs.append((channel, version, kind, data))
        record = make_record(s.parent_id, s.metadata, s.checkpoint, s.blob_refs)
        out.append(
            CheckpointPayload(
                thread_id=thread_id,
                op="put",
                ns=s.ns,
                checkpoint_id=s.checkpoint_id,
                record=record,
                blobs=blobs,
                run_id=_run(s.metadata),
                ttl=ttl,
            )
        )
        tasks: dict[tuple[str, str], list[tuple[int, str, str, bytes]]] = {}
        for w in s.writes:
            tasks.setdefault((w.task_id, w.task_path), []).append((w.idx, w.channel, *w.value))
        out += [
            CheckpointPayload(
                thread_id=thread_id,
                op="writes",
                ns=s.ns,
                checkpoint_id=s.checkpoint_id,
                task_id=task_id,
                task_path=task_path,
                writes=items,
                ttl=ttl,
            )
            for (task_id, task_path), items in tasks.items()
        ]
    return out


def next_version(current: str | int | float | None) -> str:
    """Channel versions as LangGraph's in-memory and SQL savers make them: a zero-padded counter
    (string order = version order) and a random tail."""
    if current is None:
        n = 0
    elif isinstance(current, (int, float)):
        n = int(current)
    else:
        n = int(current.split(".")[0])
    return f"{n + 1:032}.{random.random():016}"


def run_deletions(run_ids: Sequence[str], replies: Sequence[Any]) -> list[CheckpointPayload]:
    """One `delete-runs` job per thread holding checkpoints of `run_ids` (SMEMBERS replies of the
    run index, in the order of `run_ids`)."""
    threads: dict[str, list[str]] = {}
    for run, reply in zip(run_ids, replies, strict=True):
        if isinstance(reply, BaseException):
            raise reply
        for t in reply or ():
            threads.setdefault(t.decode() if isinstance(t, bytes) else str(t), []).append(run)
    return [CheckpointPayload(thread_id=t, op="delete-runs", run_ids=runs) for t, runs in threads.items()]

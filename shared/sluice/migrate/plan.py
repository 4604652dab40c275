"""Records -> sluice jobs, the same jobs the facades enqueue (no I/O).

- cache: a ``cache-fill`` per entry (hashed layouts under their digest, `sluice.migrate.legacy`).
- semantic-cache: a ``cache-fill`` naming the embedder; a vector that can be copied is handed to
  the worker through the embeddings cache (`Seed`: the vector the embedder gives that text), so
  the worker finds it there and makes no embeddings call.
- vectors: ``index`` jobs carrying each document's vector, or none (the worker embeds).
- history: ``history-append`` jobs per conversation, in order, within the per-job limits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sluice.jobs.models import CacheFillPayload, HistoryAppendPayload, IndexDocument, IndexPayload
from sluice.keys import Keys
from sluice.migrate.records import CacheRecord, HistoryRecord, SemanticRecord, VectorRecord
from sluice.models.prompts import text_of
from sluice.settings import LimitSettings
from sluice.stores import generations as codec
from sluice.stores.messages import to_dicts
from sluice.vectors import ingest

_MESSAGE_OVERHEAD = 64


@dataclass(frozen=True, slots=True)
class Seed:
    """A vector to put in the embeddings cache for `text` before the job that embeds it is enqueued."""

    text: str
    vector: list[float]


def cache_fill(record: CacheRecord, cache: str) -> CacheFillPayload:
    return CacheFillPayload(
        llm_string=record.llm_string, prompt=record.prompt, generations=codec.to_dicts(record.generations),
        ttl=record.ttl, cache=cache,
    )  # fmt: skip


def copyable(record: SemanticRecord) -> bool:
    """sluice embeds a prompt's *text*; a stored vector of anything else (a chat prompt's JSON) cannot serve."""
    return record.vector is not None and text_of(record.prompt) == record.prompt


def semantic_fill(
    record: SemanticRecord, cache: str, embedder: str, copy: bool
) -> tuple[CacheFillPayload, Seed | None]:
    payload = CacheFillPayload(
        llm_string=record.llm_string, prompt=record.prompt, generations=codec.to_dicts(record.generations),
        ttl=record.ttl, cache=cache, embedder=embedder,
    )  # fmt: skip
    seed = (
        Seed(record.prompt, record.vector)
        if copy and record.vector is not None and copyable(record)
        else None
    )
    return payload, seed


def index_jobs(
    keys: Keys,
    limits: LimitSettings,
    index: str,
    records: Sequence[VectorRecord],
    *,
    copy: bool,
    embedder: str | None,
) -> list[IndexPayload]:
    """Documents with their vectors (copy) in one set of jobs, the rest (to embed) in another."""
    with_vectors = [r for r in records if copy and r.vector is not None]
    to_embed = [r for r in records if not (copy and r.vector is not None)]
    out: list[IndexPayload] = []
    for group, vectors in ((with_vectors, True), (to_embed, False)):
        if not group:
            continue
        docs = [
            IndexDocument(id=r.id, text=r.text, metadata=r.metadata, vector=r.vector if vectors else None)
            for r in group
        ]
        out += ingest.payloads(keys, limits, index, upserts=docs, embedder=None if vectors else embedder)
    return out


def history_jobs(
    record: HistoryRecord, limits: LimitSettings, *, replace: bool
) -> list[HistoryAppendPayload]:
    """The conversation in order: chunks within the message count and byte limits (one partition)."""
    out: list[HistoryAppendPayload] = []
    if replace:
        out.append(HistoryAppendPayload(session_id=record.session_id, op="clear"))
    max_bytes = int(limits.max_payload_bytes * 0.8)
    chunk: list[dict[str, object]] = []
    used = 0
    for message in to_dicts(record.messages):
        size = len(json.dumps(message, default=str).encode()) + _MESSAGE_OVERHEAD
        if chunk and (len(chunk) >= limits.max_messages_per_job or used + size > max_bytes):
            out.append(HistoryAppendPayload(session_id=record.session_id, messages=chunk, ttl=record.ttl))
            chunk, used = [], 0
        chunk.append(message)
        used += size
    if chunk:
        out.append(HistoryAppendPayload(session_id=record.session_id, messages=chunk, ttl=record.ttl))
    return out

"""Turning documents into `index` jobs: ids, per-partition grouping, size limits (no I/O).

Every job for one document id must land on the same partition stream so that its versions
(entry ids) are comparable; a job's partition is chosen by its first document
(`IndexPayload.target_key`), so a job only ever holds documents of one partition.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sluice.errors import InvalidArgument, PayloadTooLarge
from sluice.jobs.models import IndexDocument, IndexPayload
from sluice.keys import Keys
from sluice.settings import LimitSettings
from sluice.vectors.documents import metadata_json

_OVERHEAD = 200  # bytes of JSON around one document
_PER_FLOAT = 24  # bytes of one float in JSON, generously


def new_ids(ids: Sequence[str | None] | None, count: int) -> list[str]:
    """The given ids, with a fresh uuid wherever one is missing."""
    given = list(ids) if ids is not None else [None] * count
    if len(given) != count:
        raise InvalidArgument(f"got {len(given)} ids for {count} texts; give one id per text (or None)")
    return [i if i else uuid.uuid4().hex for i in given]


def documents(
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str],
    vectors: Sequence[Sequence[float]] | None,
    limits: LimitSettings,
) -> list[IndexDocument]:
    if metadatas is not None and len(metadatas) != len(texts):
        raise InvalidArgument(
            f"got {len(metadatas)} metadatas for {len(texts)} texts; give one per text (or None)"
        )
    out = []
    for i, text in enumerate(texts):
        metadata = dict((metadatas[i] if metadatas else None) or {})
        size = len(metadata_json(metadata).encode())
        if size > limits.max_metadata_bytes:
            raise PayloadTooLarge(
                f"metadata of document {ids[i]!r} (bytes)", size, limits.max_metadata_bytes,
                "SLUICE_LIMITS__MAX_METADATA_BYTES",
            )  # fmt: skip
        vector = [float(x) for x in vectors[i]] if vectors is not None else None
        out.append(IndexDocument(id=ids[i], text=text, metadata=metadata, vector=vector))
    return out


def _size(doc: IndexDocument) -> int:
    meta = len(json.dumps(doc.metadata, default=str))
    return _OVERHEAD + len(doc.id) + len(doc.text.encode()) * 2 + meta + _PER_FLOAT * len(doc.vector or ())


def _chunks(items: Iterable[Any], size_of: Any, max_count: int, max_bytes: int) -> list[list[Any]]:
    chunks: list[list[Any]] = [[]]
    used = 0
    for item in items:
        size = size_of(item)
        if chunks[-1] and (len(chunks[-1]) >= max_count or used + size > max_bytes):
            chunks.append([])
            used = 0
        chunks[-1].append(item)
        used += size
    return [c for c in chunks if c]


def payloads(
    keys: Keys,
    limits: LimitSettings,
    index: str,
    *,
    upserts: Sequence[IndexDocument] = (),
    deletes: Sequence[str] = (),
    embedder: str | None = None,
    batch_size: int | None = None,
    generation: int | None = None,
) -> list[IndexPayload]:
    """Jobs holding documents of one partition each, within the document and byte limits
    (`generation`: for that generation only, as a migration's backfill)."""
    max_count = min(batch_size or limits.max_documents_per_job, limits.max_documents_per_job)
    max_bytes = int(limits.max_payload_bytes * 0.8)
    up: dict[int, list[IndexDocument]] = defaultdict(list)
    down: dict[int, list[str]] = defaultdict(list)
    for doc in upserts:
        up[keys.partition_of(f"index:{index}:{doc.id}")].append(doc)
    for doc_id in deletes:
        down[keys.partition_of(f"index:{index}:{doc_id}")].append(doc_id)
    out: list[IndexPayload] = []
    for part in sorted(down):
        for chunk in _chunks(dict.fromkeys(down[part]), lambda d: len(d) + 8, max_count, max_bytes):
            out.append(IndexPayload(index=index, deletes=chunk, embedder=embedder, generation=generation))
    for part in sorted(up):
        for chunk in _chunks(up[part], _size, max_count, max_bytes):
            out.append(IndexPayload(index=index, upserts=chunk, embedder=embedder, generation=generation))
    return out

"""Reading every document of one generation, for a migration's backfill (sync; an admin's path).

RediSearch documents are hashes under the generation's prefix: SCAN every primary, then read the
fields in pipelines. Vector Sets documents sit in one hash per shard: HSCAN it, and VEMB the
vectors when they are to be copied. Each document comes back with its stored version, which
the backfill writes with, so a live write of the same document always wins over the copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sluice.keys import Keys
from sluice.transport.runner import Call, Runner
from sluice.transport.translate import translate_errors
from sluice.vectors.backend import check
from sluice.vectors.documents import VERSION_WIDTH, parse_set_document, unpack
from sluice.vectors.meta import IndexMeta

CHUNK = 500


@dataclass(frozen=True, slots=True)
class SourceDoc:
    doc_id: str
    text: str
    metadata: dict[str, Any]
    version: str
    vector: list[float] | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _scan_clients(redis: Any, cluster: bool) -> list[Any]:
    if not cluster:
        return [redis]
    return [redis.get_redis_connection(node) for node in redis.get_primaries()]


def _chunks(redis: Any, cluster: bool, pattern: str, size: int) -> Iterator[list[str]]:
    for client in _scan_clients(redis, cluster):
        chunk: list[str] = []
        with translate_errors("scan the documents of an index"):
            for key in client.scan_iter(match=pattern, count=size):
                chunk.append(_text(key))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def scan_keys(redis: Any, cluster: bool, pattern: str, size: int = CHUNK) -> Iterator[list[str]]:
    """Keys matching `pattern` on every primary, in chunks (keys may repeat: SCAN's guarantee)."""
    return _chunks(redis, cluster, pattern, size)


def read_generation(
    redis: Any, runner: Runner, keys: Keys, meta: IndexMeta, generation: int, *, vectors: bool
) -> Iterator[list[SourceDoc]]:
    """Every document of `generation`, in chunks; with vectors if `vectors`."""
    view = meta.at(generation)
    if view.backend == "search":
        yield from _hash_documents(redis, runner, keys, view, vectors)
    else:
        yield from _set_documents(redis, runner, keys, view, vectors)


def _hash_documents(
    redis: Any, runner: Runner, keys: Keys, view: IndexMeta, vectors: bool
) -> Iterator[list[SourceDoc]]:
    schema = view.index_schema
    fields = ["_id", schema.text_field, "_meta", "_v", *([schema.vector.name] if vectors else [])]
    pattern = keys.vector_doc_prefix(view.index, view.generation) + "*"
    for chunk in scan_keys(redis, runner.cluster, pattern):
        replies = runner.run([Call(("HMGET", k, *fields), route=k) for k in chunk])
        docs = []
        for reply in replies:
            values = check(reply, f"read the documents of index {view.index!r}")
            if values[0] is None or values[3] is None:
                continue  # deleted since the scan
            vector = unpack(values[4], schema.vector.dtype) if vectors and values[4] else None
            metadata = json.loads(_text(values[2])) if values[2] else {}
            docs.append(
                SourceDoc(_text(values[0]), _text(values[1] or ""), metadata, _text(values[3]), vector)
            )
        yield docs


def _set_documents(
    redis: Any, runner: Runner, keys: Keys, view: IndexMeta, vectors: bool
) -> Iterator[list[SourceDoc]]:
    for tag in view.shards:
        docs_key = keys.vector_set_docs(view.index, view.generation, tag)
        set_key = keys.vector_set(view.index, view.generation, tag)
        cursor: Any = 0
        while True:
            with translate_errors("scan the documents of an index"):
                cursor, found = redis.hscan(docs_key, cursor, count=CHUNK)
            items = [(_text(k), _text(v)) for k, v in found.items()]
            embs: list[Any] = [None] * len(items)
            if vectors and items:
                embs = runner.run([Call(("VEMB", set_key, i), route=set_key) for i, _ in items])
            docs = []
            for (doc_id, raw), emb in zip(items, embs, strict=True):
                if vectors and not isinstance(emb, list):
                    continue  # removed from the set since the scan
                doc = parse_set_document(doc_id, raw)
                vector = [float(x) for x in emb] if vectors else None
                docs.append(SourceDoc(doc_id, doc.text, doc.metadata, raw[:VERSION_WIDTH], vector))
            if docs:
                yield docs
            if int(cursor) == 0:
                break


def purge_generation(redis: Any, runner: Runner, keys: Keys, index: str, generation: int) -> int:
    """Delete what is left of a dropped generation: documents and tombstones (FT.DROPINDEX DD
    cannot delete keys of other slots on a Cluster). Returns the number of keys deleted."""
    one = keys.vector_tombstone(index, generation, "x")
    patterns = [keys.vector_doc_prefix(index, generation) + "*", one[: one.rindex("{")] + "*"]
    deleted = 0
    for pattern in patterns:
        for chunk in scan_keys(redis, runner.cluster, pattern):
            deleted += sum(
                int(check(r, "delete documents"))
                for r in runner.run([Call(("DEL", k), route=k) for k in chunk])
            )
    return deleted

"""The Vector Sets backend (Redis 8 `VADD` / `VSIM`): one vector set per shard plus a document hash.

An element is a document id; its attributes hold the filterable metadata (what `FILTER` reads);
text, full metadata and version sit in a hash beside the set, in the same slot, so one Lua call
writes both and one Lua call per shard answers a query. Vector Sets are cosine-only HNSW. On a
Cluster the shard count and tags are fixed when the index is created (stored in its metadata) and
each document belongs to shard ``stable_hash(id) % shards``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sluice.keys import Keys, stable_hash
from sluice.transport.runner import Call, Plan
from sluice.vectors.backend import VectorQuery, check, unsupported
from sluice.vectors.documents import (
    DocWrite,
    Hit,
    merge,
    pack,
    parse_set_document,
    set_attributes,
    set_document,
    vsets_distance,
)
from sluice.vectors.filters import to_vsets
from sluice.vectors.hybrid import Fused, HybridQuery
from sluice.vectors.meta import BackendName, IndexMeta
from sluice.vectors.schema import IndexSchema

QUANT = {"float32": "NOQUANT", "q8": "Q8", "bin": "BIN"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class VectorSetBackend:
    name: BackendName = "vsets"

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def validate(self, schema: IndexSchema) -> None:
        v = schema.vector
        if v.metric != "cosine":
            raise unsupported(
                "Vector Sets",
                f"use the {v.metric} metric (cosine only)",
                "use metric='cosine' or backend='search'",
            )
        if v.algorithm != "hnsw":
            raise unsupported(
                "Vector Sets", "build a FLAT index (HNSW only)", "use algorithm='hnsw' or backend='search'"
            )
        if v.dtype not in QUANT:
            raise unsupported(
                "Vector Sets", f"store {v.dtype} vectors", f"use one of {sorted(QUANT)} or backend='search'"
            )

    def shard_of(self, meta: IndexMeta, doc_id: str) -> str:
        return meta.shards[stable_hash(doc_id) % len(meta.shards)]

    def create(self, meta: IndexMeta, generation: int) -> Plan[None]:
        # a vector set comes into being with its first VADD; nothing to create
        return None
        yield []

    def ensure(self, meta: IndexMeta, generation: int) -> Plan[None]:
        return None
        yield []

    def point_alias(self, meta: IndexMeta, generation: int) -> Plan[None]:
        # readers follow IndexMeta.generation; the metadata write is the switch
        return None
        yield []

    def drop(self, meta: IndexMeta, generation: int) -> Plan[None]:
        calls = []
        for tag in meta.at(generation).shards:
            keys = (
                self.keys.vector_set(meta.index, generation, tag),
                self.keys.vector_set_docs(meta.index, generation, tag),
                self.keys.vector_set_tombstones(meta.index, generation, tag),
            )
            calls.append(Call(("DEL", *keys), route=keys[0]))
        for reply in (yield calls):
            check(reply, f"drop index {meta.index!r}")

    def write_calls(
        self, meta: IndexMeta, generation: int, writes: Sequence[DocWrite], tombstone_ttl_ms: int
    ) -> list[Call]:
        view = meta.at(generation)
        schema = view.index_schema
        v = schema.vector
        calls = []
        for w in writes:
            tag = self.shard_of(view, w.doc_id)
            keys = (
                self.keys.vector_set(meta.index, generation, tag),
                self.keys.vector_set_docs(meta.index, generation, tag),
                self.keys.vector_set_tombstones(meta.index, generation, tag),
            )
            args: list[Any] = [w.version, w.op, w.doc_id, tombstone_ttl_ms]
            if w.op == "upsert":
                assert w.vector is not None
                metadata = w.metadata or {}
                args += [
                    QUANT[v.dtype], v.m, v.ef_construction, pack(w.vector),
                    set_attributes(schema, metadata), set_document(w.text, metadata),
                ]  # fmt: skip
            calls.append(Call(tuple(args), route=keys[0], script="vector_set_write", keys=keys))
        return calls

    def hybrid(self, meta: IndexMeta, query: HybridQuery, native: bool) -> Plan[list[Fused]]:
        raise unsupported(
            "Vector Sets",
            "run a hybrid (BM25 text + vector) search: they have no full-text index",
            f"it needs the search backend: create index {meta.index!r} with backend='search' (RediSearch), "
            "or move it there with `sluice index migrate`",
        )
        yield []

    def search(self, meta: IndexMeta, query: VectorQuery) -> Plan[list[Hit]]:
        schema = meta.index_schema
        expression = to_vsets(query.filter, schema) or ""
        # VSIM's distance is 1 - score = (1 - cos) / 2: half the cosine distance
        epsilon = "" if query.distance_threshold is None else repr(query.distance_threshold / 2)
        ef = query.ef_runtime or schema.vector.ef_runtime
        calls = []
        for tag in meta.shards:
            keys = (
                self.keys.vector_set(meta.index, meta.generation, tag),
                self.keys.vector_set_docs(meta.index, meta.generation, tag),
            )
            args = (
                pack(query.vector),
                query.k,
                max(ef, query.k),
                expression,
                epsilon,
                "1" if query.with_vectors else "0",
            )
            calls.append(Call(args, route=keys[0], script="vector_set_search", keys=keys))
        per_shard = []
        for reply in (yield calls):
            flat = check(reply, f"search index {meta.index!r}")
            hits = []
            for i in range(0, len(flat), 4):
                doc_id, score, raw, vector = _text(flat[i]), float(flat[i + 1]), flat[i + 2], flat[i + 3]
                if not raw:
                    continue  # a document hash entry is missing: the set and hash disagree (never written so)
                doc = parse_set_document(doc_id, raw)
                vec = [float(x) for x in vector] if query.with_vectors else None
                hits.append(Hit(doc_id, doc.text, doc.metadata, vsets_distance(score), vec))
            per_shard.append(hits)
        return merge(per_shard, query.k)

    def get(self, meta: IndexMeta, ids: Sequence[str]) -> Plan[list[Hit | None]]:
        by_shard: dict[str, list[int]] = defaultdict(list)
        for i, doc_id in enumerate(ids):
            by_shard[self.shard_of(meta, doc_id)].append(i)
        tags = list(by_shard)
        calls = []
        for tag in tags:
            key = self.keys.vector_set_docs(meta.index, meta.generation, tag)
            calls.append(Call(("HMGET", key, *(ids[i] for i in by_shard[tag])), route=key))
        out: list[Hit | None] = [None] * len(ids)
        for tag, reply in zip(tags, (yield calls), strict=True):
            for i, raw in zip(
                by_shard[tag], check(reply, f"read documents of index {meta.index!r}"), strict=True
            ):
                out[i] = parse_set_document(ids[i], raw) if raw else None
        return out

    def count(self, meta: IndexMeta) -> Plan[int]:
        keys = [self.keys.vector_set_docs(meta.index, meta.generation, t) for t in meta.shards]
        replies = yield [Call(("HLEN", k), route=k) for k in keys]
        return sum(int(check(r, f"count documents of index {meta.index!r}")) for r in replies)

"""The RediSearch backend: documents in hashes, one FT index per shard behind an alias.

Documents live at ``ns:vec:<ix>:g<n>:{<id>}`` and are indexed by ``FT.CREATE ... PREFIX``. On a
Cluster an FT index sees only its own shard's keys, so there is one index per primary (hash
tags that land on each primary) and queries fan out and merge top-k. Queries name the index of
the generation the metadata says (``ns:vidx:<ix>:g<n>[:{t}]``), so a query always matches the
schema it was built for (a migration may change the dtype); the alias ``ns:vidx:<ix>[:{t}]``
points at the same index for other tools and is switched atomically by `sluice index migrate`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import redis.exceptions as rex

from sluice.errors import SluiceError, StoreCorrupted
from sluice.keys import Keys
from sluice.transport.runner import Call, Plan
from sluice.transport.translate import ServerErrors
from sluice.vectors.backend import VectorQuery, check, unsupported
from sluice.vectors.documents import (
    DocWrite,
    Hit,
    hash_fields,
    merge,
    pack,
    parse_hash_document,
    search_distance,
    unpack,
)
from sluice.vectors.filters import to_search
from sluice.vectors.hybrid import (
    Fused,
    HybridQuery,
    fuse,
    hybrid_args,
    merge_fused,
    parse_hybrid,
    parse_scored,
    text_args,
    text_query,
)
from sluice.vectors.meta import BackendName, IndexMeta
from sluice.vectors.schema import IndexSchema

log = logging.getLogger(__name__)
DIST = "__dist"
_DIST = DIST.encode()
_JSON = json.JSONDecoder()
_EXISTS = ("index already exists", "alias already exists")


def schema_args(schema: IndexSchema) -> list[Any]:
    """The SCHEMA part of FT.CREATE.

    What a search returns is SORTABLE UNF, so FT.SEARCH answers from the index without opening
    keys: faster, and on a Cluster RediSearch cannot open more than one slot's keys per query
    (it returns nil for the others).
    """
    args: list[Any] = [
        *("_id", "TEXT", "NOINDEX", "SORTABLE", "UNF"),
        *("_meta", "TEXT", "NOINDEX", "SORTABLE", "UNF"),
        *(schema.text_field, "TEXT", "SORTABLE", "UNF"),
    ]
    for f in schema.metadata:
        args += [f.name, f.type.upper()]
        if f.type == "tag":  # case-sensitive, as Vector Sets compare strings
            args += ["SEPARATOR", f.separator, "CASESENSITIVE"]
        if f.sortable:
            args.append("SORTABLE")
    v = schema.vector
    attrs: list[Any] = ["TYPE", v.dtype.upper(), "DIM", v.dims, "DISTANCE_METRIC", v.metric.upper()]
    if v.algorithm == "hnsw":
        attrs += ["M", v.m, "EF_CONSTRUCTION", v.ef_construction, "EF_RUNTIME", v.ef_runtime]
    return [*args, v.name, "VECTOR", v.algorithm.upper(), len(attrs), *attrs]


RANGE_EPSILON = 0.3
"""HNSW range-query slack. Measured on 200 paraphrase lookups of a semantic cache: RediSearch's
default 0.01 found 80 of 143 entries within the threshold at 10k entries (36 of 131 at 100k);
0.1 found 135 (96); 0.3 found all, at about twice the latency of 0.01."""


def query_args(index: str, schema: IndexSchema, q: VectorQuery) -> tuple[Any, ...]:
    """FT.SEARCH arguments for a KNN or range query (DIALECT 2)."""
    v = schema.vector
    flt = to_search(q.filter, schema)
    params: list[Any] = ["vec", pack(q.vector, v.dtype)]
    if q.distance_threshold is not None:
        radius = q.distance_threshold**2 if v.metric == "l2" else q.distance_threshold
        slack = ""
        if v.algorithm == "hnsw":  # RediSearch's default EPSILON (0.01) misses entries within range
            slack = f"; $EPSILON: {RANGE_EPSILON if q.epsilon is None else q.epsilon}"
        text = f"@{v.name}:[VECTOR_RANGE $radius $vec]=>{{$YIELD_DISTANCE_AS: {DIST}{slack}}}"
        text = text if flt == "*" else f"{flt} {text}"
        params += ["radius", radius]
    else:
        ef = ""
        if v.algorithm == "hnsw":
            ef = " EF_RUNTIME $ef"
            params += ["ef", q.ef_runtime or v.ef_runtime]
        text = f"({flt})=>[KNN {q.k} @{v.name} $vec{ef} AS {DIST}]"
    fields = ["_id", schema.text_field, "_meta", DIST]
    return (
        "FT.SEARCH", index, text, "PARAMS", len(params), *params, "SORTBY", DIST, "ASC",
        "RETURN", len(fields), *fields, "LIMIT", 0, q.k, "DIALECT", 2,
    )  # fmt: skip


def parse_reply(reply: Sequence[Any], schema: IndexSchema) -> list[Hit]:
    """Hits of a RESP2 FT.SEARCH reply (a query's hot path: one pass, few calls per hit)."""
    text_field, l2 = schema.text_field.encode(), schema.vector.metric == "l2"
    hits: list[Hit] = []
    for i in range(1, len(reply), 2):
        flat = reply[i + 1]
        if len(flat) == 8 and (flat[0], flat[2], flat[4], flat[6]) == (b"_id", text_field, b"_meta", _DIST):
            doc_id, text, meta, dist = flat[1], flat[3], flat[5], flat[7]  # as RETURN asked: no dict
        else:
            fields = {_bytes(k): v for k, v in zip(flat[::2], flat[1::2], strict=True)}
            doc_id, text, meta = fields.get(b"_id"), fields.get(text_field), fields.get(b"_meta")
            dist = fields.get(_DIST, 0.0)
        distance = float(dist)
        ident = _str(doc_id) if doc_id is not None else _str(reply[i])
        hits.append(
            Hit(
                ident,
                _str(text) if text is not None else "",
                _metadata(ident, meta) if meta else {},
                search_distance("l2", distance) if l2 else distance,
            )
        )
    return hits


def _metadata(doc_id: str, meta: Any) -> dict[str, Any]:
    try:
        value = _JSON.decode(_str(meta))
    except (ValueError, RecursionError) as e:  # written by something else than the index worker
        raise StoreCorrupted(
            f"document {doc_id[:60]!r} has metadata that is not JSON ({str(e)[:120]}); delete it or index it again"
        ) from None
    if not isinstance(value, dict):
        raise StoreCorrupted(f"document {doc_id[:60]!r} has metadata that is not an object; index it again")
    return value


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _missing_index(reply: Any) -> bool:
    return isinstance(reply, rex.ResponseError) and (
        ServerErrors.matches(reply, ServerErrors.UNKNOWN_INDEX)
        or ServerErrors.matches(reply, ServerErrors.NO_SUCH_INDEX)
    )


class SearchBackend:
    name: BackendName = "search"

    def __init__(self, keys: Keys, tags: Sequence[str]) -> None:
        self.keys = keys
        self.tags = list(tags) or [""]

    def validate(self, schema: IndexSchema) -> None:
        if schema.vector.dtype not in ("float32", "float16"):
            raise unsupported(
                "RediSearch",
                f"store {schema.vector.dtype} vectors",
                "use float32 or float16 (q8/bin are Vector Sets types)",
            )

    def create(self, meta: IndexMeta, generation: int) -> Plan[None]:
        yield from self._create(meta, generation, self.tags)
        if generation == meta.generation:
            yield from self.point_alias(meta, generation, self.tags)

    def _create(self, meta: IndexMeta, generation: int, tags: Sequence[str]) -> Plan[None]:
        ix = meta.index
        prefix = self.keys.vector_doc_prefix(ix, generation)
        schema = schema_args(meta.at(generation).index_schema)
        calls = []
        for tag in tags:
            name = self.keys.vector_index(ix, generation, tag)
            args = ("FT.CREATE", name, "ON", "HASH", "PREFIX", 1, prefix, "STOPWORDS", 0, "SCHEMA")
            calls.append(Call((*args, *schema), route=name))
        for reply in (yield calls):
            if not (isinstance(reply, rex.ResponseError) and any(w in str(reply).lower() for w in _EXISTS)):
                check(reply, f"create the RediSearch index for {ix!r}")

    def ensure(self, meta: IndexMeta, generation: int) -> Plan[None]:
        names = [self.keys.vector_index(meta.index, generation, t) for t in self.tags]
        aliases = [self.keys.vector_alias(meta.index, t) for t in self.tags]
        current = generation == meta.generation
        probes = [Call(("FT.INFO", n), route=n) for n in names]
        probes += [Call(("FT.INFO", a), route=a) for a in aliases] if current else []
        replies = yield probes
        for reply in replies:
            if not _missing_index(reply):
                check(reply, f"read FT.INFO of index {meta.index!r}")
        missing = [t for t, r in zip(self.tags, replies[: len(names)], strict=True) if _missing_index(r)]
        if missing:
            yield from self._create(meta, generation, missing)
        # only a *missing* alias is repaired: one pointing elsewhere is a migration's switch
        unaliased = [t for t, r in zip(self.tags, replies[len(names) :], strict=True) if _missing_index(r)]
        if unaliased:
            yield from self.point_alias(meta, generation, unaliased)

    def point_alias(self, meta: IndexMeta, generation: int, tags: Sequence[str] = ()) -> Plan[None]:
        calls = [
            Call(
                (
                    "FT.ALIASUPDATE",
                    self.keys.vector_alias(meta.index, tag),
                    self.keys.vector_index(meta.index, generation, tag),
                ),
                route=self.keys.vector_alias(meta.index, tag),
            )
            for tag in (tags or self.tags)
        ]
        for reply in (yield calls):
            check(reply, f"point the alias of index {meta.index!r} at generation {generation}")

    def drop(self, meta: IndexMeta, generation: int) -> Plan[None]:
        calls = []
        if generation == meta.generation:
            calls += [
                Call(
                    ("FT.ALIASDEL", self.keys.vector_alias(meta.index, t)),
                    route=self.keys.vector_alias(meta.index, t),
                )
                for t in self.tags
            ]
        calls += [
            Call(
                ("FT.DROPINDEX", self.keys.vector_index(meta.index, generation, t), "DD"),
                route=self.keys.vector_index(meta.index, generation, t),
            )
            for t in self.tags
        ]
        for reply in (yield calls):
            if not (
                _missing_index(reply)
                or (isinstance(reply, rex.ResponseError) and "alias does not exist" in str(reply).lower())
            ):
                check(reply, f"drop index {meta.index!r}")

    def write_calls(
        self, meta: IndexMeta, generation: int, writes: Sequence[DocWrite], tombstone_ttl_ms: int
    ) -> list[Call]:
        schema = meta.at(generation).index_schema
        calls = []
        for w in writes:
            doc = self.keys.vector_doc(meta.index, generation, w.doc_id)
            tomb = self.keys.vector_tombstone(meta.index, generation, w.doc_id)
            args: list[Any] = [w.version, w.op, tombstone_ttl_ms]
            if w.op == "upsert":
                assert w.vector is not None
                vector = pack(w.vector, schema.vector.dtype)
                args += hash_fields(schema, w.doc_id, w.text, w.metadata or {}, vector)
            calls.append(Call(tuple(args), route=doc, script="vector_hash_write", keys=(doc, tomb)))
        return calls

    def search(self, meta: IndexMeta, query: VectorQuery) -> Plan[list[Hit]]:
        schema = meta.index_schema
        names = [self.keys.vector_index(meta.index, meta.generation, t) for t in self.tags]
        replies = yield [Call(query_args(n, schema, query), route=n) for n in names]
        per_shard = [parse_reply(_answer(meta, n, r), schema) for n, r in zip(names, replies, strict=True)]
        hits = merge(per_shard, query.k)
        if not query.with_vectors or not hits:
            return hits
        # vectors are not SORTABLE: read them from the hashes (one round trip per node)
        keys = [self.keys.vector_doc(meta.index, meta.generation, h.doc_id) for h in hits]
        blobs = yield [Call(("HGET", k, schema.vector.name), route=k) for k in keys]
        return [
            Hit(
                h.doc_id,
                h.text,
                h.metadata,
                h.distance,
                unpack(check(b, "read vectors"), schema.vector.dtype),
            )
            for h, b in zip(hits, blobs, strict=True)
            if b is not None
        ]

    def hybrid(self, meta: IndexMeta, query: HybridQuery, native: bool) -> Plan[list[Fused]]:
        """BM25 over the text field fused with KNN: one ``FT.HYBRID`` where the server has it
        (`native`), else the pair of queries in one round trip, fused here (`sluice.vectors.hybrid`)."""
        schema = meta.index_schema
        names = [self.keys.vector_index(meta.index, meta.generation, t) for t in self.tags]
        knn = VectorQuery(query.vector, query.candidates, query.filter, query.ef_runtime)
        text = text_query(query, schema)
        if text is None:  # no words to match: the vector leg alone
            return fuse([], (yield from self.search(meta, knn)), query, schema.vector.metric)
        if native:
            replies = yield [Call(hybrid_args(n, schema, query, text), route=n) for n in names]
            per_shard = []
            for name, reply in zip(names, replies, strict=True):
                fused, warnings = parse_hybrid(_answer(meta, name, reply), schema)
                if warnings:
                    log.warning("hybrid search of index %r: the server warns %s", meta.index, warnings)
                per_shard.append(fused)
            return merge_fused(per_shard, query.k)
        calls = [Call(text_args(n, schema, query, text), route=n) for n in names]
        replies = yield calls + [Call(query_args(n, schema, knn), route=n) for n in names]
        scored = [
            s
            for n, r in zip(names, replies[: len(names)], strict=True)
            for s in parse_scored(_answer(meta, n, r), schema)
        ]
        scored.sort(key=lambda s: (-s[1], s[0].doc_id))
        near = [
            parse_reply(_answer(meta, n, r), schema)
            for n, r in zip(names, replies[len(names) :], strict=True)
        ]
        return fuse(scored[: query.candidates], merge(near, query.candidates), query, schema.vector.metric)

    def get(self, meta: IndexMeta, ids: Sequence[str]) -> Plan[list[Hit | None]]:
        text_field = meta.index_schema.text_field
        keys = [self.keys.vector_doc(meta.index, meta.generation, i) for i in ids]
        replies = yield [Call(("HMGET", k, "_id", text_field, "_meta"), route=k) for k in keys]
        out: list[Hit | None] = []
        for reply in replies:
            values = check(reply, f"read documents of index {meta.index!r}")
            if values[0] is None:
                out.append(None)
            else:
                out.append(
                    parse_hash_document(
                        dict(zip(("_id", text_field, "_meta"), values, strict=True)), text_field
                    )
                )
        return out

    def count(self, meta: IndexMeta) -> Plan[int]:
        names = [self.keys.vector_index(meta.index, meta.generation, t) for t in self.tags]
        total = 0
        for reply in (yield [Call(("FT.INFO", n), route=n) for n in names]):
            total += num_docs(check(reply, f"read FT.INFO of index {meta.index!r}"))
        return total


def _answer(meta: IndexMeta, name: str, reply: Any) -> Any:
    """A query's reply, or the error saying what is wrong with the index."""
    if _missing_index(reply):
        raise SluiceError(
            f"index {meta.index!r} has no RediSearch index {name}; it was dropped or a "
            "Cluster primary was added: open the vector store again to create it"
        )
    return check(reply, f"search index {meta.index!r}")


def num_docs(info: Sequence[Any]) -> int:
    """`num_docs` of an FT.INFO reply (RESP2: a flat list of names and values)."""
    fields = {
        (k.decode() if isinstance(k, bytes) else str(k)): v
        for k, v in zip(info[::2], info[1::2], strict=False)
    }
    return int(fields.get("num_docs", 0))

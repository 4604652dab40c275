"""The LangGraph store's items: one hash, one tombstone hash and one vector set per namespace.

Workers write with store_write.lua (versioned; a put carries the item's vectors) and keep the
namespace index (store_index.lua); readers use store_read.lua, which gets items, lists a
namespace's items through a value filter, or runs a vector query with the filter inside it
(VSIM ... FILTER), all in one call per namespace. Namespaces are encoded as their labels, each
followed by ``\\x1f``, so that a prefix of labels is a lexical range of the index. Nothing here
imports LangGraph: workers run without it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from sluice.keys import Keys
from sluice.stores.versions import padded
from sluice.transport.runner import Call
from sluice.types import parse_entry_id
from sluice.vectors.backend import check
from sluice.vectors.filters import _vsets_num, _vsets_string

SEP: Final = "\x1f"
TOMBSTONE_TTL: Final = 24 * 3600.0
VERSION_WIDTH: Final = 29
FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OPERATORS: Final = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def encode_namespace(labels: Sequence[str]) -> str:
    for label in labels:
        if not label or SEP in label:
            raise ValueError(f"namespace label {label!r} is empty or holds \\x1f, which sluice cannot store")
    return "".join(f"{label}{SEP}" for label in labels)


def decode_namespace(encoded: str) -> tuple[str, ...]:
    return tuple(encoded.split(SEP)[:-1])


def attributes(value: dict[str, Any]) -> str:
    """What a vector filter can read: the value's top-level scalar fields (JSON)."""
    scalars = {
        k: v
        for k, v in value.items()
        if FIELD.match(k)
        and (v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v)))
    }
    return json.dumps(scalars, ensure_ascii=False, separators=(",", ":"))


def _literal(value: Any, field: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return _vsets_num(float(value))
    if isinstance(value, str):
        return _vsets_string(value)
    raise ValueError(
        f"a semantic search filter compares top-level fields with strings, numbers, booleans or None; "
        f"{field!r} is compared with a {type(value).__name__} (search without query= to filter on it)"
    )


def vector_filter(filter: dict[str, Any] | None) -> str:
    """A LangGraph store filter as a VSIM FILTER expression (on the item's top-level fields)."""
    parts = []
    for field, condition in (filter or {}).items():
        if not FIELD.match(field):
            raise ValueError(
                f"a semantic search filters on fields named like identifiers; {field!r} is not one "
                "(search without query= to filter on it)"
            )
        if isinstance(condition, dict) and condition and all(str(k).startswith("$") for k in condition):
            for op, arg in condition.items():
                if op not in OPERATORS:
                    raise ValueError(f"unknown filter operator {op!r}; use one of {sorted(OPERATORS)}")
                parts.append(f"(.{field} {OPERATORS[op]} {_literal(arg, field)})")
        else:
            parts.append(f"(.{field} == {_literal(condition, field)})")
    return " and ".join(parts)


def write_call(
    keys: Keys,
    namespace: Sequence[str],
    key: str,
    version: str,
    value: dict[str, Any] | None,
    ttl: float | None,
    vectors: Sequence[tuple[str, np.ndarray]] = (),
) -> Call:
    """The store_write.lua call of one put (`value`) or delete (`value=None`) at `version`."""
    if SEP in key:
        raise ValueError(f"item key {key!r} holds \\x1f, which sluice cannot store")
    item_keys = keys.store_item_keys(encode_namespace(namespace))
    ms = parse_entry_id(version)[0]
    ttl_ms = int(ttl * 1000) if ttl else 0
    args: list[Any] = [padded(version), "delete" if value is None else "put", key, ttl_ms]
    args += [int(TOMBSTONE_TTL * 1000), ms]
    if value is not None:
        body = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        args += [body, attributes(value), "NOQUANT"]
        for path, vector in vectors:
            if SEP in path:
                raise ValueError(f"field path {path!r} holds \\x1f")
            args += [path, np.asarray(vector, dtype=np.float32).tobytes()]
    return Call(tuple(args), route=item_keys[0], script="store_write", keys=item_keys)


def index_call(keys: Keys, op: str, entries: Sequence[tuple[str, str]]) -> Call | None:
    """The store_index.lua call adding (op="add") or dropping namespaces: (encoded, entry id)."""
    if not entries:
        return None
    names, versions = keys.store_namespaces()
    args: list[Any] = [op]
    for encoded, version in entries:
        args += [encoded, padded(version)]
    return Call(tuple(args), route=names, script="store_index", keys=(names, versions))


# --- reads -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredItem:
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_ms: int
    updated_ms: int
    version: str  # of the write that stored it (padded entry id: newer sorts higher)
    score: float | None = None  # cosine similarity, for a vector query


def _read(keys: Keys, namespace: Sequence[str], args: tuple[Any, ...]) -> Call:
    items, _, vec = keys.store_item_keys(encode_namespace(namespace))
    return Call(args, route=items, script="store_read", keys=(items, vec))


def get_call(keys: Keys, namespace: Sequence[str], item_keys: Sequence[str], refresh: bool) -> Call:
    return _read(keys, namespace, ("get", int(refresh), *item_keys))


def list_call(
    keys: Keys, namespace: Sequence[str], filter: dict[str, Any] | None, count: int, refresh: bool
) -> Call:
    flt = json.dumps(filter, ensure_ascii=False, allow_nan=False) if filter else ""
    return _read(keys, namespace, ("list", int(refresh), flt, count))


def knn_call(
    keys: Keys,
    namespace: Sequence[str],
    vector: Sequence[float],
    count: int,
    expression: str,
    ef: int,
    refresh: bool,
) -> Call:
    blob = np.asarray(vector, dtype=np.float32).tobytes()
    return _read(keys, namespace, ("knn", int(refresh), blob, count, expression, ef))


def parse_items(reply: Any, namespace: Sequence[str]) -> list[StoredItem | None]:
    """Items of a store_read.lua reply, in its order (None: a `get` of a missing item)."""
    flat = check(reply, "read store items")
    out: list[StoredItem | None] = []
    for i in range(0, len(flat), 3):
        key, score, stored = bytes(flat[i]).decode(), bytes(flat[i + 1]), bytes(flat[i + 2])
        if not stored:
            out.append(None)
            continue
        record = json.loads(stored[VERSION_WIDTH:])
        out.append(
            StoredItem(
                namespace=tuple(namespace),
                key=key,
                value=record["v"],
                created_ms=int(record["c"]),
                updated_ms=int(record["u"]),
                version=stored[:VERSION_WIDTH].decode(),
                # VSIM's score is (1 + cosine similarity) / 2
                score=2 * float(score) - 1 if score else None,
            )
        )
    return out


def namespaces_call(keys: Keys, prefix: Sequence[str], after: str, count: int) -> Call:
    """A page of namespace members in lexical order, starting with `prefix`, after `after`."""
    names, _ = keys.store_namespaces()
    start = encode_namespace(prefix) if prefix else ""
    low = f"({after}" if after else (f"[{start}" if start else "-")
    high = f"({start[:-1]}\x20" if start else "+"  # every member that begins with the prefix
    return Call(("ZRANGE", names, low, high, "BYLEX", "LIMIT", 0, count), route=names)


def exists_calls(keys: Keys, encoded: Sequence[str]) -> list[Call]:
    return [Call(("EXISTS", keys.store_item_keys(e)[0]), route=keys.store_item_keys(e)[0]) for e in encoded]

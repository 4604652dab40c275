"""Documents as the backends store them, and search hits as they come back (no I/O).

One module owns the stored forms: vector bytes per dtype, metadata JSON (``_meta``, which keeps
value types exactly), the per-field values filters use, and the distance each backend reports
converted to one scale per metric (cosine distance ``1 - cos``, euclidean distance, ``1 - ip``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sluice.errors import InvalidArgument, StoreCorrupted
from sluice.vectors.schema import DType, IndexSchema, Metric

VERSION_WIDTH = 29  # len(sluice.stores.versions.padded(...))


class DocumentError(InvalidArgument):
    """A document that cannot be stored under the index schema (wrong metadata type, bad vector)."""


@dataclass(frozen=True, slots=True)
class DocWrite:
    """One versioned change to one document."""

    doc_id: str
    version: str  # padded entry id
    op: Literal["upsert", "delete"]
    text: str = ""
    metadata: Mapping[str, Any] | None = None
    vector: Sequence[float] | np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One stored document: from a search (with `distance`) or a lookup by id."""

    doc_id: str
    text: str
    metadata: dict[str, Any]
    distance: float = 0.0
    vector: list[float] | None = None


def numpy_dtype(dtype: DType) -> type[np.floating[Any]]:
    return np.float16 if dtype == "float16" else np.float32


def pack(vector: Sequence[float] | np.ndarray, dtype: DType = "float32") -> bytes:
    return np.asarray(vector, dtype=numpy_dtype(dtype)).tobytes()


def unpack(blob: bytes, dtype: DType = "float32") -> list[float]:
    return np.frombuffer(blob, dtype=numpy_dtype(dtype)).astype(float).tolist()  # type: ignore[no-any-return]


def check_vector(vector: Sequence[float] | np.ndarray, schema: IndexSchema) -> None:
    if len(vector) != schema.vector.dims:
        raise DocumentError(
            f"vector has {len(vector)} dimensions but the index expects {schema.vector.dims}; "
            "the embedder does not match the index schema"
        )
    try:
        finite = bool(np.isfinite(np.asarray(vector, dtype=np.float64)).all())
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise DocumentError("vector holds NaN, infinite or non-numeric values")


def metadata_json(metadata: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(metadata), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise DocumentError(f"metadata must be JSON-serialisable (str, numbers, lists, dicts): {e}") from None


def _tag_values(name: str, value: Any) -> list[str]:
    values = value if isinstance(value, list | tuple | set | frozenset) else [value]
    out = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    if not all(isinstance(v, str | int | float | bool) for v in values):
        raise DocumentError(f"metadata {name!r} is a tag field: give a string or a list of strings")
    return out


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DocumentError(f"metadata {name!r} is a numeric field but holds {value!r}") from None
    if not math.isfinite(number):
        raise DocumentError(f"metadata {name!r} must be a finite number, not {value!r}")
    return number


def indexed_fields(schema: IndexSchema, metadata: Mapping[str, Any]) -> dict[str, str | float | list[str]]:
    """The schema's metadata fields present in `metadata`: tag -> list of str, numeric -> float, text -> str."""
    out: dict[str, str | float | list[str]] = {}
    for field in schema.metadata:
        value = metadata.get(field.name)
        if value is None:
            continue
        if field.type == "tag":
            out[field.name] = _tag_values(field.name, value)
        elif field.type == "numeric":
            out[field.name] = _number(field.name, value)
        else:
            out[field.name] = str(value)
    return out


def hash_fields(
    schema: IndexSchema, doc_id: str, text: str, metadata: Mapping[str, Any], vector: bytes
) -> list[Any]:
    """Flat field/value list for a RediSearch hash document."""
    out: list[Any] = [
        "_id",
        doc_id,
        schema.text_field,
        text,
        "_meta",
        metadata_json(metadata),
        schema.vector.name,
        vector,
    ]
    for name, value in indexed_fields(schema, metadata).items():
        field = schema.field(name)
        if isinstance(value, list):
            out += [name, (field.separator if field else ",").join(value)]
        else:
            out += [name, repr(value) if isinstance(value, float) else value]
    return out


def set_attributes(schema: IndexSchema, metadata: Mapping[str, Any]) -> str:
    """Vector Sets element attributes: the filterable fields only (FILTER reads them per candidate)."""
    return json.dumps(indexed_fields(schema, metadata), separators=(",", ":"), ensure_ascii=False)


def set_document(text: str, metadata: Mapping[str, Any]) -> str:
    return json.dumps(
        {"t": text, "m": json.loads(metadata_json(metadata))}, separators=(",", ":"), ensure_ascii=False
    )


def _corrupted(doc_id: str, error: BaseException) -> StoreCorrupted:
    return StoreCorrupted(
        f"document {doc_id[:60]!r} is not stored in sluice's format ({str(error)[:120]}); "
        "delete it or index it again"
    )


def parse_set_document(doc_id: str, raw: bytes | str) -> Hit:
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        body = json.loads(text[VERSION_WIDTH:])
        hit = Hit(doc_id, body.get("t", ""), body.get("m", {}))
        if not isinstance(hit.text, str) or not isinstance(hit.metadata, dict):
            raise TypeError("text or metadata of the wrong type")
    except (ValueError, TypeError, AttributeError, RecursionError) as e:
        raise _corrupted(doc_id, e) from None
    return hit


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_hash_document(fields: Mapping[str, Any], text_field: str, fallback_id: str = "") -> Hit:
    meta = fields.get("_meta")
    doc_id = _str(fields.get("_id", fallback_id))
    try:
        metadata = json.loads(_str(meta)) if meta else {}
        if not isinstance(metadata, dict):
            raise TypeError("metadata is not an object")
        return Hit(doc_id, _str(fields.get(text_field, "")), metadata)
    except (ValueError, TypeError, RecursionError) as e:
        raise _corrupted(doc_id, e) from None


def search_distance(metric: Metric, raw: float) -> float:
    """RediSearch reports squared L2; everything else as is."""
    return math.sqrt(max(raw, 0.0)) if metric == "l2" else raw


def vsets_distance(score: float) -> float:
    """VSIM score is (1 + cos) / 2: cosine distance 1 - cos = 2 - 2 * score."""
    return max(0.0, 2.0 - 2.0 * score)


def merge(per_shard: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """Top-k over shards by distance, ties by id (the same answer whatever the shard count)."""
    hits = [h for shard in per_shard for h in shard]
    hits.sort(key=lambda h: (h.distance, h.doc_id))
    return hits[:k]

"""Source RediSearch indexes as FT.INFO describes them: key type, prefixes, fields.

Every peer's vector store, semantic cache and langchain-redis's history are RediSearch indexes;
their documents are the keys under the index's prefixes, read with `sluice.migrate.keyspace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.exceptions as rex

from sluice.migrate.keyspace import text
from sluice.migrate.records import SourceError, VectorSpec
from sluice.transport.translate import translate_errors

_FIELD_TYPES = {"TAG": "tag", "NUMERIC": "numeric", "TEXT": "text"}


@dataclass(frozen=True, slots=True)
class SourceField:
    name: str  # the attribute name queries use
    path: str  # the hash field or JSON path
    type: str  # TEXT, TAG, NUMERIC, VECTOR, GEO...
    options: dict[str, str]


@dataclass(frozen=True, slots=True)
class SourceIndex:
    name: str
    key_type: str  # HASH or JSON
    prefixes: tuple[str, ...]
    fields: tuple[SourceField, ...]

    def field(self, name: str) -> SourceField | None:
        return next((f for f in self.fields if f.name == name), None)

    def vector_fields(self) -> list[SourceField]:
        return [f for f in self.fields if f.type == "VECTOR"]

    def doc_id(self, key: str) -> str:
        """The key without the index prefix (and the separator after it): the document's id."""
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if prefix and key.startswith(prefix):
                rest = key[len(prefix) :]
                return rest[1:] if rest.startswith(":") and not prefix.endswith(":") else rest
        return key

    def vector_spec(self, vector: SourceField, text_field: str) -> VectorSpec:
        o = vector.options
        skip = {vector.name, text_field}
        fields = tuple(
            (f.name, _FIELD_TYPES[f.type], f.options.get("SEPARATOR", ","))
            for f in self.fields
            if f.type in _FIELD_TYPES and f.name not in skip and not f.name.startswith("_")
        )
        return VectorSpec(
            dims=int(o.get("dim", o.get("DIM", "0"))),
            metric=o.get("distance_metric", o.get("DISTANCE_METRIC", "COSINE")).upper(),
            algorithm=o.get("algorithm", o.get("ALGORITHM", "FLAT")).upper(),
            dtype=o.get("data_type", o.get("TYPE", "FLOAT32")).upper(),
            text_field=text_field,
            fields=fields,
        )


def _pairs(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {text(k): v for k, v in reply.items()}
    return {text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


def _field(raw: Any) -> SourceField:
    items = _pairs(raw)
    known = {"identifier", "attribute", "type"}
    options = {k: text(v) for k, v in items.items() if k not in known and not isinstance(v, list)}
    return SourceField(
        name=text(items.get("attribute", items.get("identifier", ""))),
        path=text(items.get("identifier", "")),
        type=text(items.get("type", "")).upper(),
        options=options,
    )


def list_indexes(redis: Any) -> list[str]:
    with translate_errors("list the RediSearch indexes"):
        try:
            return sorted(text(n) for n in redis.execute_command("FT._LIST"))
        except rex.ResponseError as e:
            raise SourceError(f"the source Redis has no RediSearch ({e}); nothing to read here") from None


def read_index(redis: Any, name: str) -> SourceIndex:
    """FT.INFO of `name`; a SourceError naming the indexes that exist if there is none."""
    with translate_errors(f"read FT.INFO of index {name!r}"):
        try:
            info = _pairs(redis.execute_command("FT.INFO", name))
        except rex.ResponseError as e:
            known = ", ".join(list_indexes(redis)) or "none"
            raise SourceError(f"no RediSearch index {name!r} in the source ({e}); indexes: {known}") from None
    definition = _pairs(info.get("index_definition", []))
    prefixes = tuple(text(p) for p in definition.get("prefixes", []))
    return SourceIndex(
        name=name,
        key_type=text(definition.get("key_type", "HASH")).upper(),
        prefixes=prefixes or ("",),
        fields=tuple(_field(a) for a in info.get("attributes", [])),
    )

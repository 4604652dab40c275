"""Vector indexes of the three peers: one reader for every RediSearch index (hash or JSON).

What differs is only where the text and the metadata are:

- langchain-community `Redis`: keys ``doc:<index>:<id>``, text in ``content``, vector in
  ``content_vector``, each metadata key a hash field (lists joined with ``,``).
- langchain-redis `RedisVectorStore`: keys ``<prefix>:<id>``, text in ``text``, vector in
  ``embedding``, metadata exactly in ``_metadata_json`` (plus its indexed fields).
- redisvl `SearchIndex`: any schema; the text field is ``--text-field`` (or the one TEXT field).

A document's id is its key without the index prefix. Indexed numeric fields come back as
numbers and tag fields as lists; other hash fields as strings (a hash keeps no types).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sluice.migrate import keyspace
from sluice.migrate.indexes import SourceField, SourceIndex, read_index
from sluice.migrate.legacy import safe_name
from sluice.migrate.records import Options, Skipped, SourceError, VectorRecord, VectorSpec

_ABSENT: Any = object()


def _pick_text(index: SourceIndex, given: str | None, default: str) -> SourceField:
    if given:
        found = index.field(given)
        if found is None:
            raise SourceError(f"index {index.name!r} has no field {given!r}; fields: {_names(index)}")
        return found
    texts = [f for f in index.fields if f.type == "TEXT" and not f.name.startswith("_")]
    found = index.field(default) or (texts[0] if len(texts) == 1 else None)
    if found is None:
        raise SourceError(
            f"which field of index {index.name!r} holds the document text? pass --text-field "
            f"(fields: {_names(index)})"
        )
    return found


def _pick_vector(index: SourceIndex, default: str) -> SourceField:
    vectors = index.vector_fields()
    found = index.field(default) if index.field(default) in vectors else None
    if found is None and len(vectors) == 1:
        found = vectors[0]
    if found is None:
        raise SourceError(f"index {index.name!r} has no single vector field; fields: {_names(index)}")
    return found


def _names(index: SourceIndex) -> str:
    return ", ".join(f"{f.name} ({f.type})" for f in index.fields) or "none"


def _number(value: str) -> int | float | str:
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def _json_path(doc: Any, path: str) -> Any:
    node = doc
    for part in path.removeprefix("$").strip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


class IndexVectors:
    """Every document under a RediSearch index's prefixes, with its vector."""

    what = "vectors"

    def __init__(
        self,
        redis: Any,
        options: Options,
        *,
        layout: str,
        text_field: str,
        vector_field: str,
        metadata_json: str | None = None,
    ) -> None:
        if not options.index:
            raise SourceError("name the source vector index: --index NAME")
        self.redis = redis
        self.index = read_index(redis, options.index)
        self.text = _pick_text(self.index, options.text_field, text_field)
        self.vector = _pick_vector(self.index, vector_field)
        self.metadata_json = metadata_json
        self.vectors: VectorSpec | None = self.index.vector_spec(self.vector, self.text.name)
        self.default_target: str | None = safe_name(self.index.name)
        where = ", ".join(f"'{p}*'" for p in self.index.prefixes)
        self.described = f"{layout} index {self.index.name!r} ({self.index.key_type.lower()} keys {where})"

    def records(self) -> Iterator[VectorRecord | Skipped]:
        is_json = self.index.key_type == "JSON"
        for prefix in self.index.prefixes:
            match = keyspace.glob_escape(prefix) + "*"
            keys = keyspace.scan(self.redis, match, "ReJSON-RL" if is_json else "hash")
            for chunk in keyspace.chunked(keys):
                if is_json:
                    yield from (self._from_json(r) for r in keyspace.documents(self.redis, chunk))
                else:
                    yield from (self._from_hash(r) for r in keyspace.hashes(self.redis, chunk))

    def _from_hash(self, read: keyspace.Read) -> VectorRecord | Skipped:
        fields: dict[str, Any] = read.value
        if self.text.path not in fields:
            return Skipped(read.key, f"no text field {self.text.path!r}")
        vector = keyspace.vector_of(fields.get(self.vector.path), self.vectors.dtype if self.vectors else "")
        metadata = self._json_metadata(fields)
        if metadata is None:
            skip = {self.text.path, self.vector.path}
            typed = {
                name: self._typed(name, keyspace.text(value))
                for name, value in fields.items()
                if name not in skip and not name.startswith("_")
            }
            metadata = {k: v for k, v in typed.items() if v is not _ABSENT}
        text = keyspace.text(fields[self.text.path])
        return VectorRecord(read.key, self.index.doc_id(read.key), text, metadata, vector)

    def _from_json(self, read: keyspace.Read) -> VectorRecord | Skipped:
        doc = read.value
        text = _json_path(doc, self.text.path)
        if not isinstance(doc, dict) or not isinstance(text, str):
            return Skipped(read.key, f"no text at {self.text.path!r}")
        raw = _json_path(doc, self.vector.path)
        vector = keyspace.vector_of(raw, "FLOAT32") if isinstance(raw, list) else None
        metadata = self._json_metadata(doc)
        if metadata is None:
            top = {self.text.path.removeprefix("$."), self.vector.path.removeprefix("$.")}
            metadata = {k: v for k, v in doc.items() if k not in top and not k.startswith("_")}
        return VectorRecord(read.key, self.index.doc_id(read.key), text, metadata, vector)

    def _json_metadata(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        raw = fields.get(self.metadata_json) if self.metadata_json else None
        if raw is None:
            return None
        try:
            parsed = json.loads(keyspace.text(raw))
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def _typed(self, name: str, value: str) -> Any:
        """An indexed field's value with its type back; _ABSENT for an empty one (the peers store
        a missing value as "", which no numeric or tag field holds)."""
        field = self.index.field(name)
        if field is None:
            return value
        if field.type == "NUMERIC":
            number = _number(value)
            return _ABSENT if isinstance(number, str) else number
        if field.type == "TAG":
            separator = field.options.get("SEPARATOR", ",")
            tags = [v for v in value.split(separator) if v]
            return tags or _ABSENT
        return value


def open_vectors(redis: Any, source: str, options: Options) -> IndexVectors:
    if source == "langchain-community":
        return IndexVectors(
            redis, options, layout="langchain-community Redis", text_field="content",
            vector_field="content_vector",
        )  # fmt: skip
    if source == "langchain-redis":
        return IndexVectors(
            redis, options, layout="langchain-redis RedisVectorStore", text_field="text",
            vector_field="embedding", metadata_json="_metadata_json",
        )  # fmt: skip
    return IndexVectors(redis, options, layout="redisvl", text_field="text", vector_field="embedding")

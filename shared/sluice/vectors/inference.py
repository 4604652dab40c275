"""Metadata fields inferred from a first write, for a new index opened without a schema (no I/O).

`client.vectorstore(index, embeddings)` with no `schema=` and a first `add_texts(texts, metadatas)`
creates the index with one field per metadata key of that write, so `Tag("lang") == "fr"` works
at once, as langchain-community's `Redis.from_texts` does: numbers become numeric fields;
strings, booleans and lists of strings become tag fields (exact values; langchain-community makes
strings full-text, which a `Text` filter needs: declare those in a schema). A key is left out, and
kept only in each document's stored metadata, when its name cannot be a field or its values are of
no one kind (a dict, a list of numbers). The fields are fixed at creation: a key first seen later is
not filterable until the schema is migrated (`sluice index migrate`), and the filter says so.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from sluice.vectors.schema import RESERVED, FieldType, MetadataField

MAX_FIELDS = 64
"""At most this many inferred fields (each costs memory per document); keys beyond are skipped."""
SEPARATORS = ",|;"
"""Tag separators, first one no sample value holds (a value holding it would be split in two)."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class Inferred(NamedTuple):
    fields: tuple[MetadataField, ...]
    skipped: dict[str, str]  # key -> why it is not a field

    def describe(self) -> str:
        """For the log line: ``lang (tag), year (numeric); not filterable: meta (a dict)``."""
        made = ", ".join(f"{f.name} ({f.type})" for f in self.fields) or "none"
        left = "; ".join(f"{k[:40]!r} ({why})" for k, why in self.skipped.items())
        return made + (f"; not filterable: {left}" if left else "")


def _kind(value: Any) -> FieldType | None:
    if isinstance(value, bool | str):
        return "tag"
    if isinstance(value, int | float):
        return "numeric"
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return "tag"
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def infer_fields(metadatas: Sequence[Mapping[str, Any] | None], taken: Collection[str]) -> Inferred:
    """Fields for the keys of `metadatas` (every document of the first write), in first-seen order;
    `taken`: names the index already uses (text and vector fields)."""
    kinds: dict[str, set[FieldType | None]] = {}
    texts: dict[str, list[str]] = {}
    for metadata in metadatas:
        for key, value in (metadata or {}).items():
            if value is None:
                continue
            kinds.setdefault(key, set()).add(_kind(value))
            texts.setdefault(key, []).extend(_strings(value))
    fields: list[MetadataField] = []
    skipped: dict[str, str] = {}
    for key, seen in kinds.items():
        if not isinstance(key, str) or not _NAME.match(key) or key in RESERVED or key in taken:
            skipped[str(key)] = "not usable as a field name"
        elif None in seen:
            skipped[key] = "not a string, number or list of strings"
        elif len(fields) >= MAX_FIELDS:
            skipped[key] = f"more than {MAX_FIELDS} fields"
        else:
            kind: FieldType = "numeric" if seen == {"numeric"} else "tag"  # numbers mixed with strings: tags
            unused = (s for s in SEPARATORS if not any(s in t for t in texts[key]))
            separator = next(unused, ",") if kind == "tag" else ","
            fields.append(MetadataField(name=key, type=kind, separator=separator))
    return Inferred(tuple(fields), skipped)

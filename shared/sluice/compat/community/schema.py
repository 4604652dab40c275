"""langchain-community's index schema dicts (or YAML files) -> sluice `IndexSchema` parts.

The dict has lists of ``{"name": ...}`` fields under ``text``, ``tag``, ``numeric`` (and
``vector``, overriding the vector settings), plus ``content_key``/``content_vector_key``;
``vector_schema`` holds ``algorithm``, ``distance_metric``, ``datatype``, ``dims``, HNSW ``m``,
``ef_construction``, ``ef_runtime``. Fields sluice cannot index (other names, ``extra``) are
simply kept in each document's metadata.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluice.errors import ConfigError
from sluice.vectors.schema import RESERVED, IndexSchema, MetadataField, VectorField

ListOfDict = list[dict[str, Any]]
DEFAULT_VECTOR_SCHEMA: dict[str, Any] = {
    "name": "content_vector", "algorithm": "FLAT", "dims": 1536, "distance_metric": "COSINE", "datatype": "FLOAT32",
}  # fmt: skip
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DTYPES = {"FLOAT32": "float32", "FLOAT64": "float32", "FLOAT16": "float16"}


def read_schema(schema: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
    if schema is None:
        return {}
    if isinstance(schema, Mapping):
        return dict(schema)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            "index_schema is a YAML file: install pyyaml, or pass the schema as a dict"
        ) from None
    loaded = yaml.safe_load(Path(schema).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ConfigError(f"index_schema file {schema} does not hold a mapping")
    return loaded


def generate_field_schema(metadata: Mapping[str, Any]) -> dict[str, ListOfDict]:
    """A schema from one document's metadata: numbers numeric, lists of strings tags, strings text."""
    out: dict[str, ListOfDict] = {"text": [], "numeric": [], "tag": []}
    for key, value in metadata.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            out["numeric"].append({"name": key})
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out["tag"].append({"name": key})
        elif isinstance(value, str):
            out["text"].append({"name": key})
    return out


def metadata_names(schema: Mapping[str, Any]) -> list[str]:
    """The metadata fields of a langchain-community schema dict (all but content and vectors)."""
    content = schema.get("content_key", "content")
    names = [f.get("name", "") for kind in ("tag", "numeric", "text") for f in schema.get(kind) or []]
    return [n for n in names if n and n != content]


def to_sluice(schema: Mapping[str, Any], vector_schema: Mapping[str, Any] | None, dims: int) -> IndexSchema:
    """A new index: the text in ``content`` as langchain-community keeps it, so that a metadata
    field may be called ``text``."""
    content = schema.get("content_key", "content")
    fields = []
    for kind in ("tag", "numeric", "text"):
        for f in schema.get(kind) or []:
            name = f.get("name", "")
            if _FIELD.match(name) and name not in RESERVED and name not in (content, "embedding"):
                fields.append(MetadataField(name=name, type=kind, separator=f.get("separator", ",")))
    spec = {**DEFAULT_VECTOR_SCHEMA, **(vector_schema or {}), **((schema.get("vector") or [{}])[0])}
    vector = VectorField(
        dims=dims,  # as langchain-community: the embeddings' size, whatever the schema says
        algorithm=str(spec["algorithm"]).lower(),
        metric=str(spec["distance_metric"]).lower(),
        dtype=_DTYPES.get(str(spec["datatype"]).upper(), "float32"),
        **{k: int(spec[k]) for k in ("m", "ef_construction", "ef_runtime") if k in spec},
    )
    text_field = content if _FIELD.match(content) and content not in RESERVED | {"embedding"} else "text"
    return IndexSchema(
        text_field=text_field, vector=vector, metadata=tuple(f for f in fields if f.name != text_field)
    )


def to_community(schema: IndexSchema) -> dict[str, Any]:
    """The schema as langchain-community shows it (``Redis.schema``), for `from_existing_index`."""
    out: dict[str, Any] = {"text": [{"name": "content"}], "tag": [], "numeric": []}
    for f in schema.metadata:
        entry: dict[str, Any] = {"name": f.name}
        if f.type == "tag":
            entry["separator"] = f.separator
        out[f.type].append(entry)
    v = schema.vector
    out["vector"] = [{
        "name": "content_vector", "algorithm": v.algorithm.upper(), "dims": v.dims,
        "distance_metric": v.metric.upper(), "datatype": v.dtype.upper(),
    }]  # fmt: skip
    return out

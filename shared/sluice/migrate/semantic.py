"""Semantic LLM caches: langchain-community's index per model, and redisvl's `SemanticCache`.

- langchain-community `RedisSemanticCache`: one index ``cache:<md5(llm_string)>`` per model over
  hashes ``doc:cache:<md5>:<id>`` holding ``prompt``, ``llm_string``, ``return_val``
  (``dumps`` of the generation list) and ``content_vector``.
- redisvl `SemanticCache` (langchain-redis's `RedisSemanticCache` wraps it): index ``llmcache``
  over hashes ``<prefix>:<entry id>`` holding ``prompt``, ``response``, ``prompt_vector`` and
  ``metadata`` (JSON). langchain-redis puts the model in ``metadata.llm_string`` and a JSON list
  of ``dumps(generation)`` in ``response``; plain redisvl stores text, migrated as one
  generation under ``--llm-string`` (default: empty).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from langchain_core.outputs import Generation

from sluice.migrate import keyspace, lc
from sluice.migrate.indexes import SourceIndex, list_indexes, read_index
from sluice.migrate.legacy import redisvl_semantic_cache
from sluice.migrate.records import Options, SemanticRecord, Skipped, SourceError, VectorSpec

_COMMUNITY_INDEX = re.compile(r"^cache:[0-9a-f]{32}$")


def _spec(index: SourceIndex, vector_field: str, text_field: str) -> VectorSpec:
    field = index.field(vector_field)
    if field is None or field.type != "VECTOR":
        raise SourceError(f"index {index.name!r} has no vector field {vector_field!r}: not a semantic cache")
    return index.vector_spec(field, text_field)


def _hash_records(redis: Any, index: SourceIndex) -> Iterator[keyspace.Read]:
    for prefix in index.prefixes:
        for chunk in keyspace.chunked(keyspace.scan(redis, keyspace.glob_escape(prefix) + "*", "hash")):
            yield from keyspace.hashes(redis, chunk)


def _community_generations(raw: str) -> list[Generation]:
    items = json.loads(raw)
    if not isinstance(items, list):
        raise TypeError("return_val is not a list")
    # dumps() form first; the older plain-JSON form as langchain-community reads it
    return [lc.generation(i) if isinstance(i, dict) and "lc" in i else Generation(**i) for i in items]


class CommunitySemantic:
    what = "semantic-cache"

    def __init__(self, redis: Any, options: Options) -> None:
        self.redis = redis
        names = (
            [options.index]
            if options.index
            else [n for n in list_indexes(redis) if _COMMUNITY_INDEX.match(n)]
        )
        self.indexes = [read_index(redis, n) for n in names]
        specs = [_spec(ix, "content_vector", "prompt") for ix in self.indexes]
        if len({(s.dims, s.metric, s.dtype) for s in specs}) > 1:
            raise SourceError(
                "the semantic cache indexes differ in vector size or metric; migrate them one by one (--index)"
            )
        self.vectors: VectorSpec | None = specs[0] if specs else None
        self.default_target: str | None = "semantic"
        self.described = (
            f"langchain-community RedisSemanticCache indexes ({len(names)}: cache:<md5(llm_string)>)"
        )

    def records(self) -> Iterator[SemanticRecord | Skipped]:
        dtype = self.vectors.dtype if self.vectors else "FLOAT32"
        for index in self.indexes:
            for read in _hash_records(self.redis, index):
                f: dict[str, Any] = read.value
                try:
                    gens = _community_generations(keyspace.text(f["return_val"]))
                    prompt, llm = keyspace.text(f["prompt"]), keyspace.text(f["llm_string"])
                except (KeyError, ValueError, TypeError) as e:
                    yield Skipped(read.key, f"not a semantic cache entry ({str(e)[:80]})")
                    continue
                vector = keyspace.vector_of(f.get("content_vector"), dtype)
                yield SemanticRecord(read.key, prompt, llm, gens, vector, read.ttl)


def _redisvl_generations(response: str) -> list[Generation] | None:
    """langchain-redis's JSON list of dumps() strings, or None when the response is plain text."""
    if not response.startswith('["'):
        return None
    try:
        items = json.loads(response)
        return lc.generations(items) if isinstance(items, list) else None
    except (ValueError, TypeError, KeyError):
        return None


class RedisVLSemantic:
    what = "semantic-cache"

    def __init__(self, redis: Any, options: Options, layout: str) -> None:
        self.redis = redis
        self.llm_string = options.llm_string
        self.index = read_index(redis, options.index or "llmcache")
        self.vectors: VectorSpec | None = _spec(self.index, "prompt_vector", "prompt")
        self.default_target: str | None = redisvl_semantic_cache(self.index.name)
        self.described = f"{layout} semantic cache index {self.index.name!r}"

    def records(self) -> Iterator[SemanticRecord | Skipped]:
        dtype = self.vectors.dtype if self.vectors else "FLOAT32"
        for read in _hash_records(self.redis, self.index):
            f: dict[str, Any] = read.value
            if "prompt" not in f or "response" not in f:
                yield Skipped(read.key, "no prompt or response")
                continue
            response = keyspace.text(f["response"])
            try:
                metadata = json.loads(keyspace.text(f["metadata"])) if "metadata" in f else {}
            except ValueError:
                metadata = {}
            llm = metadata.get("llm_string") if isinstance(metadata, dict) else None
            gens = _redisvl_generations(response) or [Generation(text=response)]
            vector = keyspace.vector_of(f.get("prompt_vector"), dtype)
            prompt = keyspace.text(f["prompt"])
            yield SemanticRecord(
                read.key, prompt, llm if isinstance(llm, str) else self.llm_string, gens, vector, read.ttl
            )

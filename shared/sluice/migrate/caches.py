"""Exact LLM caches: langchain-community's hashes and langchain-redis's JSON documents.

- langchain-community `RedisCache`: key ``md5(prompt + llm_string)`` (no prefix), a hash
  ``{"0": dumps(generation), "1": ...}``; a value that does not load is taken as the text of a
  plain generation, as that class reads it.
- langchain-redis `RedisCache`: key ``<prefix>:md5(prompt):md5(llm_string)`` (prefix ``redis``),
  a JSON list of ``dumps(generation)`` objects (or a single one, its older form).

Neither layout keeps the prompt or the model: records carry the digest (`sluice.migrate.legacy`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from langchain_core.outputs import Generation

from sluice.migrate import keyspace, lc
from sluice.migrate.legacy import COMMUNITY_MARKER, LANGCHAIN_REDIS_MARKER, langchain_redis_cache
from sluice.migrate.records import CacheRecord, Options, Skipped, SourceError, VectorSpec

_HEX32 = "[0-9a-f]" * 32


def _community_generation(raw: Any) -> Generation:
    value = keyspace.text(raw)
    try:
        return lc.generation(value)
    except (ValueError, TypeError, KeyError):
        return Generation(text=value)  # what langchain-community reads from its older entries


class CommunityCache:
    what = "cache"
    vectors: VectorSpec | None = None
    default_target: str | None = None

    def __init__(self, redis: Any, options: Options) -> None:
        if options.source_prefix:
            raise SourceError(
                "langchain-community's RedisCache keys have no prefix (they are md5 digests); drop --source-prefix"
            )
        self.redis = redis
        self.default_target: str | None = "default"
        self.described = "langchain-community RedisCache hashes named by md5(prompt + llm_string)"

    def records(self) -> Iterator[CacheRecord | Skipped]:
        for chunk in keyspace.chunked(keyspace.scan(self.redis, _HEX32, "hash")):
            for read in keyspace.hashes(self.redis, chunk):
                fields: dict[str, Any] = read.value
                if not all(f.isdigit() for f in fields):
                    yield Skipped(read.key, "a hash whose fields are not generation positions")
                    continue
                ordered = [fields[f] for f in sorted(fields, key=int)]
                gens = [_community_generation(v) for v in ordered]
                yield CacheRecord(read.key, read.key, COMMUNITY_MARKER, gens, read.ttl)


class LangchainRedisCache:
    what = "cache"
    vectors: VectorSpec | None = None
    default_target: str | None = None

    def __init__(self, redis: Any, options: Options) -> None:
        self.redis = redis
        self.prefix = options.source_prefix or "redis"
        self.default_target: str | None = langchain_redis_cache(self.prefix)
        self.described = f"langchain-redis RedisCache JSON documents '{self.prefix}:<md5>:<md5>'"

    def records(self) -> Iterator[CacheRecord | Skipped]:
        match = f"{keyspace.glob_escape(self.prefix)}:{_HEX32}:{_HEX32}"
        for chunk in keyspace.chunked(keyspace.scan(self.redis, match, "ReJSON-RL")):
            for read in keyspace.documents(self.redis, chunk):
                items = read.value if isinstance(read.value, list) else [read.value]
                try:
                    gens = lc.generations([json.dumps(i) for i in items])
                except (ValueError, TypeError, KeyError) as e:
                    yield Skipped(read.key, f"not a list of serialised generations ({str(e)[:80]})")
                    continue
                digest = read.key[len(self.prefix) + 1 :]
                yield CacheRecord(read.key, digest, LANGCHAIN_REDIS_MARKER, gens, read.ttl)

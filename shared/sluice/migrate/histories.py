"""Chat histories of the three peers, as whole conversations (oldest message first).

- langchain-community `RedisChatMessageHistory`: a list ``<key_prefix><session>`` (prefix
  ``message_store:``) of `message_to_dict` JSON, newest first (LPUSH).
- langchain-redis `RedisChatMessageHistory`: one JSON document per message,
  ``<key_prefix><session>:<ulid>`` (prefix ``chat:``, index ``idx:chat_history``) holding
  ``type``, ``data`` (content, additional_kwargs, tool_call_id), ``session_id``, ``timestamp``.
  It keeps an AI message's tool calls only inside ``additional_kwargs`` (as it reads them back).
- redisvl `MessageHistory`: one hash per message ``<prefix>:<session>:<timestamp>:<suffix>``
  holding ``role``, ``content``, ``session_tag``, ``timestamp``, ``tool_call_id``, ``metadata``.
  Roles become LangChain messages (user -> human, assistant/llm -> ai, tool -> tool);
  ``metadata`` goes to ``additional_kwargs["metadata"]``, and a ``tool_calls`` list in it to
  the AI message's tool calls.

Message-per-key layouts are grouped in memory by session, then ordered by (timestamp, id).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from sluice.migrate import keyspace, lc
from sluice.migrate.indexes import read_index
from sluice.migrate.legacy import (
    COMMUNITY_HISTORY_PREFIX,
    LANGCHAIN_REDIS_HISTORY_PREFIX,
    community_session,
    langchain_redis_session,
)
from sluice.migrate.records import HistoryRecord, Options, Skipped, SourceError, VectorSpec


class CommunityHistory:
    what = "history"
    vectors: VectorSpec | None = None
    default_target: str | None = None

    def __init__(self, redis: Any, options: Options) -> None:
        self.redis = redis
        self.prefix = options.source_prefix or COMMUNITY_HISTORY_PREFIX
        self.described = f"langchain-community RedisChatMessageHistory lists '{self.prefix}<session>'"

    def records(self) -> Iterator[HistoryRecord | Skipped]:
        match = keyspace.glob_escape(self.prefix) + "*"
        for chunk in keyspace.chunked(keyspace.scan(self.redis, match, "list")):
            for read in keyspace.lists(self.redis, chunk):
                try:
                    messages = lc.messages([json.loads(m) for m in reversed(read.value)])
                except (ValueError, KeyError, TypeError) as e:
                    yield Skipped(read.key, f"not a list of LangChain messages ({str(e)[:80]})")
                    continue
                yield HistoryRecord(read.key, community_session(read.key), messages, read.ttl)


class _Grouped:
    """Conversations gathered from one key per message."""

    def __init__(self) -> None:
        self.messages: dict[str, list[tuple[float, str, BaseMessage]]] = defaultdict(list)
        self.ttls: dict[str, float | None] = {}
        self.first_key: dict[str, str] = {}

    def add(self, session: str, order: tuple[float, str], message: BaseMessage, read: keyspace.Read) -> None:
        self.messages[session].append((*order, message))
        self.first_key.setdefault(session, read.key)
        known = self.ttls.get(session, 0.0)
        # the conversation lives as long as its longest-lived message (None: one never expires)
        self.ttls[session] = None if read.ttl is None or known is None else max(known, read.ttl)

    def records(self) -> Iterator[HistoryRecord]:
        for session in sorted(self.messages):
            ordered = sorted(self.messages[session], key=lambda m: (m[0], m[1]))
            yield HistoryRecord(self.first_key[session], session, [m[2] for m in ordered], self.ttls[session])


class LangchainRedisHistory:
    what = "history"
    vectors: VectorSpec | None = None
    default_target: str | None = None

    def __init__(self, redis: Any, options: Options) -> None:
        self.redis = redis
        if options.source_prefix:
            self.prefix = options.source_prefix
        elif options.index:
            self.prefix = read_index(redis, options.index).prefixes[0]
        else:
            self.prefix = LANGCHAIN_REDIS_HISTORY_PREFIX
        self.described = (
            f"langchain-redis RedisChatMessageHistory JSON documents '{self.prefix}<session>:<id>'"
        )

    def records(self) -> Iterator[HistoryRecord | Skipped]:
        grouped = _Grouped()
        match = keyspace.glob_escape(self.prefix) + "*"
        for chunk in keyspace.chunked(keyspace.scan(self.redis, match, "ReJSON-RL")):
            for read in keyspace.documents(self.redis, chunk):
                doc = read.value
                try:
                    [message] = lc.messages([{"type": doc["type"], "data": doc["data"]}])
                    order = (float(doc.get("timestamp", 0.0)), str(doc.get("message_id", read.key)))
                    grouped.add(
                        langchain_redis_session(self.prefix, str(doc["session_id"])), order, message, read
                    )
                except (ValueError, KeyError, TypeError) as e:
                    yield Skipped(read.key, f"not a chat message document ({str(e)[:80]})")
        yield from grouped.records()


def redisvl_message(fields: dict[str, str]) -> BaseMessage:
    """One redisvl chat message hash as a LangChain message."""
    role, content = fields["role"], fields["content"]
    metadata = json.loads(fields["metadata"]) if fields.get("metadata") else None
    extra = {"metadata": metadata} if metadata is not None else {}
    if role == "user":
        return HumanMessage(content=content, additional_kwargs=extra)
    if role == "system":
        return SystemMessage(content=content, additional_kwargs=extra)
    if role == "tool":
        return ToolMessage(
            content=content, tool_call_id=fields.get("tool_call_id", ""), additional_kwargs=extra
        )
    if role in ("assistant", "llm"):
        calls = metadata.get("tool_calls") if isinstance(metadata, dict) else None
        return AIMessage(
            content=content, additional_kwargs=extra, tool_calls=calls if isinstance(calls, list) else []
        )
    raise ValueError(f"unknown role {role!r}")


class RedisVLHistory:
    what = "history"
    vectors: VectorSpec | None = None
    default_target: str | None = None

    def __init__(self, redis: Any, options: Options) -> None:
        if not options.index and not options.source_prefix:
            raise SourceError("name the redisvl message history: --index NAME (its name) or --source-prefix")
        self.redis = redis
        self.prefix = options.source_prefix or read_index(redis, options.index or "").prefixes[0]
        self.described = f"redisvl MessageHistory hashes '{self.prefix}*'"

    def records(self) -> Iterator[HistoryRecord | Skipped]:
        grouped = _Grouped()
        for chunk in keyspace.chunked(
            keyspace.scan(self.redis, keyspace.glob_escape(self.prefix) + "*", "hash")
        ):
            for read in keyspace.hashes(self.redis, chunk):
                fields = {k: keyspace.text(v) for k, v in read.value.items() if k != "vector_field"}
                try:
                    message = redisvl_message(fields)
                    order = (float(fields.get("timestamp", 0.0)), fields.get("entry_id", read.key))
                    grouped.add(fields["session_tag"], order, message, read)
                except (ValueError, KeyError, TypeError) as e:
                    yield Skipped(read.key, f"not a chat message hash ({str(e)[:80]})")
        yield from grouped.records()

"""langchain-redis's `RedisChatMessageHistory`, backed by sluice."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import BaseMessage, ToolMessage

from sluice.compat.clients import client_for
from sluice.facade.chat_history import ChatHistory
from sluice.facade.client import Client
from sluice.migrate.legacy import LANGCHAIN_REDIS_HISTORY_PREFIX, langchain_redis_session


class RedisChatMessageHistory(ChatHistory):
    """Drop-in for ``langchain_redis.RedisChatMessageHistory(session_id, redis_url=..., key_prefix=...,
    ttl=..., index_name=..., redis_client=...)``.

    Differences on purpose:

    - Appends are enqueued for the workers; ``messages`` waits (bounded) for this process's
      pending writes to the session. Tool calls and every message field are kept (langchain-redis
      kept only content, ``additional_kwargs`` and a tool message's id).
    - The sluice session id is ``session_id`` with the default ``key_prefix`` and
      ``key_prefix + session_id`` with another (what ``sluice migrate --what history`` gives).
      No search index is created: a session's messages are one sorted set, read in one call, so
      ``index_name`` and ``overwrite_index`` are ignored, ``redis_client.ft(index_name)`` finds
      nothing (``redis_client`` is the redis-py client), no JSON document per message exists,
      and sessions of different ``key_prefix`` share no index (no prefix-conflict warning).
    - ``search_messages(query, limit)`` matches the words of `query` against this session's
      messages in the app (lower-cased words, a light English suffix stemming, no stopwords),
      best matches first, and returns the peer's dicts (``content``, ``type``,
      ``additional_kwargs``; ``tool_call_id``/``status`` for tool messages); RediSearch's
      stemmer and BM25 ranking can order ties differently. For recall by meaning, use
      ``client.chat_history(..., semantic=True)`` and ``relevant(query, k)``.
    - ``delete()`` removes this session only (langchain-redis dropped every session and the index).
    - ``ttl=0`` means no expiry, as langchain-redis (redisvl) reads it; so does a negative ttl
      (which made Redis delete each message at once).
    """

    def __init__(
        self,
        session_id: str,
        redis_url: str = "redis://localhost:6379",
        key_prefix: str = LANGCHAIN_REDIS_HISTORY_PREFIX,
        ttl: int | None = None,
        index_name: str = "idx:chat_history",
        redis_client: Any = None,
        overwrite_index: bool = False,
        *,
        client: Client | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not session_id or not isinstance(session_id, str):
            raise ValueError("session_id must be a non-empty, valid string")
        sluice = client_for(url=redis_url, redis=redis_client, client=client, namespace=namespace)
        super().__init__(sluice, langchain_redis_session(key_prefix, session_id), ttl=_ttl(ttl))
        self.key_prefix = key_prefix
        self.index_name = index_name
        self.redis_client = redis_client if redis_client is not None else sluice.redis

    @property
    def id(self) -> str:
        return self.session_id

    def __len__(self) -> int:
        return len(self.messages)

    def search_messages(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """This session's messages holding words of `query`, best first, as langchain-redis's dicts."""
        if not query or not isinstance(query, str):
            return []
        wanted = {_stem(w) for w in _words(query)}
        scored = []
        for position, message in enumerate(self.messages):
            found = [_stem(w) for w in _words(_text(message))]
            score = sum(w in wanted for w in found) + len(wanted.intersection(found))
            if score:
                scored.append((-score, position, message))
        return [_as_dict(m) for _, _, m in sorted(scored, key=lambda s: s[:2])[: max(limit, 0)]]


_WORD = re.compile(r"\w+", re.UNICODE)
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return " ".join(p if isinstance(p, str) else str(p.get("text", "")) for p in message.content)


def _as_dict(message: BaseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "content": message.content,
        "additional_kwargs": message.additional_kwargs,
        "type": message.type,
    }
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
        out["status"] = message.status
    return out


def _ttl(ttl: float | None) -> float | None:
    """The peer's ttl as sluice's: 0 or less (no EXPIRE, or an instant one) is no expiry."""
    return ttl if ttl is not None and ttl > 0 else None

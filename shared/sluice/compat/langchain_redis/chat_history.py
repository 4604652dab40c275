"""langchain-redis's `RedisChatMessageHistory`, backed by sluice."""

from __future__ import annotations

from typing import Any

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
      No search index is created: ``index_name`` and ``overwrite_index`` are ignored, and
      ``search_messages`` (full-text) is not offered — use ``client.chat_history(..., semantic=True)``
      and ``relevant(query)`` for recall.
    - ``delete()`` removes this session only (langchain-redis dropped every session and the index).
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
        super().__init__(sluice, langchain_redis_session(key_prefix, session_id), ttl=ttl)
        self.key_prefix = key_prefix
        self.index_name = index_name

    @property
    def id(self) -> str:
        return self.session_id

    def __len__(self) -> int:
        return len(self.messages)

    def search_messages(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        raise NotImplementedError(
            "full-text search of a history is not offered by sluice; make the history with "
            "client.chat_history(session_id, semantic=True) and use relevant(query, k)"
        )

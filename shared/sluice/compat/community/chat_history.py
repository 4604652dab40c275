"""langchain-community's `RedisChatMessageHistory`, backed by sluice."""

from __future__ import annotations

from sluice.compat.clients import client_for
from sluice.facade.chat_history import ChatHistory
from sluice.facade.client import Client
from sluice.migrate.legacy import COMMUNITY_HISTORY_PREFIX, community_session


class RedisChatMessageHistory(ChatHistory):
    """Drop-in for ``langchain_community.chat_message_histories.RedisChatMessageHistory(session_id,
    url=..., key_prefix=..., ttl=...)``.

    Differences on purpose:

    - ``add_messages`` enqueues the append for a worker; ``messages`` first waits (bounded) for
      this process's pending writes to this session, so a new object for the same session (as
      ``RunnableWithMessageHistory`` makes each turn) still reads the previous turn.
    - Messages live in sluice's conversation store: the sluice session id is ``session_id``
      with the default ``key_prefix`` and ``key_prefix + session_id`` with another one (what
      ``sluice migrate --what history`` gives the old lists; ``self.session_id`` is that id).
      ``ttl`` is refreshed on every write.
    - ``clear()`` goes through the queue too, so it lands after this object's earlier appends.
    - A connection failure raises sluice's error instead of being logged at construction.
    - ``ttl=0`` means no expiry (as before), and so does a negative ttl (Redis deleted the list).
    - ``redis_client`` is a redis-py client on sluice's connection, but the messages are in
      sluice's store, not in the list at ``key``.
    """

    def __init__(
        self,
        session_id: str,
        url: str = "redis://localhost:6379/0",
        key_prefix: str = COMMUNITY_HISTORY_PREFIX,
        ttl: int | None = None,
        *,
        client: Client | None = None,
        namespace: str | None = None,
    ) -> None:
        sluice = client_for(url=url, client=client, namespace=namespace)
        super().__init__(sluice, community_session(key_prefix + session_id), ttl=_ttl(ttl))
        self.redis_client = sluice.redis
        self.url = url
        self.key_prefix = key_prefix
        self.key = key_prefix + session_id
        """The key this history had in langchain-community."""


def _ttl(ttl: float | None) -> float | None:
    """The peer's ttl as sluice's: 0 or less (no EXPIRE, or an instant one) is no expiry."""
    return ttl if ttl is not None and ttl > 0 else None

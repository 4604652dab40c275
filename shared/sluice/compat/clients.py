"""One `sluice.Client` per (URL or redis-py client, namespace) for the drop-in classes.

LangChain code builds these classes freely — a history per request in
``RunnableWithMessageHistory``, a cache per process — from a URL or a redis-py client. They
share a `Client` so that they share its connections and its record of pending writes (a new
history object still reads the previous turn's appends). The namespace comes from
``namespace=``, else ``SLUICE_NAMESPACE``, else ``sluice``; everything else from the
environment as `sluice.Settings` reads it. An asyncio redis-py client is refused where a class
talks to Redis synchronously (`WrongClient` says so); `AsyncRedisCache` passes ``asyncio=True``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from sluice.errors import ConfigError
from sluice.facade.client import Client

_LOCK = threading.Lock()
_BY_URL: dict[tuple[str, str], Client] = {}
_BY_REDIS: weakref.WeakKeyDictionary[Any, dict[str, Client]] = weakref.WeakKeyDictionary()


class WrongClient(ConfigError, ValueError):
    """A redis client of a kind the class cannot use (a ValueError, as the peers raise)."""


def is_asyncio(redis: Any) -> bool:
    module = type(redis).__module__ or ""
    return module.startswith("redis.asyncio")


def _sync_twin(aclient: Any) -> Any:
    """A synchronous client on the connection settings of an asyncio one (sluice's sync half)."""
    import redis as redis_py
    import redis.connection as sync_connections

    pool = getattr(aclient, "connection_pool", None)
    kind = getattr(getattr(pool, "connection_class", None), "__name__", "")
    connection_class = getattr(sync_connections, kind, None)
    if pool is None or connection_class is None:
        raise WrongClient(
            f"cannot reach Redis like the given {type(aclient).__name__} (no single-server connection pool); "
            "pass redis_url=... or client=<sluice Client> instead"
        )
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in ("retry", "event_dispatcher")}
    try:
        sync_pool = redis_py.ConnectionPool(connection_class=connection_class, **kwargs)
    except (TypeError, ValueError) as e:
        raise WrongClient(f"cannot reach Redis like the given asyncio client ({e}); pass a URL") from e
    return redis_py.Redis(connection_pool=sync_pool)


def _from_redis(redis: Any, namespace: str) -> Client:
    if not is_asyncio(redis):
        return Client.from_redis(redis, namespace=namespace)
    return Client.from_redis(_sync_twin(redis), namespace=namespace, async_redis=redis)


def _namespace(namespace: str | None) -> str:
    return namespace or os.environ.get("SLUICE_NAMESPACE") or "sluice"


def client_for(
    *,
    url: str | None = None,
    redis: Any = None,
    client: Client | None = None,
    namespace: str | None = None,
    asyncio: bool = False,
) -> Client:
    """`client` itself, else the shared client of `redis` (a redis-py client; an asyncio one only
    with `asyncio`) or `url`."""
    if client is not None:
        return client
    if redis is not None and not asyncio and is_asyncio(redis):
        raise WrongClient(
            f"got an asyncio client ({type(redis).__module__}.{type(redis).__name__}) where a synchronous "
            "one is needed: pass redis.Redis (or RedisCluster), or a URL"
            " (for the asyncio client use sluice.compat.community.AsyncRedisCache)"
        )
    ns = _namespace(namespace)
    with _LOCK:
        if redis is not None:
            per = _BY_REDIS.setdefault(redis, {})
            if ns not in per:
                per[ns] = _from_redis(redis, ns)
            return per[ns]
        if not url:
            raise ConfigError(
                "give a Redis URL (redis_url=/url=), a redis-py client, or client=<sluice Client>"
            )
        key = (url, ns)
        if key not in _BY_URL:
            _BY_URL[key] = Client.from_url(url, namespace=ns)
        return _BY_URL[key]


def close_all() -> None:
    """Close the clients made from URLs and forget all (the app's own redis-py clients stay open)."""
    with _LOCK:
        clients = list(_BY_URL.values())
        _BY_URL.clear()
        _BY_REDIS.clear()
    for c in clients:
        c.close()

"""One `sluice.Client` per (URL or redis-py client, namespace) for the drop-in classes.

LangChain code builds these classes freely — a history per request in
``RunnableWithMessageHistory``, a cache per process — from a URL or a redis-py client. They
share a `Client` so that they share its connections and its record of pending writes (a new
history object still reads the previous turn's appends). The namespace comes from
``namespace=``, else ``SLUICE_NAMESPACE``, else ``sluice``; everything else from the
environment as `sluice.Settings` reads it.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from redis.exceptions import RedisError

from sluice.errors import ConfigError
from sluice.facade.client import Client

_DEFAULT_PROTOCOL = 3  # redis-py >= 8 (5.x-7.x: 2, which they also write into connection_kwargs)
_RESP3_ONLY = ("maint_notifications", "orig_", "himport_registry")
_LOCK = threading.Lock()
_BY_URL: dict[tuple[str, str], Client] = {}
_BY_REDIS: weakref.WeakKeyDictionary[Any, dict[str, Client]] = weakref.WeakKeyDictionary()


def resp2(redis: Any) -> Any:
    """`redis` itself if it speaks RESP2, else a twin on the same connection settings that does.

    sluice's reply parsers read RESP2 (`sluice.connection.factory`); redis-py 8 speaks RESP3 unless
    told otherwise, and a LangChain app hands over its client as it is.
    """
    pool = getattr(redis, "connection_pool", None)
    if pool is None or str(pool.connection_kwargs.get("protocol") or _DEFAULT_PROTOCOL) == "2":
        return redis
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if not k.startswith(_RESP3_ONLY)}
    try:
        twin = type(pool)(connection_class=pool.connection_class, **{**kwargs, "protocol": 2})
        return type(redis)(connection_pool=twin)
    except (TypeError, ValueError, RedisError) as e:
        raise ConfigError(
            f"cannot make a RESP2 connection like the given redis client ({e}); pass "
            "redis.Redis(..., protocol=2), or a URL"
        ) from e


def _namespace(namespace: str | None) -> str:
    return namespace or os.environ.get("SLUICE_NAMESPACE") or "sluice"


def client_for(
    *, url: str | None = None, redis: Any = None, client: Client | None = None, namespace: str | None = None
) -> Client:
    """`client` itself, else the shared client of `redis` (a redis-py client) or `url`."""
    if client is not None:
        return client
    ns = _namespace(namespace)
    with _LOCK:
        if redis is not None:
            per = _BY_REDIS.setdefault(redis, {})
            if ns not in per:
                per[ns] = Client.from_redis(resp2(redis), namespace=ns)
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

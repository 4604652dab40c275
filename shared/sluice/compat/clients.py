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

from sluice.errors import ConfigError
from sluice.facade.client import Client

_LOCK = threading.Lock()
_BY_URL: dict[tuple[str, str], Client] = {}
_BY_REDIS: weakref.WeakKeyDictionary[Any, dict[str, Client]] = weakref.WeakKeyDictionary()


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
                per[ns] = Client.from_redis(redis, namespace=ns)
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

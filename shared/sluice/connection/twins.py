"""sluice's clients built from the one an app hands over (`Client.from_redis`).

sluice needs up to three flavours of a client: sync RESP2 with bytes replies (what its reply
parsers read), an asyncio one, and a sync RESP3 one for client-side caching. All three are built
from the app's client's own connection class and keyword arguments, never from a URL rebuilt out
of host and port: a unix-socket client's twins use that socket, a TLS client's use TLS with the
same certificates and checks, a Sentinel-managed client's ask the same sentinels, and a Cluster
client's start from the same nodes with the same options. A client whose transport cannot be
carried over (a custom connection class, a sync-only TLS option such as OCSP) is refused with
what to pass instead; nothing is silently dropped.

Building a twin does no I/O, except that a sync `RedisCluster` discovers its slots (callers
build it on first use, errors translated).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Final

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.connection
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.connection
import redis.retry
import redis.sentinel

from sluice.errors import ConfigError
from sluice.transport.translate import translate_errors

_RESP3_ONLY: Final = ("maint_notifications", "oss_cluster_maint", "orig_", "himport_registry")
_NOT_CARRIED: Final = frozenset({"connection_pool", "redis_connect_func", "retry", "host", "port"})

_ASYNC_CONNECTION: Final[Mapping[type, type]] = {
    redis.connection.Connection: redis.asyncio.connection.Connection,
    redis.connection.SSLConnection: redis.asyncio.connection.SSLConnection,
    redis.connection.UnixDomainSocketConnection: redis.asyncio.connection.UnixDomainSocketConnection,
    redis.sentinel.SentinelManagedConnection: redis.asyncio.sentinel.SentinelManagedConnection,
    redis.sentinel.SentinelManagedSSLConnection: redis.asyncio.sentinel.SentinelManagedSSLConnection,
}
_CLUSTER_OPTIONS: Final = ("load_balancing_strategy", "reinitialize_steps")


def _refuse(what: str) -> ConfigError:
    return ConfigError(
        f"cannot build sluice's connections like the given redis client: {what}; pass "
        "async_redis=... as well, or use Client.from_url(...) with the same settings"
    )


def _kept(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if not k.startswith(_RESP3_ONLY) and k != "connection_pool"}


def _speaks_resp2_bytes(kwargs: Mapping[str, Any]) -> bool:
    return str(kwargs.get("protocol")) == "2" and not kwargs.get("decode_responses")


def check(client: Any) -> None:
    """Refuse, without I/O, a client `from_redis` cannot wrap."""
    if isinstance(client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
        raise ConfigError(
            "Client.from_redis takes a sync redis-py client (redis.Redis, RedisCluster or a "
            "Sentinel master_for client); pass an asyncio client as async_redis=..."
        )
    if not isinstance(client, redis.cluster.RedisCluster) and not hasattr(client, "connection_pool"):
        raise ConfigError(f"Client.from_redis needs a redis-py client, not {type(client).__name__}")


# --- sync twins --------------------------------------------------------------------------------
def sync_twin(client: Any, *, protocol: int = 2) -> Any:
    """A sync client like `client` speaking `protocol` with bytes replies (`client` itself if it does)."""
    if isinstance(client, redis.cluster.RedisCluster):
        kwargs = client.nodes_manager.connection_kwargs
        if protocol == 2 and _speaks_resp2_bytes(kwargs):
            return client
        if protocol == 3:
            raise ConfigError("local_cache is not available on a Redis Cluster; leave it unset")
        with translate_errors("connect to the Redis Cluster"):
            return redis.cluster.RedisCluster(**_cluster_kwargs(client, redis.cluster.ClusterNode))
    pool = client.connection_pool
    if protocol == 2 and _speaks_resp2_bytes(pool.connection_kwargs):
        return client
    kwargs = {**_kept(pool.connection_kwargs), "protocol": protocol, "decode_responses": False}
    return type(client)(connection_pool=_pool_like(pool, kwargs))


def _pool_like(pool: Any, kwargs: dict[str, Any]) -> Any:
    """A new pool of `pool`'s class and connection class with these connection kwargs."""
    extra: dict[str, Any] = {"max_connections": pool.max_connections}
    if isinstance(
        pool, (redis.sentinel.SentinelConnectionPool, redis.asyncio.sentinel.SentinelConnectionPool)
    ):
        extra.update(
            service_name=pool.service_name,
            sentinel_manager=pool.sentinel_manager,
            is_master=pool.is_master,
            check_connection=pool.check_connection,
        )
    if isinstance(pool, (redis.BlockingConnectionPool, redis.asyncio.BlockingConnectionPool)):
        extra["timeout"] = pool.timeout
    try:
        return type(pool)(connection_class=pool.connection_class, **extra, **kwargs)
    except (TypeError, ValueError, redis.RedisError) as e:
        raise _refuse(f"its {type(pool).__name__} cannot be copied ({e})") from e


def _cluster_kwargs(client: Any, node: Callable[..., Any]) -> dict[str, Any]:
    """What a (sync or asyncio) RESP2 bytes RedisCluster like `client` is built with."""
    manager = client.nodes_manager
    kwargs = {k: v for k, v in _kept(manager.connection_kwargs).items() if k not in _NOT_CARRIED}
    if client.user_on_connect_func is not None:
        kwargs["redis_connect_func"] = client.user_on_connect_func
    options = {name: getattr(client, name) for name in _CLUSTER_OPTIONS if hasattr(client, name)}
    if getattr(client, "read_from_replicas", False):  # deprecated in redis-py; pass it only when set
        options["read_from_replicas"] = True
    return {
        **kwargs,
        **options,
        "startup_nodes": [node(n.host, n.port) for n in manager.startup_nodes.values()],
        "require_full_coverage": manager._require_full_coverage,
        "dynamic_startup_nodes": manager._dynamic_startup_nodes,
        "address_remap": manager.address_remap,
        "retry": client.retry,
        "protocol": 2,
        "decode_responses": False,
    }


# --- asyncio twins -----------------------------------------------------------------------------
def async_twin(client: Any) -> Any:
    """An asyncio RESP2 bytes client on the same server(s), transport and credentials as `client`."""
    if isinstance(client, redis.cluster.RedisCluster):
        return _async_cluster(client)
    pool = client.connection_pool
    connection = _ASYNC_CONNECTION.get(pool.connection_class)
    if connection is None:
        raise _refuse(f"its connection class {pool.connection_class.__name__} has no asyncio twin")
    kwargs = _async_kwargs(pool.connection_kwargs, _accepted(connection))
    kwargs.update(protocol=2, decode_responses=False, connection_class=connection)
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        manager = pool.sentinel_manager
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            [_address(s) for s in manager.sentinels],
            min_other_sentinels=manager.min_other_sentinels,
            sentinel_kwargs=_async_kwargs(
                manager.sentinel_kwargs, _accepted(redis.asyncio.connection.Connection)
            ),
            force_master_ip=manager._force_master_ip,
        )
        return sentinel.master_for(pool.service_name, **kwargs)
    blocking = isinstance(pool, redis.BlockingConnectionPool)
    pool_class = redis.asyncio.BlockingConnectionPool if blocking else redis.asyncio.ConnectionPool
    extra = {"timeout": pool.timeout} if blocking else {}
    twin = pool_class(max_connections=pool.max_connections, **extra, **kwargs)
    return redis.asyncio.Redis(connection_pool=twin)


def resp2_async(client: Any) -> Any:
    """An app's asyncio client, or a RESP2 bytes twin of it (sluice's parsers read RESP2)."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        if not _speaks_resp2_bytes(client.nodes_manager.connection_kwargs):
            raise ConfigError(
                "async_redis: pass a RedisCluster with protocol=2 and decode_responses=False, or "
                "leave async_redis unset (sluice builds one like the sync client)"
            )
        return client
    pool = getattr(client, "connection_pool", None)
    if pool is None or _speaks_resp2_bytes(pool.connection_kwargs):
        return client
    kwargs = {**_kept(pool.connection_kwargs), "protocol": 2, "decode_responses": False}
    return type(client)(connection_pool=_pool_like(pool, kwargs))


def _async_cluster(client: Any) -> Any:
    kwargs = _cluster_kwargs(client, redis.asyncio.cluster.ClusterNode)
    retry = kwargs.pop("retry")
    connection_class = kwargs.pop("connection_class", None)
    if connection_class not in (None, redis.connection.Connection, redis.connection.SSLConnection):
        raise _refuse(f"its connection class {connection_class.__name__} has no asyncio twin")
    if connection_class is redis.connection.SSLConnection:
        kwargs["ssl"] = True
    kept = _async_kwargs(kwargs, _accepted(redis.asyncio.cluster.RedisCluster))
    return redis.asyncio.cluster.RedisCluster(retry=_async_retry(retry), **kept)


def _address(sentinel: Any) -> tuple[str, int]:
    kwargs = sentinel.connection_pool.connection_kwargs
    return str(kwargs["host"]), int(kwargs["port"])


@cache
def _accepted(cls: type) -> frozenset[str]:
    """Keyword arguments `cls` takes (its own and its bases' named parameters)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, p in inspect.signature(init).parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self":
                names.add(name)
    return frozenset(names)


def _async_kwargs(kwargs: Mapping[str, Any], accepted: frozenset[str]) -> dict[str, Any]:
    """Sync connection kwargs for an asyncio class: the retry translated, the rest carried as they
    are; an option the asyncio class lacks is dropped only when unset, else refused."""
    out: dict[str, Any] = {}
    for name, value in _kept(kwargs).items():
        if name == "retry":
            out[name] = _async_retry(value)
        elif name == "redis_connect_func" and value is not None:
            raise _refuse("it runs a sync redis_connect_func on every connection")
        elif name in accepted:
            out[name] = value
        elif value not in (None, False, (), []):
            raise _refuse(f"its option {name} has no asyncio equivalent")  # never echo a value
    return out


def _async_retry(retry: Any) -> Any:
    if retry is None:
        return None
    return redis.asyncio.retry.Retry(retry._backoff, retry._retries, tuple(retry._supported_errors))

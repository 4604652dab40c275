"""redis-py clients built from `RedisSettings`, for every URL form.

Use `connect` (sync) or `connect_async` (asyncio) wherever sluice needs a client; nothing else
constructs redis-py clients. Both resolve the URL and the settings into one `ClientPlan` and
differ only in the redis-py classes they instantiate. Neither does I/O, except that a sync
`RedisCluster` discovers its slots at construction (its errors are translated).

Settings fields that were set explicitly win over the URL; URL options win over settings
defaults. Commands are retried on connection errors and timeouts with exponential backoff and
jitter; a Sentinel client asks the sentinels for the primary on every reconnect, so it follows a
failover. The protocol is explicit (RESP2 unless asked): sluice's reply parsers expect RESP2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.retry
import redis.sentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sluice.connection.urls import ConnectionSpec, OptionValue, parse_url
from sluice.errors import ConfigError
from sluice.settings import RedisSettings
from sluice.transport.translate import translate_errors

SyncClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster
AsyncClient: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster

HEALTH_CHECK_INTERVAL: Final = 30.0
"""Seconds a pooled connection may idle before it is PINGed on reuse (URL option overrides)."""

_RETRY_ON: Final = (RedisConnectionError, RedisTimeoutError)
_TLS_FILES: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


@dataclass(frozen=True)
class ClientPlan:
    """Everything needed to build a client, resolved once from the URL and the settings.

    `node` holds connection keyword arguments for data nodes, `sentinel` those for the sentinels
    themselves (their own credentials, no retries: redis-py already tries the next sentinel).
    """

    spec: ConnectionSpec
    node: dict[str, Any] = field(repr=False)
    sentinel: dict[str, Any] = field(repr=False)
    retries: int
    backoff_base: float
    backoff_cap: float

    def backoff(self) -> ExponentialWithJitterBackoff:
        return ExponentialWithJitterBackoff(cap=self.backoff_cap, base=self.backoff_base)

    def cluster_node(self) -> dict[str, Any]:
        """`node` without what Redis Cluster refuses (a db; it has only db 0)."""
        return {k: v for k, v in self.node.items() if k != "db"}


def plan_connection(
    settings: RedisSettings, *, decode_responses: bool = False, protocol: int = 2
) -> ClientPlan:
    """Resolve URL and settings into a `ClientPlan`; raises `URLError` or `ConfigError`."""
    if protocol not in (2, 3):
        raise ConfigError(f"protocol must be 2 (RESP2) or 3 (RESP3), not {protocol!r}")
    spec = parse_url(settings.url.get_secret_value())
    options = spec.options
    timeouts = {
        "socket_timeout": _setting(settings, "socket_timeout", options),
        "socket_connect_timeout": _setting(settings, "socket_connect_timeout", options),
    }
    tls = _tls_kwargs(spec, settings)
    node: dict[str, Any] = {
        "username": settings.username if settings.username is not None else spec.username,
        "password": settings.password.get_secret_value() if settings.password is not None else spec.password,
        "db": spec.db,
        **timeouts,
        "health_check_interval": options.get("health_check_interval", HEALTH_CHECK_INTERVAL),
        "max_connections": _setting(settings, "max_connections", options),
        "retry_on_error": list(_RETRY_ON),
        "decode_responses": decode_responses,
        "protocol": protocol,
        **tls,
    }
    if "client_name" in options:
        node["client_name"] = options["client_name"]
    sentinel: dict[str, Any] = {}
    if spec.mode == "sentinel":
        password = settings.sentinel_password
        sentinel = {
            "username": settings.sentinel_username or spec.sentinel_username,
            "password": password.get_secret_value() if password is not None else spec.sentinel_password,
            **timeouts,
            "protocol": 2,
            **tls,
        }
    return ClientPlan(
        spec=spec,
        node=node,
        sentinel=sentinel,
        retries=settings.retries,
        backoff_base=settings.retry_backoff_base,
        backoff_cap=settings.retry_backoff_cap,
    )


def _setting(settings: RedisSettings, name: str, options: dict[str, OptionValue]) -> Any:
    if name in settings.model_fields_set or name not in options:
        return getattr(settings, name)
    return options[name]


def _tls_kwargs(spec: ConnectionSpec, settings: RedisSettings) -> dict[str, Any]:
    if not spec.tls:
        given = [name for name in _TLS_FILES if getattr(settings, name) is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)} set but the URL has no TLS; use rediss:// (or rediss+sentinel://, "
                "rediss+cluster://) to connect over TLS, or unset them"
            )
        return {}
    tls: dict[str, Any] = {"ssl": True}
    for name in (*_TLS_FILES, "ssl_cert_reqs", "ssl_check_hostname"):
        tls[name] = _setting(settings, name, spec.options)
    if tls["ssl_cert_reqs"] == "none":
        tls["ssl_check_hostname"] = False  # Python refuses hostname checks without verification
    return tls


def _service(spec: ConnectionSpec) -> str:
    assert spec.service_name is not None  # parse_url guarantees it for sentinel URLs
    return spec.service_name


def connect(settings: RedisSettings, *, decode_responses: bool = False, protocol: int = 2) -> SyncClient:
    """A sync client for `settings.url`: `Redis` (also Sentinel-managed) or `RedisCluster`."""
    plan = plan_connection(settings, decode_responses=decode_responses, protocol=protocol)
    spec = plan.spec
    retry = redis.retry.Retry(plan.backoff(), plan.retries, supported_errors=_RETRY_ON)
    if spec.mode == "unix":
        return redis.Redis(unix_socket_path=spec.path, retry=retry, **plan.node)
    if spec.mode == "sentinel":
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            [tuple(h) for h in spec.hosts],
            sentinel_kwargs={**plan.sentinel, "retry": redis.retry.Retry(NoBackoff(), 0)},
        )
        client: redis.Redis = sentinel.master_for(_service(spec), retry=retry, **plan.node)  # type: ignore[no-untyped-call]
        return client
    if spec.mode == "cluster":
        nodes = [redis.cluster.ClusterNode(h.host, h.port) for h in spec.hosts]  # type: ignore[no-untyped-call]
        with translate_errors("connect to the Redis Cluster"):
            return redis.cluster.RedisCluster(startup_nodes=nodes, retry=retry, **plan.cluster_node())
    host = spec.hosts[0]
    return redis.Redis(host=host.host, port=host.port, retry=retry, **plan.node)


def connect_async(
    settings: RedisSettings, *, decode_responses: bool = False, protocol: int = 2
) -> AsyncClient:
    """An asyncio client for `settings.url`; connects on first use (a cluster too)."""
    plan = plan_connection(settings, decode_responses=decode_responses, protocol=protocol)
    spec = plan.spec
    retry = redis.asyncio.retry.Retry(plan.backoff(), plan.retries, supported_errors=_RETRY_ON)
    if spec.mode == "unix":
        return redis.asyncio.Redis(unix_socket_path=spec.path, retry=retry, **plan.node)
    if spec.mode == "sentinel":
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            [tuple(h) for h in spec.hosts],
            sentinel_kwargs={**plan.sentinel, "retry": redis.asyncio.retry.Retry(NoBackoff(), 0)},
        )
        client: redis.asyncio.Redis = sentinel.master_for(_service(spec), retry=retry, **plan.node)
        return client
    if spec.mode == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(h.host, h.port) for h in spec.hosts]
        return redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, retry=retry, **plan.cluster_node())
    host = spec.hosts[0]
    return redis.asyncio.Redis(host=host.host, port=host.port, retry=retry, **plan.node)

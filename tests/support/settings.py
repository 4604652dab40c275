"""Settings tuned for tests: short blocks, quick reclaim and retry, so failures show in seconds."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from sluice.settings import QueueSettings, RedisSettings, Settings, WorkerSettings

FAST_WORKER: dict[str, Any] = {
    "block_ms": 100,
    "reclaim_interval": 0.2,
    "visibility_timeout": 2.0,
    "retry_backoff_base": 0.05,
    "retry_backoff_cap": 0.2,
    "heartbeat_interval": 1.0,
}


def fast_settings(
    url: str, namespace: str, *, queue: dict[str, Any] | None = None, **worker: Any
) -> Settings:
    return Settings(
        namespace=namespace,
        redis=RedisSettings(url=SecretStr(url)),
        queue=QueueSettings(**(queue or {})),
        worker=WorkerSettings(**{**FAST_WORKER, **worker}),
    )

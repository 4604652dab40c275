"""Which handler serves which job kind, built from settings for one worker process."""

from __future__ import annotations

from typing import Any

from sluice.settings import Settings
from sluice.vectors.budget import Pacer
from sluice_workers.handlers.base import Handler
from sluice_workers.handlers.cache import CacheFillHandler
from sluice_workers.handlers.checkpoint import CheckpointHandler
from sluice_workers.handlers.history import HistoryHandler
from sluice_workers.handlers.index import IndexHandler
from sluice_workers.handlers.store import StoreHandler
from sluice_workers.handlers.warm import CacheWarmHandler


def build_handlers(
    redis: Any, settings: Settings, *, cluster: bool, pacer: Pacer | None = None
) -> dict[str, Handler]:
    """`pacer`: the process's governor; it paces the vector writes (index, semantic fills, recall)."""
    handlers: dict[str, Handler] = {
        "history-append": HistoryHandler.build(redis, settings, cluster=cluster, pacer=pacer),
        "index": IndexHandler(redis, settings, cluster=cluster, pacer=pacer),
        "cache-fill": CacheFillHandler.build(redis, settings, cluster=cluster, pacer=pacer),
        "cache-warm": CacheWarmHandler.build(redis, settings, cluster=cluster, pacer=pacer),
        "checkpoint": CheckpointHandler.build(redis, settings, cluster=cluster),
        "store": StoreHandler.build(redis, settings, cluster=cluster),
    }
    return handlers

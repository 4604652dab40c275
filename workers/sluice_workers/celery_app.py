"""Celery for scheduled warming: refresh-ahead of hot LLM cache entries before they expire.

The cache facades count hits (buffered, one pipeline a second) in ``ns:cache-meta:<c>:hits``
with, per entry, how to recompute it (prompt, llm_string, ttl, embedder). Every
`RefreshSettings.interval` seconds the beat runs `refresh_ahead` for each cache: it takes the
`top` hottest entries, keeps those whose TTL ends within `window`, finds the configured model
whose llm_string they are cached under, and enqueues one ``cache-warm`` job per entry onto
sluice's streams; sluice workers do the work. The task only enqueues (and ages the hit counts).

Run ONE beat for a namespace:

    celery -A sluice_workers.celery_app beat          # the scheduler, exactly one
    celery -A sluice_workers.celery_app worker -c 1   # runs the (tiny) task; or one `worker --beat`

Two beats would both enqueue refreshes; each refresh claims its entry first (``SET NX`` on
``ns:cache-meta:<c>:warming:<entry>`` for `window`), so duplicates are dropped, but one beat is
the supported setup. The broker is the Redis in the settings (``SLUICE_REDIS__URL``) unless
``SLUICE_REFRESH_BROKER_URL`` names another; Celery's Redis broker cannot use a Cluster.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluice.connection.factory import connect
from sluice.connection.urls import parse_url
from sluice.errors import ConfigError
from sluice.jobs.models import CacheWarmPayload
from sluice.keys import Keys
from sluice.models.registry import ModelRegistry
from sluice.queue.producer import Producer
from sluice.settings import Settings
from sluice.transport.translate import translate_errors

log = logging.getLogger(__name__)
TASK = "sluice.refresh_ahead"
CLEANUP_BATCH = 1000


class RefreshSettings(BaseSettings):
    """The beat's schedule and what counts as hot (env prefix ``SLUICE_REFRESH_``)."""

    model_config = SettingsConfigDict(env_prefix="SLUICE_REFRESH_", extra="forbid")

    def __init__(self, **values: Any) -> None:
        _refuse_unknown(values, os.environ)
        super().__init__(**values)

    interval: float = Field(default=60.0, gt=0, description="seconds between runs")
    window: float = Field(default=300.0, gt=0, description="refresh entries whose TTL ends within this")
    top: int = Field(default=100, ge=1, description="hottest entries considered per cache and run")
    caches: list[str] = Field(default_factory=lambda: ["default", "semantic"], description="cache names")
    decay: float = Field(default=0.5, gt=0, le=1, description="hit counts are multiplied by this each run")
    min_score: float = Field(
        default=0.5, ge=0, description="entries whose decayed count falls below are forgotten"
    )
    broker_url: str | None = Field(default=None, description="Celery broker (default: the sluice Redis)")


def _refuse_unknown(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """A misspelt refresh setting is refused with the nearest name, never silently ignored."""
    names = list(RefreshSettings.model_fields)
    problems = []
    for key in values:
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            problems.append(f"unknown setting {key!r}" + (f"; did you mean {near[0]!r}?" if near else ""))
    prefix = "SLUICE_REFRESH_"
    for var in sorted(environ):
        if var.upper().startswith(prefix) and var[len(prefix) :].lower() not in names:
            wanted = [prefix + n.upper() for n in names]
            near = difflib.get_close_matches(var.upper(), wanted, n=1)
            problems.append(f"unknown variable {var}" + (f"; did you mean {near[0]}?" if near else ""))
    if problems:
        raise ConfigError("refresh settings: " + "; ".join(problems) + f" (valid: {', '.join(names)})")


@dataclass
class RefreshReport:
    """What one run did for one cache."""

    cache: str
    considered: int = 0
    enqueued: list[str] = field(default_factory=list)
    already_claimed: int = 0
    unknown_model: int = 0
    forgotten: int = 0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _payload(source: Any, registry: ModelRegistry, cache: str) -> CacheWarmPayload | None:
    try:
        data = json.loads(source)
        llm_string, prompt = str(data["llm_string"]), str(data["prompt"])
    except (TypeError, ValueError, KeyError):
        return None
    model = registry.name_for(llm_string)
    if model is None:
        return None
    ttl = data.get("ttl")
    return CacheWarmPayload(
        model=model, llm_string=llm_string, prompts=[prompt], ttl=float(ttl) if ttl else None, cache=cache,
        embedder=data.get("embedder"),
    )  # fmt: skip


def refresh_ahead(
    redis: Any, keys: Keys, producer: Producer, registry: ModelRegistry, cache: str, refresh: RefreshSettings
) -> RefreshReport:
    """Enqueue refreshes of the hottest entries of `cache` that expire within `refresh.window`."""
    report = RefreshReport(cache)
    hits, sources = keys.cache_hits(cache), keys.cache_sources(cache)
    window_ms = int(refresh.window * 1000)
    with translate_errors("pick hot cache entries"):
        hot = [_text(m) for m, _ in redis.zrevrange(hits, 0, refresh.top - 1, withscores=True)]
        pipe = redis.pipeline(transaction=False)
        for member in hot:
            pipe.pttl(keys.cache_entry_of(cache, member))
        ttls = pipe.execute() if hot else []
        found = redis.hmget(sources, hot) if hot else []
    report.considered = len(hot)
    gone = [m for m, ttl in zip(hot, ttls, strict=True) if int(ttl) == -2]
    payloads: list[CacheWarmPayload] = []
    members: list[str] = []
    for member, ttl, source in zip(hot, ttls, found, strict=True):
        if not 0 < int(ttl) <= window_ms:
            continue
        payload = _payload(source, registry, cache)
        if payload is None:
            report.unknown_model += 1
            continue
        with translate_errors("claim a cache refresh"):
            claimed = redis.set(keys.cache_warming(cache, member), "1", nx=True, px=window_ms)
        if not claimed:
            report.already_claimed += 1
            continue
        payloads.append(payload)
        members.append(member)
    if payloads:
        producer.enqueue_many(payloads)
        report.enqueued = members
    report.forgotten = _age(redis, keys, cache, refresh, gone)
    return report


def _age(redis: Any, keys: Keys, cache: str, refresh: RefreshSettings, gone: list[str]) -> int:
    """Decay hit counts so hot means recently hot; forget cold entries and those no longer cached."""
    hits, sources = keys.cache_hits(cache), keys.cache_sources(cache)
    with translate_errors("age cache hit counts"):
        redis.zunionstore(hits, {hits: refresh.decay})
        cold = [
            _text(m) for m in redis.zrangebyscore(hits, "-inf", f"({refresh.min_score}", 0, CLEANUP_BATCH)
        ]
        forget = list(dict.fromkeys([*gone, *cold]))
        if forget:
            redis.zrem(hits, *forget)
            redis.hdel(sources, *forget)
    return len(forget)


def broker_url(settings: Settings, override: str | None = None) -> str:
    """A kombu broker URL for the sluice Redis (Celery's Redis transport cannot use a Cluster)."""
    if override:
        return override
    url = settings.redis.url.get_secret_value()
    spec = parse_url(url)
    if spec.mode == "cluster":
        raise ConfigError(
            "Celery's Redis broker cannot use a Redis Cluster; set SLUICE_REFRESH_BROKER_URL to a standalone Redis"
        )
    if spec.mode == "unix":
        return "redis+socket://" + url.split("://", 1)[1]
    if spec.mode == "sentinel":
        raise ConfigError(
            "give Celery its Sentinel broker explicitly: SLUICE_REFRESH_BROKER_URL="
            "'sentinel://host1:26379;sentinel://host2:26379' (and broker_transport_options master_name)"
        )
    return url


def make_app(settings: Settings | None = None, refresh: RefreshSettings | None = None) -> Celery:
    """The Celery app with the refresh-ahead task and its beat schedule (no I/O here)."""
    settings = settings or Settings()
    refresh = refresh or RefreshSettings()
    app = Celery("sluice", broker=broker_url(settings, refresh.broker_url))
    app.conf.update(
        task_default_queue=f"{settings.namespace}.celery",
        # Celery's own keys stay inside the namespace (ACL key patterns), and no pidbox pub/sub
        broker_transport_options={"global_keyprefix": f"{settings.namespace}:celery:"},
        worker_enable_remote_control=False,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "sluice-refresh-ahead": {
                "task": TASK,
                "schedule": refresh.interval,
                "options": {"expires": refresh.interval},
            }
        },
    )
    state: dict[str, Any] = {}

    def run_refresh() -> list[dict[str, Any]]:
        if not state:  # one connection, producer and model registry per Celery worker process
            state["redis"] = connect(settings.redis)
            state["producer"] = Producer(state["redis"], settings)
            state["registry"] = ModelRegistry(settings.models)
        keys = Keys(settings.namespace, settings.queue.partitions)
        reports = [
            refresh_ahead(state["redis"], keys, state["producer"], state["registry"], cache, refresh)
            for cache in refresh.caches
        ]
        for r in reports:
            log.info("refresh-ahead %s: %d hot, %d enqueued", r.cache, r.considered, len(r.enqueued))
        return [r.__dict__ for r in reports]

    app.task(name=TASK, shared=False)(run_refresh)
    return app


app = make_app()

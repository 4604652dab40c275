"""Settings: values built once (in `main()` or by the app) and passed down; never module globals.

Environment variables use the prefix `SLUICE_` and `__` for nesting, e.g. `SLUICE_REDIS__URL`,
`SLUICE_QUEUE__MAX_BACKLOG`, `SLUICE_WORKER__BATCH_SIZE`. Passwords are `SecretStr`: they never
appear in `repr()`, logs or error messages; nor do secret-looking embedder and model kwargs
(``api_key``, ``token``…, see `sluice.connection.secrecy.hide_secrets`).

An unknown key — a keyword argument, a nested dict key, a ``SLUICE_*`` variable or a key in its
JSON value — is refused with a `ConfigError` naming the nearest valid one (`sluice.setting_names`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sluice.connection.secrecy import hidden_values, hide_secrets, reveal_secrets
from sluice.setting_names import check_data, check_environment
from sluice.types import JOB_KINDS

Durability = Literal["none", "replicated", "fsync"]
FINITE = ConfigDict(allow_inf_nan=False)
"""Seconds and TTLs must be numbers: an infinite timeout is a hang, an infinite TTL overflows."""


class _Strict(BaseModel):
    """A settings section: a key it does not have is a `ConfigError` naming the nearest one."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        check_data(cls, data, cls.__name__)
        return data


class RedisSettings(_Strict):
    """How to reach Redis. The URL may carry a password; it is kept secret."""

    model_config = FINITE

    url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel:// or redis+cluster://",
    )
    username: str | None = Field(default=None, description="overrides the user in the URL")
    password: SecretStr | None = Field(default=None, description="overrides the password in the URL")
    sentinel_username: str | None = Field(default=None, description="user for the sentinels themselves")
    sentinel_password: SecretStr | None = Field(default=None, description="password for the sentinels")
    ssl_ca_certs: str | None = Field(default=None, description="CA bundle to verify the server (TLS)")
    ssl_certfile: str | None = Field(default=None, description="client certificate (mutual TLS)")
    ssl_keyfile: str | None = Field(default=None, description="client key (mutual TLS)")
    ssl_cert_reqs: Literal["required", "optional", "none"] = Field(
        default="required", description="TLS verification; keep `required` outside of tests"
    )
    ssl_check_hostname: bool = Field(default=True, description="check the server name in its certificate")
    socket_timeout: float = Field(default=5.0, gt=0, description="seconds to wait for a reply")
    socket_connect_timeout: float = Field(default=5.0, gt=0, description="seconds to connect")
    retries: int = Field(default=3, ge=0, description="retries of a failed command (with backoff)")
    retry_backoff_base: float = Field(default=0.05, gt=0, description="first backoff in seconds")
    retry_backoff_cap: float = Field(default=1.0, gt=0, description="largest backoff in seconds")
    max_connections: int = Field(default=64, ge=1, description="connection pool size per client")

    def __repr_args__(self) -> Any:  # the URL is secret, but host and port help debugging
        from sluice.connection.urls import redact_url

        for name, value in super().__repr_args__():
            yield (name, redact_url(value.get_secret_value()) if name == "url" else value)


class QueueSettings(_Strict):
    """The producer side of the job streams."""

    model_config = FINITE

    partitions: int = Field(default=4, ge=1, le=1024, description="partition streams per job kind")
    group: str = Field(default="workers", min_length=1, description="consumer group name")
    max_backlog: int = Field(
        default=100_000, ge=1, description="unprocessed jobs per stream before QueueFull"
    )
    backlog_policy: Literal["error", "wait"] = Field(
        default="error", description="on a full stream: raise QueueFull, or wait up to backlog_wait seconds"
    )
    backlog_wait: float = Field(default=10.0, ge=0, description="seconds to wait for room with policy=wait")
    durability: Durability = Field(
        default="none", description="none, replicated (WAIT for a replica) or fsync (WAITAOF, Redis >= 7.2)"
    )
    durability_timeout: float = Field(default=1.0, gt=0, description="seconds to wait for replica/fsync")
    wait_timeout: float = Field(default=10.0, gt=0, description="default read-your-writes wait, seconds")
    dedupe_window: float = Field(
        default=10.0,
        ge=0,
        description="seconds a job id is remembered, so a resent enqueue is not added twice (0 = off)",
    )
    enqueue_retries: int = Field(
        default=3,
        ge=0,
        description="resends of an enqueue that failed in transit (safe: deduplicated by job id)",
    )
    signal_ttl: float = Field(default=60.0, gt=0, description="seconds a job's applied-signal key lives")


class LimitSettings(_Strict):
    """Limits checked at enqueue; each error names the limit and the value."""

    max_payload_bytes: int = Field(default=1_048_576, ge=256, description="encoded job size")
    max_batch_jobs: int = Field(default=10_000, ge=1, description="jobs in one enqueue_many call")
    max_documents_per_job: int = Field(default=1_000, ge=1, description="documents in one index job")
    max_messages_per_job: int = Field(default=1_000, ge=1, description="messages in one history job")
    max_metadata_bytes: int = Field(default=65_536, ge=16, description="encoded metadata of one document")
    max_prompt_chars: int = Field(default=200_000, ge=1, description="characters of one prompt")


class WorkerSettings(_Strict):
    """The consumer side."""

    model_config = FINITE

    kinds: list[str] = Field(
        default_factory=lambda: [str(k) for k in JOB_KINDS], description="job kinds to consume"
    )
    processes: int = Field(default=1, ge=1, le=256, description="worker processes")
    concurrency: int = Field(default=1, ge=1, le=256, description="consumer threads per process")
    batch_size: int = Field(default=64, ge=1, le=10_000, description="entries per XREADGROUP")
    block_ms: int = Field(default=1_000, ge=1, description="XREADGROUP BLOCK milliseconds")
    visibility_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds an entry may stay unacknowledged before another worker takes it",
    )
    reclaim_interval: float = Field(default=1.0, gt=0, description="seconds between XAUTOCLAIM sweeps")
    max_deliveries: int = Field(default=5, ge=1, description="deliveries before an entry is dead-lettered")
    retry_backoff_base: float = Field(default=0.5, gt=0, description="first retry delay, seconds")
    retry_backoff_cap: float = Field(default=30.0, gt=0, description="largest retry delay, seconds")
    heartbeat_interval: float = Field(default=5.0, gt=0, description="seconds between heartbeats")
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Prometheus port (off if unset)"
    )
    dead_letter_maxlen: int = Field(default=100_000, ge=1, description="approximate cap of the DLQ stream")
    write_budget_ms: float = Field(
        default=2.0,
        gt=0,
        description=(
            "milliseconds one write pipeline may take: Redis serves nobody else meanwhile, so "
            "small pipelines keep the apps' lookups fast while workers index"
        ),
    )


class GovernorSettings(_Strict):
    """The governor of the server time workers take (DESIGN rule 7, `sluice_workers.runtime.governor`).

    Workers share Redis's one main thread with the apps. Every vector write pipeline asks a token
    bucket of server-milliseconds kept in Redis (shared by all worker processes) before it runs and
    pays what it measured after; the bucket refills at `duty_cycle` of wall time. The facades publish
    their lookup p99 (`report_interval`); while it exceeds `foreground_ratio` x its idle p99 the
    rate halves, and it climbs back by `increase` per report. With no reports (no readers) the rate
    is `duty_cycle`.
    """

    model_config = FINITE

    enabled: bool = Field(default=True, description="pace vector writes through the shared bucket")
    duty_cycle: float = Field(
        default=0.5, gt=0, le=1, description="largest share of wall time the workers together keep Redis busy"
    )
    burst_ms: float = Field(
        default=20.0, gt=0, description="server-milliseconds the workers may take at once above the rate"
    )
    foreground_ratio: float = Field(
        default=2.0,
        gt=1,
        description="back off while the apps' lookup p99 is above this multiple of its idle p99",
    )
    decrease: float = Field(default=0.5, gt=0, lt=1, description="multiplier of the rate on a backoff")
    increase: float = Field(
        default=0.05, gt=0, le=1, description="share of wall time added to the rate per good report"
    )
    min_duty: float = Field(default=0.05, gt=0, le=1, description="the rate never falls below this share")
    report_foreground: bool = Field(
        default=True, description="facades time their lookups and publish the p99 for the workers"
    )
    report_interval: float = Field(
        default=0.5, gt=0, description="seconds between an app's lookup-latency reports"
    )
    report_min_lookups: int = Field(
        default=50, ge=1, description="lookups of one kind a report needs before its p99 counts"
    )


class VectorSettings(_Strict):
    """Vector indexes (`sluice.vectors`): how long write-side markers live, how often readers re-check."""

    model_config = FINITE

    tombstone_ttl: float = Field(
        default=86_400.0,
        ge=0,
        description="seconds a delete's tombstone is kept, so an older upsert arriving late cannot bring the "
        "document back (0 = keep forever)",
    )
    embeddings_cache_ttl: float = Field(
        default=7 * 86_400.0,
        ge=0,
        description="seconds a computed embedding stays cached (re-indexing unchanged text within it makes "
        "no embeddings call; 0 = never expire)",
    )
    meta_refresh: float = Field(
        default=1.0,
        gt=0,
        description="seconds a vector store trusts the index metadata it read before reading it again "
        "(how soon it follows a `sluice index migrate` switch)",
    )
    switch_grace: float = Field(
        default=5.0,
        gt=0,
        description="seconds `sluice index migrate` keeps the old generation readable after the switch; "
        "must exceed meta_refresh, so every vector store has moved on before it is dropped",
    )


class ComponentSpec(_Strict):
    """A model or embedder named in settings: import path plus keyword arguments.

    Only settings name import paths; job payloads and stored values carry the *name*. Secret-looking
    kwargs (``api_key``, ``token``, ``password``…) are kept as `Hidden` strings, shown as
    ``**********`` everywhere; `revealed_kwargs()` is what the constructor gets.
    """

    import_path: str = Field(description="module:attribute of a class or factory")
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the constructor; secret-looking ones are hidden",
    )
    rate_limit: float | None = Field(default=None, gt=0, description="calls per second (models)")

    @model_validator(mode="before")
    @classmethod
    def _hide_secrets(cls, data: Any) -> Any:
        # before any other validation, so even an error about this spec shows no secret
        if isinstance(data, Mapping) and isinstance(data.get("kwargs"), Mapping):
            return {**data, "kwargs": hide_secrets(data["kwargs"])}
        return data

    def revealed_kwargs(self) -> dict[str, Any]:
        """The kwargs with their secrets, for calling the constructor; never log or print them."""
        revealed: dict[str, Any] = reveal_secrets(self.kwargs)
        return revealed

    @field_validator("import_path")
    @classmethod
    def _has_colon(cls, value: str) -> str:
        if ":" not in value or value.startswith(":") or value.endswith(":"):
            raise ValueError("import_path must look like 'package.module:Name'")
        return value


class DashboardSettings(_Strict):
    """`sluice dashboard`: the operators' web page. Loopback by default; actions need a CSRF token."""

    host: str = Field(default="127.0.0.1", description="address to bind; keep loopback unless a token is set")
    port: int = Field(default=8470, ge=0, le=65535, description="port to serve on (0 = a free one)")
    read_only: bool = Field(default=False, description="refuse retry/purge of dead letters (server-side)")
    token: SecretStr | None = Field(
        default=None, description="required when set: `Authorization: Bearer <token>`, or basic auth password"
    )
    username: str = Field(default="sluice", min_length=1, description="basic-auth user name (with token)")
    refresh_seconds: float = Field(default=5.0, ge=1, description="how often the page refreshes itself")
    caches: list[str] = Field(default_factory=lambda: ["default"], description="LLM cache names to show")
    indexes: list[str] = Field(
        default_factory=list, description="vector index names to show besides those RediSearch lists"
    )
    metrics_urls: list[str] = Field(
        default_factory=list, description="worker Prometheus endpoints to read latency from (optional)"
    )


def _default_embedders() -> dict[str, ComponentSpec]:
    return {
        "hashing": ComponentSpec(import_path="sluice.embeddings.hashing:HashingEmbeddings"),
    }


def _default_models() -> dict[str, ComponentSpec]:
    return {"fake": ComponentSpec(import_path="sluice.models.fake:EchoChatModel")}


class Settings(BaseSettings):
    """Everything sluice reads from the environment (prefix SLUICE_, nested with __)."""

    model_config = SettingsConfigDict(
        env_prefix="SLUICE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    namespace: str = Field(default="sluice", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="key prefix")
    redis: RedisSettings = Field(default_factory=RedisSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    governor: GovernorSettings = Field(default_factory=GovernorSettings)
    embedders: dict[str, ComponentSpec] = Field(default_factory=_default_embedders)
    models: dict[str, ComponentSpec] = Field(default_factory=_default_models)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    def secret_values(self) -> list[str]:
        """Every secret these settings hold (passwords, the URL's password, tokens, secret kwargs of
        models and embedders), for scrubbing text that may quote one: an error a model raised, a
        dead-letter reason."""
        found = hidden_values([spec.kwargs for spec in (*self.embedders.values(), *self.models.values())])
        url = self.redis.url.get_secret_value()
        rest = url.partition("://")[2]
        if "@" in rest:
            found += [p for p in (rest[: rest.rfind("@")].partition(":")[2],) if p]
        found += [s.get_secret_value() for s in (self.redis.password, self.redis.sentinel_password) if s]
        found += [self.dashboard.token.get_secret_value()] if self.dashboard.token else []
        found += [unquote(f) for f in found]
        return [f for f in dict.fromkeys(found) if len(f) >= 4]  # shorter ones would scrub common words

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Refuse unknown names before reading values, saying where each came from.

        pydantic-settings skips a ``SLUICE_*`` variable that names no field, so they are checked here.
        """
        if isinstance(init_settings, InitSettingsSource):
            check_data(settings_cls, init_settings.init_kwargs, "Settings() arguments")
        if isinstance(dotenv_settings, DotEnvSettingsSource) and dotenv_settings.env_vars:
            check_environment(settings_cls, dotenv_settings.env_vars, f"env file {dotenv_settings.env_file}")
        if isinstance(env_settings, EnvSettingsSource):
            check_environment(settings_cls, os.environ, "environment")
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        check_data(cls, data, "settings")
        return data

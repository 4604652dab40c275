"""Job models: a versioned envelope around one payload per job kind.

The envelope never carries code: models and embedders are referred to by *name*, resolved by
the worker from its own settings. A job's version is its stream entry id, assigned by Redis;
a cache-warm job carries its version instead (`CacheWarmPayload.version`).

`targets()` lists every key a payload writes and `target_key()` routes it (the first target):
all targets of one job must lie in one partition (`sluice.queue.plan` refuses others), so every
write to a key is versioned by entry ids of one stream (DESIGN rule 2).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from sluice.keys import digest
from sluice.models.prompts import key_prompt

ENVELOPE_VERSION: Final = 1
MAX_VECTOR_DIMS: Final = 8192
"""Largest vector a job may carry (OpenAI's largest embeddings have 3072 dimensions)."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    # NaN / infinity encode as the bare tokens (invalid JSON), not as null: the producer refuses a
    # job whose bytes hold one, so a value is never silently altered (sluice.queue.plan)
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")


class CacheFillPayload(_Model):
    """A computed LLM answer to store: exact entry, and a semantic entry when `vector` or `embedder` is set.

    `vector` is the prompt's embedding as the app computed it (at the lookup before the fill): the
    worker stores it as it is. Only without one does the worker embed, with the settings `embedder`.
    """

    kind: Literal["cache-fill"] = "cache-fill"
    llm_string: str
    prompt: str
    generations: list[dict[str, Any]] = Field(description="generations as sluice.stores.generations dicts")
    ttl: float | None = Field(default=None, gt=0, description="seconds; None keeps the entry")
    cache: str = Field(default="default", description="cache name inside the namespace")
    embedder: str | None = Field(default=None, description="settings name of the semantic cache embedder")
    vector: list[FiniteFloat] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_VECTOR_DIMS,
        description="the app's embedding of the prompt's text: stored as given, never re-embedded",
    )

    def target_key(self) -> str:
        return f"cache:{self.cache}:{digest(self.llm_string)}:{digest(self.prompt)}"

    def targets(self) -> list[str]:
        return [self.target_key()]


class CacheWarmPayload(_Model):
    """Prompts to answer with a model named in the worker's settings, then store as cache fills."""

    kind: Literal["cache-warm"] = "cache-warm"
    model: str = Field(description="settings name of the model")
    llm_string: str = Field(description="the llm_string the answers are cached under")
    prompts: list[str] = Field(min_length=1)
    ttl: float | None = Field(default=None, gt=0)
    cache: str = "default"
    embedder: str | None = None
    version: str | None = Field(
        default=None,
        pattern=r"^\d{1,20}-\d{1,20}$",
        description="entry id reserved at enqueue in the cache-fill stream of the prompts' partition "
        "(set by the producer): the version the answers are written with, so they are ordered with "
        "the fills of the same keys by enqueue time",
    )

    def target_key(self) -> str:
        return self.targets()[0]

    def targets(self) -> list[str]:
        """The cache entries this job fills: `CacheFillPayload.target_key` of each answer."""
        hl = digest(self.llm_string)
        return [f"cache:{self.cache}:{hl}:{digest(key_prompt(p))}" for p in self.prompts]


class IndexDocument(_Model):
    id: str = Field(min_length=1)
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    vector: list[float] | None = Field(default=None, description="precomputed embedding; skips the embedder")
    version: str | None = Field(
        default=None,
        pattern=r"^\d{18}-\d{10}$",
        description="a migration's copy: the source document's padded version, written instead of the job's",
    )


class IndexPayload(_Model):
    """Upserts and deletes for one vector index; all documents of one job share a partition."""

    kind: Literal["index"] = "index"
    index: str = Field(min_length=1)
    upserts: list[IndexDocument] = Field(default_factory=list)
    deletes: list[str] = Field(default_factory=list)
    embedder: str | None = None
    generation: int | None = Field(
        default=None,
        ge=1,
        description="write only this generation (a migration's backfill); None = all written",
    )

    def target_key(self) -> str:
        first = self.upserts[0].id if self.upserts else (self.deletes[0] if self.deletes else "")
        return f"index:{self.index}:{first}"

    def targets(self) -> list[str]:
        ids = [d.id for d in self.upserts] + self.deletes
        return [f"index:{self.index}:{i}" for i in ids] if ids else [self.target_key()]


class HistoryAppendPayload(_Model):
    """Messages to append to one session (in order), or a clear or delete of that session."""

    kind: Literal["history-append"] = "history-append"
    session_id: str = Field(min_length=1)
    op: Literal["append", "clear", "delete"] = "append"
    messages: list[dict[str, Any]] = Field(default_factory=list, description="LangChain message dicts")
    ttl: float | None = Field(default=None, gt=0, description="seconds; refreshed on every write")
    max_messages: int | None = Field(default=None, ge=1)
    embedder: str | None = Field(default=None, description="index messages for semantic recall")

    def target_key(self) -> str:
        return self.target_of(self.session_id)

    @staticmethod
    def target_of(session_id: str) -> str:
        """A session's target key (its partition, and its pending set for readers)."""
        return f"history:{session_id}"

    def targets(self) -> list[str]:
        return [self.target_key()]


class CheckpointPayload(_Model):
    """One LangGraph checkpointer write to one thread: a checkpoint (with the blobs of its new channel
    versions), a task's writes, or a deletion or pruning of the thread. Values arrive serialised by
    the app (LangGraph's serializer); the worker stores their bytes and never decodes them."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    kind: Literal["checkpoint"] = "checkpoint"
    thread_id: str = Field(min_length=1)
    op: Literal["put", "writes", "delete", "prune", "delete-runs"] = "put"
    ns: str = Field(default="", description="checkpoint namespace ('' = the root graph)")
    checkpoint_id: str = ""
    record: str = Field(
        default="", description="put: the checkpoint record (JSON, built by sluice.stores.checkpoints)"
    )
    blobs: list[tuple[str, str, str, bytes]] = Field(
        default_factory=list, description="put: (channel, channel version, serializer type, bytes)"
    )
    task_id: str = ""
    task_path: str = ""
    writes: list[tuple[int, str, str, bytes]] = Field(
        default_factory=list, description="writes: (index, channel, serializer type, bytes)"
    )
    run_id: str = Field(default="", description="put: the run that made the checkpoint (metadata run_id)")
    run_ids: list[str] = Field(default_factory=list, description="delete-runs: the runs to delete")
    ttl: float | None = Field(default=None, gt=0, description="seconds; refreshed on every write")

    def target_key(self) -> str:
        return f"checkpoint:{self.thread_id}"

    def targets(self) -> list[str]:
        return [self.target_key()]


class StorePayload(_Model):
    """A LangGraph store put or delete of one item. Texts to embed come extracted by the app (the
    item's indexed fields); the worker embeds them with the settings embedder `embedder`, unless
    the app sent their vectors."""

    kind: Literal["store"] = "store"
    namespace: list[str] = Field(min_length=1, description="namespace labels")
    key: str
    op: Literal["put", "delete"] = "put"
    value: dict[str, Any] | None = None
    ttl: float | None = Field(default=None, gt=0, description="seconds; refreshed on reads that ask")
    texts: list[tuple[str, str]] = Field(default_factory=list, description="(field path, text) to embed")
    vectors: list[tuple[str, list[float]]] = Field(
        default_factory=list, description="(field path, vector) the app embedded"
    )
    embedder: str | None = Field(default=None, description="settings name of the embedder for `texts`")

    def target_key(self) -> str:
        """A namespace's items share a partition (and a pending set): one per namespace."""
        return "store:" + "\x1f".join(self.namespace)

    def targets(self) -> list[str]:
        return [self.target_key()]


Payload = Annotated[
    CacheFillPayload
    | CacheWarmPayload
    | IndexPayload
    | HistoryAppendPayload
    | CheckpointPayload
    | StorePayload,
    Field(discriminator="kind"),
]


class JobEnvelope(_Model):
    """What travels on the stream: envelope fields plus the payload."""

    v: Literal[1] = 1  # ENVELOPE_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="job id (not the version)")
    namespace: str
    created: float = Field(default_factory=time.time)
    attempt: int = Field(default=0, ge=0)
    trace: dict[str, str] | None = None
    notify: bool = Field(default=False, description="worker signals the waiter when applied")
    origin: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
        description="entry id of the job's first enqueue, set when a dead letter is retried: the "
        "job keeps that version, so a retry of an applied job has no second effect",
    )
    payload: Payload

    @property
    def kind(self) -> str:
        return self.payload.kind

    def target_key(self) -> str:
        return self.payload.target_key()

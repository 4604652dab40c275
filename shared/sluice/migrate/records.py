"""What the migration readers yield: one typed record per source entry (no I/O here).

A record keeps the source key it came from (for reports) and the remaining TTL of that key in
seconds (None: the key does not expire), so a migrated entry expires when the original would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from langchain_core.messages import BaseMessage
from langchain_core.outputs import Generation

from sluice.errors import ConfigError

SourceName = Literal["langchain-community", "langchain-redis", "redisvl"]
What = Literal["cache", "semantic-cache", "vectors", "history"]
SOURCES: Final[tuple[SourceName, ...]] = ("langchain-community", "langchain-redis", "redisvl")
WHATS: Final[tuple[What, ...]] = ("cache", "semantic-cache", "vectors", "history")


class SourceError(ConfigError):
    """The source data cannot be read as asked (no such index, unknown layout); the message says why."""


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """An exact LLM cache entry. Hashed layouts keep no prompt: `prompt` is then the source's
    digest and `llm_string` a marker of `sluice.migrate.legacy`."""

    key: str
    prompt: str
    llm_string: str
    generations: list[Generation]
    ttl: float | None


@dataclass(frozen=True, slots=True)
class SemanticRecord:
    """A semantic cache entry: the prompt, its model, the answer and the stored prompt vector."""

    key: str
    prompt: str
    llm_string: str
    generations: list[Generation]
    vector: list[float] | None
    ttl: float | None


@dataclass(frozen=True, slots=True)
class VectorRecord:
    """One document of a vector index: id (the key without the index prefix), text, metadata, vector."""

    key: str
    id: str
    text: str
    metadata: dict[str, Any]
    vector: list[float] | None


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One conversation, its messages oldest first."""

    key: str
    session_id: str
    messages: list[BaseMessage]
    ttl: float | None


Record = CacheRecord | SemanticRecord | VectorRecord | HistoryRecord


@dataclass(frozen=True, slots=True)
class VectorSpec:
    """The source's vector field as RediSearch describes it (FT.INFO), plus the fields filters use.

    `metric`, `algorithm` and `dtype` are RediSearch's words (``COSINE``, ``FLAT``, ``FLOAT32``).
    """

    dims: int
    metric: str
    algorithm: str
    dtype: str
    text_field: str = "text"
    fields: tuple[tuple[str, str, str], ...] = field(default=())
    """(name, type, tag separator) of each filterable source field: type is tag, numeric or text."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A source key that matched the layout's pattern but is not one of its entries, and why."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class Options:
    """Where the source data is, beyond each layout's defaults (the `sluice migrate` flags)."""

    source_prefix: str | None = None
    index: str | None = None
    text_field: str | None = None
    llm_string: str = ""

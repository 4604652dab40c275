"""LangGraph store operations <-> store jobs and stored items: no I/O, one copy for the sync and
asyncio shells of `sluice.facade.store`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import Item, MatchCondition, PutOp, SearchItem
from langgraph.store.base.embed import get_text_at_path, tokenize_path

from sluice.errors import ConfigError
from sluice.jobs.models import StorePayload
from sluice.stores.items import StoredItem, encode_namespace


def target(namespace: Sequence[str]) -> str:
    """A namespace's jobs' target key: their partition, and their pending set."""
    return StorePayload(namespace=list(namespace), key="").target_key()


@dataclass(frozen=True, slots=True)
class Fields:
    """Which fields of an item are embedded: `$` (the whole value) or LangGraph field paths."""

    paths: tuple[tuple[str, str | list[str]], ...]

    @classmethod
    def of(cls, paths: Sequence[str] | None) -> Fields:
        return cls(tuple((p, p if p == "$" else tokenize_path(p)) for p in (paths or ["$"])))

    def texts(self, value: dict[str, Any]) -> list[tuple[str, str]]:
        """(path, text) of every text to embed, named as LangGraph's InMemoryStore names them."""
        out: list[tuple[str, str]] = []
        for path, tokens in self.paths:
            texts = get_text_at_path(value, tokens)
            if len(texts) > 1:
                out += [(f"{path}.{i}", t) for i, t in enumerate(texts)]
            elif texts:
                out.append((path, texts[0]))
        return out


def checked_value(op: PutOp) -> dict[str, Any]:
    value = dict(op.value or {})
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"a store item's value must be JSON (str, numbers, bool, None, lists, dicts): {e}"
        ) from None
    return value


def delete_payload(op: PutOp) -> StorePayload:
    return StorePayload(namespace=list(op.namespace), key=op.key, op="delete")


def put_payload(
    op: PutOp,
    value: dict[str, Any],
    texts: list[tuple[str, str]],
    vectors: list[list[float]] | None,
    embedder: str | None,
) -> StorePayload:
    """A put; `vectors` (one per text) when the app embedded, else the texts for `embedder`."""
    ttl = op.ttl * 60 if op.ttl else None  # LangGraph's TTLs are in minutes
    if vectors is not None:
        return StorePayload(
            namespace=list(op.namespace),
            key=op.key,
            value=value,
            ttl=ttl,
            vectors=[(path, list(map(float, v))) for (path, _), v in zip(texts, vectors, strict=True)],
        )
    return StorePayload(
        namespace=list(op.namespace),
        key=op.key,
        value=value,
        ttl=ttl,
        texts=texts,
        embedder=embedder if texts else None,
    )


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_item(stored: StoredItem) -> Item:
    return Item(
        value=stored.value,
        key=stored.key,
        namespace=stored.namespace,
        created_at=_when(stored.created_ms),
        updated_at=_when(stored.updated_ms),
    )


def to_search_item(stored: StoredItem) -> SearchItem:
    return SearchItem(
        namespace=stored.namespace,
        key=stored.key,
        value=stored.value,
        created_at=_when(stored.created_ms),
        updated_at=_when(stored.updated_ms),
        score=stored.score,
    )


def newest_first(items: Iterable[StoredItem]) -> list[StoredItem]:
    ordered = sorted(items, key=lambda s: (s.namespace, s.key))
    return sorted(ordered, key=lambda s: s.version, reverse=True)  # stable: ties keep (namespace, key)


def best_first(items: Iterable[StoredItem]) -> list[StoredItem]:
    return sorted(items, key=lambda s: (-(s.score or 0.0), s.namespace, s.key))


def matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """As LangGraph's InMemoryStore matches a namespace (`*` matches any one label)."""
    path = condition.path
    if len(namespace) < len(path):
        return False
    pairs = zip(namespace, path, strict=False)
    if condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    return all(p in ("*", n) for n, p in pairs)


def literal_prefix(conditions: Sequence[MatchCondition] | None) -> tuple[str, ...]:
    """The labels every listed namespace starts with (up to the first wildcard of a prefix condition)."""
    best: tuple[str, ...] = ()
    for c in conditions or ():
        if c.match_type != "prefix":
            continue
        labels = []
        for label in c.path:
            if label == "*":
                break
            labels.append(label)
        if len(labels) > len(best):
            best = tuple(labels)
    return best


def encoded(namespace: Sequence[str]) -> str:
    try:
        return encode_namespace(namespace)
    except ValueError as e:
        raise ConfigError(str(e)) from None

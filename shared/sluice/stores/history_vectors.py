"""Semantic recall over conversations, built on `sluice.vectors`.

One vector index per embedder, ``history.<embedder>``, holds one document per appended message
that has text: id ``<ref>:<session>`` (``ref`` = ``<padded version>:<position>``, the message's
identity in its session), text = the message's text, tag fields ``session`` (a digest of the id)
and ``type``. The
worker embeds and writes them after the conversation write, at the job's version, so a
redelivered append rewrites the same documents and a message trimmed or cleared by a later job
(whose delete carries the later version) is never brought back.

The conversation stays the source of truth: a recall looks the nearest documents up in their
sessions (one round trip) and drops those whose message is gone (trimmed, cleared, expired),
so a stale vector can cost a candidate, never return a message that no longer exists.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.exceptions as rex
from langchain_core.messages import BaseMessage, messages_from_dict

from sluice.errors import ConfigError, InvalidArgument, PermanentJobError, RetryableJobError, StoreCorrupted
from sluice.keys import Keys, digest
from sluice.stores.history import REF_WIDTH, find_call, parse
from sluice.transport.runner import Call, Plan
from sluice.vectors.backend import check
from sluice.vectors.documents import DocWrite, Hit
from sluice.vectors.filters import Filter, Tag
from sluice.vectors.manager import make_backend
from sluice.vectors.meta import INDEX_NAME, IndexMeta
from sluice.vectors.schema import IndexSchema, MetadataField, VectorField
from sluice.vectors.writer import VectorWriter

INDEX_PREFIX: Final = "history."
SESSION_FIELD: Final = "session"
TYPE_FIELD: Final = "type"
"""Vector writes per pipeline: HNSW inserts run on Redis's one thread, beside the apps' reads."""


def index_name(embedder: str) -> str:
    """``history.<embedder>`` (a digest when the name does not fit an index name)."""
    name = INDEX_PREFIX + embedder
    return name if re.match(INDEX_NAME, name) else INDEX_PREFIX + digest(embedder)[:16]


def recall_schema(dims: int) -> IndexSchema:
    return IndexSchema(
        text_field="text",
        vector=VectorField(dims=dims, metric="cosine", ef_runtime=100),
        metadata=(MetadataField(name=SESSION_FIELD, type="tag"), MetadataField(name=TYPE_FIELD, type="tag")),
    )


def doc_id(session_id: str, ref: str) -> str:
    return f"{ref}:{session_id}"


def split_doc_id(value: str) -> tuple[str, str]:
    """(session, ref) of a document id."""
    return value[REF_WIDTH + 1 :], value[:REF_WIDTH]


def session_tag(session_id: str) -> str:
    """The tag a session's documents carry: a digest, since an id may hold any character (even
    RediSearch's tag separator); the id itself is read back from the document id."""
    return digest(session_id)


def session_filter(sessions: str | Sequence[str] | None) -> Filter | None:
    if sessions is None:
        return None
    wanted = [session_tag(s) for s in ([sessions] if isinstance(sessions, str) else sessions)]
    if not wanted:
        raise InvalidArgument("give at least one session id, or None for all sessions")
    return Tag(SESSION_FIELD) == (wanted[0] if len(wanted) == 1 else wanted)


def message_text(message: dict[str, Any]) -> str:
    """The text a message is recalled by ('' for one without text, e.g. tool calls only)."""
    try:
        return str(messages_from_dict([message])[0].text).strip()
    except (ValueError, KeyError, TypeError):
        return ""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message the conversation kept, to embed and index (`owner` = position of its job in the batch)."""

    index: str
    session_id: str
    ref: str
    version: str  # padded
    text: str
    type: str
    owner: int


@dataclass(frozen=True, slots=True)
class GoneMessage:
    """A message that left its conversation; its vector is deleted at `version`."""

    index: str
    session_id: str
    ref: str
    version: str  # padded, newer than the document's
    owner: int = -1


@dataclass(frozen=True, slots=True)
class Recalled:
    """A past message found by similarity, with its session and cosine distance."""

    session_id: str
    message: BaseMessage
    distance: float


def recall(keys: Keys, hits: Sequence[Hit], k: int) -> Plan[list[Recalled]]:
    """The hits' messages as their conversations hold them now (gone ones skipped), nearest first."""
    if not hits:
        return []
    parts = [split_doc_id(h.doc_id) for h in hits]
    replies = yield [find_call(keys, session, ref) for session, ref in parts]
    out: list[Recalled] = []
    for (session, _), hit, reply in zip(parts, hits, replies, strict=True):
        found = check(reply, f"read conversation {session!r}")
        if found:
            [message] = parse(found, keys.history(session))
            out.append(Recalled(session, message, hit.distance))
    return out[:k]


class HistoryVectors(VectorWriter):
    """Worker side: embed the kept messages of a batch and write or delete their vectors."""

    def apply(self, new: Sequence[NewMessage], gone: Sequence[GoneMessage]) -> dict[int, BaseException]:
        """Write vectors for `new`, delete those of `gone`; failures by owner (a job's position)."""
        failures: dict[int, BaseException] = {}
        metas = self._metas({m.index for m in new} | {g.index for g in gone})
        writes: list[tuple[IndexMeta, DocWrite, int]] = []
        for g in gone:
            meta = metas.get(g.index)
            if meta is not None:
                writes.append((meta, DocWrite(doc_id(g.session_id, g.ref), g.version, "delete"), g.owner))
        by_index: dict[str, list[NewMessage]] = defaultdict(list)
        found: dict[str, IndexMeta] = {}
        for m in new:
            known = metas.get(m.index)
            if known is None:
                failures[m.owner] = PermanentJobError(
                    f"semantic history index {m.index!r} does not exist (dropped?); the app's "
                    "client.chat_history(..., embedder=...) creates it on first use"
                )
            else:
                found[m.index] = known
                by_index[m.index].append(m)
        for index, items in by_index.items():
            meta = found[index]
            try:
                vectors = self._embed(meta, [m.text for m in items])
            except (PermanentJobError, RetryableJobError) as e:
                failures.update(dict.fromkeys((m.owner for m in items), e))
                continue
            for m, vector in zip(items, vectors, strict=True):
                metadata = {SESSION_FIELD: session_tag(m.session_id), TYPE_FIELD: m.type}
                doc = DocWrite(doc_id(m.session_id, m.ref), m.version, "upsert", m.text, metadata, vector)
                writes.append((meta, doc, m.owner))
        self._write(writes, failures)
        return failures

    def _write(
        self, writes: Sequence[tuple[IndexMeta, DocWrite, int]], failures: dict[int, BaseException]
    ) -> None:
        calls: list[Call] = []
        owners: list[int] = []
        for meta, doc, owner in writes:
            backend = make_backend(meta.backend, self.keys, [""])
            for generation in meta.writing:
                made = backend.write_calls(meta, generation, [doc], self.tombstone_ttl_ms)
                calls += made
                owners += [owner] * len(made)
        for owner, reply in zip(owners, self.send(calls), strict=True):
            if isinstance(reply, rex.ResponseError) and owner not in failures:
                failures[owner] = RetryableJobError(f"semantic history write failed: {reply}")

    def _metas(self, indexes: set[str]) -> dict[str, IndexMeta | None]:
        names = sorted(indexes)
        keys = [self.keys.vector_meta(n) for n in names]
        out: dict[str, IndexMeta | None] = {}
        for name, key, raw in zip(
            names, keys, self.runner.run([Call(("GET", k), route=k) for k in keys]), strict=True
        ):
            if isinstance(raw, rex.ResponseError):
                raise StoreCorrupted(f"{key}: {raw}; delete that key")
            out[name] = IndexMeta.decode(raw, key) if raw else None
        return out

    def _embed(self, meta: IndexMeta, texts: Sequence[str]) -> list[list[float]]:
        name = meta.embedder or ""
        try:
            embedder = self.registry.get(name)
            fingerprint = self.registry.fingerprint(name)
        except ConfigError as e:
            raise PermanentJobError(f"semantic history index {meta.index!r}: {e}") from None
        try:
            vectors = self.embeddings.embed(fingerprint, embedder, texts)
        except Exception as e:  # the embedder's own errors: a model or network hiccup is worth a retry
            raise RetryableJobError(f"embedder {name!r} failed: {type(e).__name__}: {e}") from e
        dims = meta.index_schema.vector.dims
        if any(len(v) != dims for v in vectors):
            raise PermanentJobError(
                f"embedder {name!r} gives vectors of another size than index {meta.index!r} ({dims}); "
                "the index was built with another embedder configuration"
            )
        return vectors

"""A migration run: survey the source, decide copy or re-embed, enqueue jobs, follow them to applied.

Two passes over the source. The survey (all `--dry-run` does) counts entries, notes those that
cannot be read, and samples stored vectors to decide whether they can be copied (`fit`). The
run creates the target, then reads the source again in batches, enqueues each batch through
the normal producer and tracks every job in the consumer group until it is applied or
dead-lettered (`Applied`, the state `wait()` reads). Nothing is written to the source keys.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sluice.embeddings.registry import EmbedderRegistry
from sluice.migrate import fit, plan, targets
from sluice.migrate.records import (
    CacheRecord,
    HistoryRecord,
    Record,
    SemanticRecord,
    Skipped,
    SourceError,
    VectorRecord,
)
from sluice.migrate.sources import Source
from sluice.queue.progress import Applied
from sluice.transport.translate import translate_errors
from sluice.vectors.schema import IndexSchema

if TYPE_CHECKING:
    from sluice.facade.client import Client
    from sluice.jobs.models import Payload
    from sluice.types import StreamEntryRef

UNITS = {"cache": "entries", "semantic-cache": "entries", "vectors": "documents", "history": "messages"}


@dataclass
class Survey:
    records: int = 0
    items: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    uncopyable: int = 0
    samples: list[tuple[str, list[float]]] = field(default_factory=list)


@dataclass
class Decision:
    """What the run does: the target, whether vectors are copied, and the lines that say so."""

    target: str
    copy: bool = False
    embedder: targets.Embedder | None = None
    schema: IndexSchema | None = None
    lines: list[str] = field(default_factory=list)
    blocked: str | None = None
    """Why the run cannot go ahead as asked (re-embedding needed without --re-embed)."""


@dataclass
class Report:
    jobs: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    trackers: dict[str, Applied] = field(default_factory=dict)
    kept: int = 0
    finished: bool = False

    def bar(self, unit: str, width: int = 30) -> str:
        total = sum(t.total_units for t in self.trackers.values())
        applied = sum(t.applied_units for t in self.trackers.values())
        failed = sum(t.failed_units for t in self.trackers.values())
        filled = int(width * (applied + failed) / total) if total else width
        return f"[{'#' * filled}{'.' * (width - filled)}] {applied}/{total} {unit} applied, {failed} failed"

    def failures(self) -> dict[StreamEntryRef, str]:
        return {ref: why for t in self.trackers.values() for ref, why in t.failed.items()}


class Migration:
    def __init__(
        self,
        client: Client,
        source: Source,
        what: str,
        *,
        target: str | None = None,
        embedder: str | None = None,
        re_embed: bool = False,
        replace: bool = False,
        batch: int = 500,
    ) -> None:
        self.client, self.source, self.what = client, source, what
        self.target, self.embedder_name = target, embedder
        self.re_embed, self.replace, self.batch = re_embed, replace, max(1, batch)
        self.unit = UNITS[what]

    # --- pass 1 ------------------------------------------------------------------------------------
    def survey(self) -> Survey:
        s = Survey()
        for record in self.source.records():
            if isinstance(record, Skipped):
                s.skipped.append(record)
                continue
            s.records += 1
            s.items += len(record.messages) if isinstance(record, HistoryRecord) else 1
            if isinstance(record, SemanticRecord | VectorRecord):
                ok = (
                    plan.copyable(record) if isinstance(record, SemanticRecord) else record.vector is not None
                )
                s.uncopyable += 0 if ok else 1
                if ok and record.vector is not None and len(s.samples) < fit.SAMPLE:
                    s.samples.append(
                        (record.prompt if isinstance(record, SemanticRecord) else record.text, record.vector)
                    )
        return s

    def decide(self, survey: Survey) -> Decision:
        """The target and copy-or-embed; `blocked` says so when re-embedding is needed but not asked for."""
        target = self.target or self.source.default_target or "default"
        if self.what == "cache":
            return Decision(target, lines=[f"into LLM cache {target!r}"])
        if self.what == "history":
            return Decision("", lines=["into sluice conversations (same session ids)"])
        if self.what == "semantic-cache":
            emb = targets.embedder(self.client, self.embedder_name, required=True)
            assert emb is not None
            found = fit.check(
                self.source.vectors, emb.dims(), "cosine", survey.samples, emb.embeddings, emb.name
            )
            d = Decision(target, copy=found.copy, embedder=emb)
            d.lines.append(f"into semantic cache {d.target!r}, embedder {emb.name!r}")
            return self._vectors_verdict(d, found, survey)
        return self._vector_target(survey, target)

    def _vector_target(self, survey: Survey, name: str) -> Decision:
        spec = self.source.vectors
        assert spec is not None
        # re-embedding needs a settings embedder, and then copied vectors must match it too
        emb = targets.embedder(self.client, self.embedder_name, required=self.re_embed)
        meta = targets.existing_index(self.client, name)
        schema = meta.index_schema if meta else targets.derived_schema(spec, spec.dims)
        found = fit.check(spec, schema.vector.dims, schema.vector.metric, survey.samples,
                          emb.embeddings if emb else None, emb.name if emb else None)  # fmt: skip
        d = Decision(name, copy=found.copy, embedder=emb, schema=None if meta else schema)
        d.lines.append(f"into {'existing ' if meta else 'new '}vector index {name!r}: {_schema_line(schema)}")
        if not found.copy and emb is not None and self.re_embed:
            dims = emb.dims()
            if meta and dims != schema.vector.dims:
                raise SourceError(
                    f"embedder {emb.name!r} gives {dims}-dimensional vectors but index {name!r} holds "
                    f"{schema.vector.dims}; choose another target with --target"
                )
            d.schema = None if meta else targets.derived_schema(spec, dims)
        return self._vectors_verdict(d, found, survey)

    def _vectors_verdict(self, d: Decision, found: fit.Fit, survey: Survey) -> Decision:
        if not survey.records:
            d.lines.append("nothing to copy")
            return d
        embed = survey.records if not found.copy else survey.uncopyable
        if found.copy:
            d.lines.append(f"vectors copied, not re-embedded: {found.reason}")
        else:
            d.lines.append(f"vectors cannot be copied: {found.reason}")
        if survey.uncopyable and found.copy:
            d.lines.append(
                f"{survey.uncopyable} {self.unit} have no usable stored vector (or a chat prompt's)"
            )
        if embed and not self.re_embed:
            d.blocked = (
                f"{embed} {self.unit} would have to be re-embedded; run again with --re-embed "
                "(and --embedder NAME) to let the workers embed them"
            )
        elif embed:
            name = d.embedder.name if d.embedder else "?"
            d.lines.append(f"{embed} {self.unit} re-embedded by the workers with {name!r}")
        return d

    # --- pass 2 ------------------------------------------------------------------------------------
    def run(self, d: Decision, timeout: float, tick: Callable[[Report], None] | None = None) -> Report:
        if d.blocked:
            raise SourceError(d.blocked)
        self._create(d)
        report = Report()
        for batch in _batches(self.source.records(), self.batch):
            payloads, weights, seeds = self._jobs(d, batch, report)
            self._seed(d, seeds)
            if payloads:
                handles = self.client.enqueue(payloads)
                for payload, handle, weight in zip(payloads, handles, weights, strict=True):
                    report.jobs[payload.kind] += 1
                    report.items[payload.kind] += weight
                    tracker = report.trackers.setdefault(payload.kind, self._applied())
                    tracker.add([handle], [weight])
            for tracker in report.trackers.values():
                tracker.update()
            if tick:
                tick(report)
        report.finished = self._follow(report, timeout, tick)
        return report

    def _applied(self) -> Applied:
        return Applied(self.client.redis, self.client.keys, self.client.settings.queue.group)

    def _follow(self, report: Report, timeout: float, tick: Callable[[Report], None] | None) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            for tracker in report.trackers.values():
                tracker.update()
            if tick:
                tick(report)
            if all(t.done for t in report.trackers.values()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def _create(self, d: Decision) -> None:
        if self.what == "vectors":
            targets.open_index(self.client, d.target, d.schema, d.embedder.name if d.embedder else None)
        elif self.what == "semantic-cache":
            assert d.embedder is not None
            cache = self.client.semantic_cache(d.embedder.embeddings, embedder=d.embedder.name, name=d.target)
            cache._open()  # the index must exist before a worker writes into it (as `update` does)

    def _jobs(
        self, d: Decision, batch: list[Record], report: Report
    ) -> tuple[list[Payload], list[int], list[plan.Seed]]:
        payloads: list[Payload] = []
        weights: list[int] = []
        seeds: list[plan.Seed] = []
        settings = self.client.settings
        vector_docs = [r for r in batch if isinstance(r, VectorRecord)]
        if vector_docs:
            name = d.embedder.name if d.embedder else None
            for index_job in plan.index_jobs(
                self.client.keys, settings.limits, d.target, vector_docs, copy=d.copy, embedder=name
            ):
                payloads.append(index_job)
                weights.append(len(index_job.upserts))
        kept = self._kept([r for r in batch if isinstance(r, HistoryRecord)])
        for record in batch:
            if isinstance(record, CacheRecord):
                payloads.append(plan.cache_fill(record, d.target))
                weights.append(1)
            elif isinstance(record, SemanticRecord):
                assert d.embedder is not None
                payload, seed = plan.semantic_fill(record, d.target, d.embedder.name, d.copy)
                payloads.append(payload)
                weights.append(1)
                seeds += [seed] if seed else []
            elif isinstance(record, HistoryRecord):
                if record.session_id in kept:
                    report.kept += 1
                    continue
                for job in plan.history_jobs(record, settings.limits, replace=self.replace):
                    payloads.append(job)
                    weights.append(len(job.messages))
        return payloads, weights, seeds

    def _kept(self, records: list[HistoryRecord]) -> set[str]:
        """Sessions that already have messages in sluice: left alone unless --replace."""
        if self.replace or not records:
            return set()
        with translate_errors("check the target conversations"):
            pipe = self.client.redis.pipeline(transaction=False)
            for r in records:
                pipe.exists(self.client.keys.history(r.session_id))
            found = pipe.execute()
        return {r.session_id for r, n in zip(records, found, strict=True) if n}

    def _seed(self, d: Decision, seeds: list[plan.Seed]) -> None:
        """Stored vectors into the embeddings cache under the embedder's fingerprint (see `plan`)."""
        if not seeds or d.embedder is None:
            return
        fingerprint = EmbedderRegistry(self.client.settings.embedders).fingerprint(d.embedder.name)
        ttl = self.client.settings.vectors.embeddings_cache_ttl
        with translate_errors("seed the embeddings cache"):
            pipe = self.client.redis.pipeline(transaction=False)
            for s in seeds:
                blob = np.asarray(s.vector, dtype=np.float32).tobytes()
                pipe.set(
                    self.client.keys.embedding(fingerprint, s.text), blob, px=int(ttl * 1000) if ttl else None
                )
            pipe.execute()


def _batches(records: Iterable[Record | Skipped], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        if isinstance(record, Skipped):
            continue
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _schema_line(schema: IndexSchema) -> str:
    v = schema.vector
    fields = ", ".join(f"{f.name} ({f.type})" for f in schema.metadata) or "no filter fields"
    return f"{v.dims} dims, {v.metric}, {v.algorithm}, {v.dtype}; {fields}"

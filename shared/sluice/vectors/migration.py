"""Changing an index's schema, embedder or backend while it keeps answering: `sluice index migrate`.

The steps, each resumable (run the command again after a crash) and each a compare-and-set of
the metadata (`vector_meta_swap.lua`), so two admins cannot interleave:

1. **start**: the metadata gains the target generation (`other`) and workers write both;
   the target's structures are created (an FT index without alias, or nothing for Vector Sets).
2. **backfill**: once every job a worker took under the old metadata is acknowledged
   (`settle_in_flight`), the documents of the current generation are read and re-enqueued as
   `index` jobs for the target only, each at its source version (a live write always wins);
   vectors are copied when embedder, dims and metric agree, else the workers embed the text.
3. **switch**: the RediSearch alias moves to the target (FT.ALIASUPDATE, atomic per shard) and
   the metadata names it the generation queries read; vector stores follow within
   `vectors.meta_refresh` seconds. Both generations are still written.
4. **finish**: after `vectors.switch_grace` seconds the old generation stops being written and,
   once in-flight jobs settle, is dropped.

Queries are answered throughout: before the switch from the complete old generation, after it
from the complete new one. `abort` (before the switch) drops the target instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigError
from sluice.jobs.models import IndexDocument
from sluice.keys import Keys
from sluice.queue.progress import Applied
from sluice.transport.runner import Call, Plan, Runner, drive
from sluice.vectors import ingest
from sluice.vectors.backend import BackendChoice, check, choose
from sluice.vectors.backfill import purge_generation, read_generation
from sluice.vectors.manager import make_backend
from sluice.vectors.meta import GenerationSpec, IndexMeta
from sluice.vectors.progress import settle_in_flight
from sluice.vectors.schema import IndexSchema, differences

if TYPE_CHECKING:
    from sluice.core import Core

LOSSY = ("q8", "bin")


class MigrationError(ConfigError):
    """A migration that cannot start or go on; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class Target:
    spec: GenerationSpec
    copy_vectors: bool


@dataclass
class Backfill:
    """What the backfill enqueued and what became of it."""

    applied: Applied
    source_docs: int = 0
    target_docs: int = 0
    failures: list[str] = field(default_factory=list)


def target_for(
    meta: IndexMeta,
    schema: IndexSchema,
    *,
    embedder: str | None,
    backend: BackendChoice,
    caps: Any,
    tags: list[str],
) -> Target:
    """The next generation's description; refuses what cannot be migrated, saying why."""
    name = choose(caps, backend, f"index {meta.index!r}") if backend != "auto" else meta.backend
    make_backend(name, Keys("check"), tags).validate(schema)
    emb = meta.embedder if embedder is None else embedder
    old = meta.index_schema.vector
    copy = copyable(meta, schema, emb)
    if not copy and emb is None:
        raise MigrationError(
            f"index {meta.index!r} is embedded by the app and the new schema cannot reuse its vectors "
            f"({old.dims}-dim {old.metric} -> {schema.vector.dims}-dim {schema.vector.metric}); name an "
            "embedder the workers can run (--embedder NAME), or keep dims and metric"
        )
    shards = meta.shards if name == meta.backend else (tuple(tags) if name == "vsets" else ("",))
    generation = max(meta.generation, *meta.writing) + 1
    spec = GenerationSpec(
        generation=generation, backend=name, index_schema=schema, embedder=emb, shards=shards
    )
    return Target(spec, copy)


def copyable(meta: IndexMeta, schema: IndexSchema, embedder: str | None) -> bool:
    """Whether the stored vectors serve the new schema as they are (else the workers embed the text)."""
    old = meta.index_schema.vector
    return (
        embedder == meta.embedder
        and schema.vector.dims == old.dims
        and schema.vector.metric == old.metric
        and (old.dtype not in LOSSY or embedder is None)
    )


def resumed(meta: IndexMeta) -> Target | None:
    """The target of a migration in progress (before its switch), if any."""
    if meta.other is None or meta.other.generation < meta.generation:
        return None
    return Target(meta.other, copyable(meta, meta.other.index_schema, meta.other.embedder))


def swap(keys: Keys, index: str, old: str, new: IndexMeta) -> Plan[bool]:
    """Replace the metadata if it still is `old` (the JSON read); False if someone changed it."""
    key = keys.vector_meta(index)
    [reply] = yield [Call((old, new.encode()), route=key, script="vector_meta_swap", keys=(key,))]
    return bool(check(reply, f"update the metadata of index {index!r}"))


def read_raw(keys: Keys, index: str) -> Plan[tuple[str, IndexMeta] | None]:
    key = keys.vector_meta(index)
    [raw] = yield [Call(("GET", key), route=key)]
    raw = check(raw, f"read the metadata of index {index!r}")
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return text, IndexMeta.decode(text, key)


def count_generation(keys: Keys, tags: list[str], meta: IndexMeta, generation: int) -> Plan[int]:
    """Documents stored in one generation (whichever generation queries read)."""
    view = meta.at(generation)
    return (yield from make_backend(view.backend, keys, tags).count(view))


class Migration:
    """One index's migration, step by step (sync; run by an admin, e.g. `sluice index migrate`)."""

    def __init__(self, client: Core, index: str, *, log: Callable[[str], None] = lambda _: None) -> None:
        self.client = client
        self.index = index
        self.keys = client.keys
        self.log = log
        self.group = client.settings.queue.group

    @cached_property
    def runner(self) -> Runner:
        return Runner(self.client.redis, cluster=self.client.capabilities.cluster)

    @cached_property
    def tags(self) -> list[str]:
        return self.runner.shard_tags()

    def current(self) -> tuple[str, IndexMeta]:
        found = drive(read_raw(self.keys, self.index), self.runner)
        if found is None:
            raise MigrationError(f"no index {self.index!r}; create it first (`sluice index create`)")
        return found

    def plan(
        self,
        schema: IndexSchema | None = None,
        *,
        embedder: str | None = None,
        backend: BackendChoice = "auto",
    ) -> Target:
        _, meta = self.current()
        wanted = schema or meta.index_schema
        return target_for(
            meta, wanted, embedder=embedder, backend=backend, caps=self.client.capabilities, tags=self.tags
        )

    def _swap(self, old: str, new: IndexMeta, step: str) -> IndexMeta:
        if not drive(swap(self.keys, self.index, old, new), self.runner):
            raise MigrationError(
                f"the metadata of index {self.index!r} changed during {step} (another migration or a drop?); "
                "look at `sluice index info` and run the command again"
            )
        return new

    def start(self, target: Target) -> IndexMeta:
        """Step 1 (or its resumption when the same target is already being built)."""
        raw, meta = self.current()
        if meta.other is not None:
            if meta.other.generation < meta.generation:
                return meta  # switched already: only finishing is left
            if differences(meta.other.index_schema, target.spec.index_schema) or (
                meta.other.embedder,
                meta.other.backend,
            ) != (target.spec.embedder, target.spec.backend):
                raise MigrationError(
                    f"index {self.index!r} is being migrated to another schema (generation "
                    f"{meta.other.generation}); resume that one (`sluice index migrate {self.index} --resume`) "
                    "or abort it (`--abort`)"
                )
            new = meta
        else:
            spec = target.spec
            writing = (meta.generation, spec.generation)
            new = self._swap(raw, meta.model_copy(update={"other": spec, "writing": writing}), "start")
        make = make_backend(new.other.backend if new.other else new.backend, self.keys, self.tags)
        drive(make.create(new, new.writing[-1]), self.runner)
        return new

    def backfill(
        self,
        meta: IndexMeta,
        *,
        copy_vectors: bool,
        timeout: float,
        tick: Callable[[Applied], None] | None = None,
    ) -> Backfill:
        """Step 2: re-enqueue the read generation's documents for the target; wait until applied."""
        assert meta.other is not None and meta.other.generation > meta.generation, "start() first"
        target = meta.other
        settle_in_flight(self.client.redis, self.keys, self.group, timeout)
        applied = Applied(self.client.redis, self.keys, self.group)
        limits = self.client.settings.limits
        for chunk in read_generation(
            self.client.redis, self.runner, self.keys, meta, meta.generation, vectors=copy_vectors
        ):
            docs = [
                IndexDocument(
                    id=d.doc_id, text=d.text, metadata=d.metadata, vector=d.vector, version=d.version
                )
                for d in chunk
            ]
            payloads = ingest.payloads(
                self.keys, limits, self.index, upserts=docs, embedder=target.embedder,
                generation=target.generation,
            )  # fmt: skip
            handles = self.client.producer.enqueue_many(payloads)
            applied.add(handles, [len(p.upserts) for p in payloads])
            applied.update()
            if tick:
                tick(applied)
        result = Backfill(applied)
        if not applied.wait(timeout, tick):
            raise MigrationError(
                f"{len(applied.left)} backfill jobs of index {self.index!r} not applied after {timeout}s; are "
                "workers running (`sluice status`)? Run the command again to resume"
            )
        result.failures = sorted(set(applied.failed.values()))
        result.source_docs, result.target_docs = self.counts(meta)
        return result

    def counts(self, meta: IndexMeta) -> tuple[int, int]:
        """Documents in the read generation and in the target, once live writes settle."""
        assert meta.other is not None
        source = target = 0
        for _ in range(20):  # a live job may have written one generation and not yet the other
            source = drive(count_generation(self.keys, self.tags, meta, meta.generation), self.runner)
            target = drive(count_generation(self.keys, self.tags, meta, meta.other.generation), self.runner)
            if source == target:
                break
            time.sleep(0.1)
        return source, target

    def switch(self, meta: IndexMeta) -> IndexMeta:
        """Step 3: queries read the target from now on."""
        raw, now = self.current()
        if now.other is not None and now.other.generation < now.generation:
            return now  # done already
        if now != meta:
            raise MigrationError(
                f"the metadata of index {self.index!r} changed since the backfill; run again"
            )
        assert meta.other is not None
        target = meta.other
        backend = make_backend(target.backend, self.keys, self.tags)
        drive(backend.point_alias(meta.at(target.generation), target.generation), self.runner)
        switched = IndexMeta(
            index=meta.index, backend=target.backend, index_schema=target.index_schema,
            embedder=target.embedder, generation=target.generation, writing=meta.writing,
            shards=target.shards, created=meta.created, other=meta.spec(),
        )  # fmt: skip
        return self._swap(raw, switched, "the switch")

    def finish(self, meta: IndexMeta, grace: float, timeout: float) -> IndexMeta:
        """Step 4: after `grace` seconds, stop writing the old generation and drop it."""
        assert meta.other is not None and meta.other.generation < meta.generation, "switch() first"
        time.sleep(grace)
        raw, now = self.current()
        if now != meta:
            raise MigrationError(f"the metadata of index {self.index!r} changed after the switch; run again")
        old = meta.other.generation
        done = self._swap(
            raw, meta.model_copy(update={"other": None, "writing": (meta.generation,)}), "finish"
        )
        self._drop_generation(meta, old, timeout)
        return done

    def abort(self, timeout: float) -> int:
        """Drop a migration's target before its switch; returns its generation."""
        raw, meta = self.current()
        if meta.other is None:
            raise MigrationError(f"index {self.index!r} has no migration in progress")
        if meta.other.generation < meta.generation:
            raise MigrationError(
                f"index {self.index!r} has switched to generation {meta.generation} already; run "
                f"`sluice index migrate {self.index} --resume` to finish"
            )
        target = meta.other.generation
        self._swap(raw, meta.model_copy(update={"other": None, "writing": (meta.generation,)}), "abort")
        self._drop_generation(meta, target, timeout)
        return target

    def run(
        self,
        target: Target,
        *,
        grace: float,
        timeout: float,
        force: bool = False,
        tick: Callable[[Applied], None] | None = None,
    ) -> Backfill | None:
        """Every step (resuming where an earlier run stopped); None if only finishing was left.

        Raises `MigrationError` before the switch if documents failed (dead letters) or are
        missing in the target, unless `force`: the migration stays open for --resume or --abort.
        """
        started = self.start(target)
        result = None
        if started.other is not None and started.other.generation > started.generation:
            how = "copying vectors" if target.copy_vectors else f"embedding with {target.spec.embedder!r}"
            self.log(
                f"migrating {self.index!r}: generation {started.generation} -> {target.spec.generation} ({how})"
            )
            result = self.backfill(started, copy_vectors=target.copy_vectors, timeout=timeout, tick=tick)
            self.log(
                f"backfilled: {result.applied.applied_units} documents; {result.source_docs} in the old "
                f"generation, {result.target_docs} in the new"
            )
            if (result.failures or result.target_docs < result.source_docs) and not force:
                raise MigrationError(
                    f"not switching index {self.index!r}: {len(result.failures)} kinds of failure "
                    f"({'; '.join(result.failures)[:500] or 'documents missing in the new generation'}); fix the "
                    "documents (`sluice dlq list --kind index`) and resume (--resume), switch anyway (--force), "
                    "or --abort"
                )
            started = self.switch(started)
            self.log(
                f"switched: queries read generation {started.generation}; the old one goes in {grace:g}s"
            )
        self.finish(started, grace, timeout)
        return result

    def _drop_generation(self, meta: IndexMeta, generation: int, timeout: float) -> None:
        """Once no batch still writes it: structures, documents and tombstones of `generation`."""
        settle_in_flight(self.client.redis, self.keys, self.group, timeout)
        backend = make_backend(meta.at(generation).backend, self.keys, self.tags)
        drive(backend.drop(meta, generation), self.runner)
        purge_generation(self.client.redis, self.runner, self.keys, self.index, generation)

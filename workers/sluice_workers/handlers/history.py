"""history-append: apply appends, clears and deletes to conversation stores, versioned by entry id.

Per batch: one pipeline of history_write.lua calls (one per job), then one session index update
with, in the same round trip, the pending_done.lua calls that take the jobs out of their sessions'
pending sets (readers in every process then stop waiting for them); then, for jobs that asked for
semantic recall, the kept messages are embedded (one embeddings call per index) and their vectors
written, and the vectors of messages that trims, clears and deletes removed are deleted; those
jobs leave their pending sets only after that, so a recall that waited for them finds them. Every few seconds the batch also sweeps the session index: sessions
that expired or were deleted leave it, with their vectors.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from sluice.errors import PermanentJobError, SluiceError
from sluice.jobs.codec import Job
from sluice.jobs.models import HistoryAppendPayload
from sluice.keys import Keys
from sluice.queue.pending import PendingSet
from sluice.settings import Settings
from sluice.stores.history import HistoryStore, HistoryWrite, WriteResult, message_ref
from sluice.stores.history_vectors import GoneMessage, HistoryVectors, NewMessage, index_name, message_text
from sluice.stores.messages import check_message, normalize
from sluice.stores.sessions import drop_call, expiry_call, sweep
from sluice.stores.versions import padded
from sluice.transport.runner import Call, drive
from sluice.types import EntryId, KeyT
from sluice.vectors.backend import check
from sluice.vectors.budget import Pacer
from sluice_workers.handlers.base import Failures

log = logging.getLogger(__name__)

SWEEP_INTERVAL: Final = 5.0
"""Seconds between sweeps of the session index by one handler."""
SWEEP_SIZE: Final = 200


class HistoryHandler:
    kind = "history-append"

    def __init__(
        self,
        store: HistoryStore,
        vectors: HistoryVectors | None = None,
        *,
        pipeline: bool = True,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._store = store
        self._vectors = vectors
        self._pipeline = pipeline
        self._sweep_interval = sweep_interval
        self._next_sweep = time.monotonic() + sweep_interval
        self._walk: str | None = None

    @classmethod
    def build(
        cls, redis: Any, settings: Settings, *, cluster: bool, pacer: Pacer | None = None
    ) -> HistoryHandler:
        keys = Keys(settings.namespace, settings.queue.partitions)
        store = HistoryStore(redis, keys, cluster=cluster)
        return cls(store, HistoryVectors(redis, settings, cluster=cluster, pacer=pacer))

    def handle(self, jobs: Sequence[Job]) -> Failures:
        writes: list[HistoryWrite] = []
        owners: list[Job] = []
        failures: dict[EntryId, BaseException] = {}
        for job in jobs:
            p = job.envelope.payload
            if not isinstance(p, HistoryAppendPayload):
                failures[job.entry_id] = PermanentJobError(f"not a history job: {p.kind}")
                continue
            try:
                messages = _normalized(p.messages)
            except (ValueError, KeyError, TypeError, AttributeError) as e:  # not a message: never will be
                failures[job.entry_id] = PermanentJobError(f"session {p.session_id!r}: {str(e)[:300]}")
                continue
            index = index_name(p.embedder) if p.embedder and p.op == "append" else None
            writes.append(
                HistoryWrite(p.session_id, job.version, p.op, messages, p.ttl, p.max_messages, index)
            )
            owners.append(job)
        plain = [j for j in owners if not _semantic_job(j)]
        results = self._store.write(writes, pipeline=self._pipeline, then=self._done(plain))
        for i, error in self._semantic(writes, results).items():
            failures.setdefault(owners[i].entry_id, error)
        semantic = [j for j in owners if _semantic_job(j) and j.entry_id not in failures]
        for reply in self._store.runner.run(self._done(semantic)):
            check(reply, "mark history jobs applied")
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self._sweep_interval
            try:
                self.sweep()
            except SluiceError as e:  # housekeeping: never fails the batch
                log.warning("session index sweep failed: %s", e)
        return failures

    def _done(self, jobs: Sequence[Job]) -> list[Call]:
        """The pending_done.lua calls for applied jobs: one per session."""
        keys = self._store.keys
        done: dict[PendingSet, list[str]] = defaultdict(list)
        for job in jobs:
            where = PendingSet(KeyT(job.stream), keys.pending(job.stream, job.envelope.payload.target_key()))
            done[where].append(job.entry_id)
        return [where.done_call(keys, ids) for where, ids in done.items()]

    def _semantic(
        self, writes: Sequence[HistoryWrite], results: Sequence[WriteResult]
    ) -> dict[int, BaseException]:
        new: list[NewMessage] = []
        gone: list[GoneMessage] = []
        for i, (w, r) in enumerate(zip(writes, results, strict=True)):
            version = padded(w.version)
            gone += [GoneMessage(ix, w.session_id, ref, version, i) for ix, ref in r.removed]
            if w.index is None:
                continue
            for pos, m in enumerate(w.messages):
                ref = message_ref(w.version, pos)
                text = message_text(m)
                if text and r.kept(ref):
                    new.append(NewMessage(w.index, w.session_id, ref, version, text, str(m.get("type")), i))
        if not new and not gone:
            return {}
        if self._vectors is None:
            owners = {m.owner for m in new}
            return dict.fromkeys(
                owners, PermanentJobError("this worker cannot index messages (no vector layer)")
            )
        return self._vectors.apply(new, gone)

    def sweep(self, now_ms: int | None = None) -> int:
        """Remove dead sessions from the index (and their vectors); returns how many."""
        keys = self._store.keys
        found = drive(
            sweep(
                keys,
                now_ms or int(time.time() * 1000),
                expired=SWEEP_SIZE,
                walk=SWEEP_SIZE,
                cursor=self._walk,
            ),
            self._store.runner,
        )
        self._walk = found.cursor
        gone = [
            GoneMessage(index, d.session_id, ref, _successor(ref[:29]))
            for d in found.dead
            for ref, index in d.vectors.items()
        ]
        if gone and self._vectors is not None:
            self._vectors.apply([], gone)
        calls: list[Call] = [
            Call(
                ("HDEL", keys.history_vdocs(d.session_id), *d.vectors), route=keys.history_vdocs(d.session_id)
            )
            for d in found.dead
            if d.vectors
        ]
        calls += [
            c
            for c in (
                drop_call(keys, [(d.session_id, d.seen) for d in found.dead], prune=True),
                expiry_call(keys, found.expiry),
            )
            if c
        ]
        for reply in self._store.runner.run(calls):
            check(reply, "sweep the session index")
        return len(found.dead)


def _semantic_job(job: Job) -> bool:
    p = job.envelope.payload
    return isinstance(p, HistoryAppendPayload) and p.embedder is not None


def _normalized(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated, canonical message dicts (what readers may build without validating again)."""
    out = []
    for m in messages:
        problem = check_message(m)
        if problem:
            raise ValueError(problem)
        out.append(normalize(m))
    return out


def _successor(version: str) -> str:
    """The smallest version above a padded one: deletes a vector written at `version`."""
    ms, _, seq = version.partition("-")
    return padded(f"{int(ms)}-{int(seq) + 1}")

"""checkpoint: apply LangGraph checkpointer jobs to thread stores, versioned by entry id.

Per batch: one pipeline of checkpoint_write.lua calls (one per job, on each thread's node), then
the run index (which threads hold checkpoints of which run, for `delete_for_runs`) and one
pending_done.lua call per thread that takes the applied jobs out of its pending set, so that
readers in every process stop waiting for them. The values are bytes serialised by the app; the
worker never decodes them (it needs no LangGraph).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sluice.errors import PermanentJobError, SluiceError
from sluice.jobs.codec import Job
from sluice.jobs.models import CheckpointPayload
from sluice.keys import Keys
from sluice.queue.pending import PendingSet
from sluice.settings import Settings
from sluice.stores.checkpoints import run_index_calls, write_call, write_result
from sluice.transport.runner import Call, Runner
from sluice.types import EntryId, KeyT
from sluice.vectors.backend import check
from sluice_workers.handlers.base import Failures


class CheckpointHandler:
    kind = "checkpoint"

    def __init__(self, runner: Runner, keys: Keys) -> None:
        self._runner = runner
        self._keys = keys

    @classmethod
    def build(cls, redis: Any, settings: Settings, *, cluster: bool) -> CheckpointHandler:
        return cls(Runner(redis, cluster=cluster), Keys(settings.namespace, settings.queue.partitions))

    def handle(self, jobs: Sequence[Job]) -> Failures:
        failures: dict[EntryId, BaseException] = {}
        calls: list[Call] = []
        owners: list[Job] = []
        for job in jobs:
            p = job.envelope.payload
            if not isinstance(p, CheckpointPayload):
                failures[job.entry_id] = PermanentJobError(f"not a checkpoint job: {p.kind}")
                continue
            try:
                calls.append(write_call(self._keys, p, job.version))
            except ValueError as e:  # a name sluice cannot store: it never will
                failures[job.entry_id] = PermanentJobError(f"thread {p.thread_id!r}: {e}")
                continue
            owners.append(job)
        done: dict[PendingSet, list[str]] = defaultdict(list)
        after: list[Call] = []
        for job, call, reply in zip(owners, calls, self._runner.run(calls), strict=True):
            p = job.envelope.payload
            assert isinstance(p, CheckpointPayload)
            try:
                result = write_result(reply, call.route)
            except SluiceError as e:
                failures[job.entry_id] = e
                continue
            after += run_index_calls(self._keys, p, result)
            done[PendingSet(KeyT(job.stream), self._keys.pending(job.stream, p.target_key()))].append(
                job.entry_id
            )
        # after the writes (on a Cluster they may be on other nodes): readers then see them
        after += [where.done_call(self._keys, ids) for where, ids in done.items()]
        replies = self._runner.run(after)
        for reply in replies:
            check(reply, "mark checkpoint jobs applied")
        return failures

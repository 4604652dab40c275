"""history-append: apply appends and clears to conversation stores, versioned by entry id."""

from __future__ import annotations

from collections.abc import Sequence

from sluice.errors import PermanentJobError
from sluice.jobs.codec import Job
from sluice.jobs.models import HistoryAppendPayload
from sluice.stores.history import HistoryStore, HistoryWrite
from sluice.stores.messages import check_message
from sluice.types import EntryId
from sluice_workers.handlers.base import Failures


class HistoryHandler:
    kind = "history-append"

    def __init__(self, store: HistoryStore, *, pipeline: bool = True) -> None:
        self._store = store
        self._pipeline = pipeline

    def handle(self, jobs: Sequence[Job]) -> Failures:
        writes: list[HistoryWrite] = []
        failures: dict[EntryId, BaseException] = {}
        for job in jobs:
            p = job.envelope.payload
            if not isinstance(p, HistoryAppendPayload):
                failures[job.entry_id] = PermanentJobError(f"not a history job: {p.kind}")
                continue
            problem = next((why for m in p.messages if (why := check_message(m))), None)
            if problem:
                failures[job.entry_id] = PermanentJobError(f"session {p.session_id!r}: {problem}")
                continue
            writes.append(HistoryWrite(p.session_id, job.entry_id, p.op, p.messages, p.ttl, p.max_messages))
        self._store.write(writes, pipeline=self._pipeline)
        return failures

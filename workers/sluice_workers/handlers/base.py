"""What a handler is: it takes a whole batch of one kind and reports the jobs that failed.

A handler writes through the stores with the job's entry id as the version, so running it again
on the same entries (redelivery, reclaim) changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from sluice.jobs.codec import Job
from sluice.types import EntryId

Failures = Mapping[EntryId, BaseException]


class Handler(Protocol):
    """One per job kind. `handle` returns the failed entries; an exception fails the batch."""

    kind: str

    def handle(self, jobs: Sequence[Job]) -> Failures: ...

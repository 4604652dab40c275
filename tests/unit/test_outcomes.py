"""Failure sorting: what retries, what is dead-lettered, and how long a retry waits."""

from __future__ import annotations

from sluice.errors import (
    JobDecodeError,
    PermanentJobError,
    RedisUnavailable,
    RetryableJobError,
    StoreCorrupted,
)
from sluice.settings import WorkerSettings
from sluice_workers.runtime.outcomes import backoff, judge


def test_permanent_errors_go_to_the_dead_letters_at_once() -> None:
    s = WorkerSettings()
    for exc in (PermanentJobError("bad"), JobDecodeError("1-1", "x"), StoreCorrupted("k")):
        v = judge(exc, 1, s)
        assert not v.retry
        assert v.reason.startswith("permanent")


def test_transient_errors_retry_until_max_deliveries() -> None:
    s = WorkerSettings(max_deliveries=3)
    for exc in (RetryableJobError("later"), RedisUnavailable("down"), RuntimeError("boom")):
        assert judge(exc, 1, s).retry
        assert judge(exc, 2, s).retry
        last = judge(exc, 3, s)
        assert not last.retry
        assert "gave up after 3 deliveries" in last.reason


def test_backoff_grows_and_is_capped() -> None:
    s = WorkerSettings(retry_backoff_base=0.5, retry_backoff_cap=4.0)
    assert 0.25 <= backoff(1, s) <= 0.5
    assert 1.0 <= backoff(3, s) <= 2.0
    assert 2.0 <= backoff(30, s) <= 4.0


def test_a_batch_is_split_so_no_handler_call_sees_an_entry_id_twice() -> None:
    from sluice.jobs.codec import Job
    from sluice.jobs.models import HistoryAppendPayload, JobEnvelope
    from sluice.types import EntryId
    from sluice_workers.runtime.consumer import _by_stream, _unique_ids

    env = JobEnvelope(namespace="n", payload=HistoryAppendPayload(session_id="s"))
    jobs = [Job("a", EntryId("1-0"), env), Job("b", EntryId("1-0"), env), Job("a", EntryId("2-0"), env)]
    parts = _unique_ids(jobs)
    assert [[(j.stream, j.entry_id) for j in p] for p in parts] == [
        [("a", "1-0"), ("a", "2-0")],
        [("b", "1-0")],
    ]
    # failures reported by entry id are attributed to the right stream's job
    error = RuntimeError("x")
    assert _by_stream(parts[1], {EntryId("1-0"): error}) == {("b", "1-0"): error}

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

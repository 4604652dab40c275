"""Sorting failures: retry with backoff, or dead-letter with a reason."""

from __future__ import annotations

import random
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from sluice.connection.secrecy import scrub
from sluice.errors import JobDecodeError, JobError, RedisFull, RedisUnavailable, ServerError, SluiceError
from sluice.settings import WorkerSettings


@dataclass(frozen=True, slots=True)
class Verdict:
    retry: bool
    delay: float
    reason: str


def describe(exc: BaseException) -> str:
    """`Type: message` plus the innermost frames, short enough for a stream field."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{f.name}:{f.lineno}" for f in reversed(frames))
    text = f"{type(exc).__name__}: {exc}"
    return f"{text} [at {where}]" if where else text


def is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, JobError):
        return not exc.retryable
    if isinstance(exc, (JobDecodeError, ValidationError)):
        return True
    if isinstance(exc, ServerError):  # the error table decides (sluice.transport.translate)
        return not exc.retryable
    # Transport trouble and a full Redis (maxmemory) are transient; other SluiceErrors (bad
    # settings, missing capability, corrupted store) will not heal by retrying the same entry.
    return isinstance(exc, SluiceError) and not isinstance(exc, RedisUnavailable | RedisFull)


def backoff(attempt: int, settings: WorkerSettings) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""
    ceiling = min(settings.retry_backoff_cap, settings.retry_backoff_base * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


def judge(
    exc: BaseException, deliveries: int, settings: WorkerSettings, secrets: Sequence[str] = ()
) -> Verdict:
    """Retry or dead-letter; the reason never quotes one of `secrets` (an API key an embedder's
    error echoed goes to logs and dead letters as ``**********``)."""
    reason = scrub(describe(exc), secrets)
    if is_permanent(exc):
        return Verdict(False, 0.0, f"permanent: {reason}")
    if deliveries >= settings.max_deliveries:
        return Verdict(False, 0.0, f"gave up after {deliveries} deliveries: {reason}")
    return Verdict(True, backoff(deliveries, settings), reason)

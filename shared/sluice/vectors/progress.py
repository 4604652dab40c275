"""What the workers have finished: many index jobs tracked to applied or dead, and in-flight batches.

`Applied` follows a bulk load or a migration's backfill job by job (weighted by documents) from
the consumer group's state, the same truth `wait()` uses: no polling of indexed data.
`settle_in_flight` is a migration's barrier: it returns once every index job a worker had
already taken when it was called is acknowledged, so no batch that read the index metadata
before a change is still writing.
"""

from __future__ import annotations

import time
from typing import Any

import redis.exceptions as rex

from sluice.errors import WaitTimeout
from sluice.keys import Keys
from sluice.transport.translate import translate_errors

POLL = 0.1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def settle_in_flight(redis: Any, keys: Keys, group: str, timeout: float) -> None:
    """Block until the index jobs pending (taken by a worker, not acknowledged) right now are done."""
    marks: dict[str, str] = {}
    with translate_errors("read the pending index jobs"):
        for stream in keys.streams("index"):
            summary = _pending_summary(redis, stream, group)
            if summary:
                marks[stream] = summary
    deadline = time.monotonic() + timeout
    while marks:
        with translate_errors("read the pending index jobs"):
            marks = {s: last for s, last in marks.items() if _pending_until(redis, s, group, last)}
        if not marks:
            return
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"index jobs taken by workers before the change are still pending after {timeout}s "
                f"(streams {sorted(marks)}); are the workers alive? see `sluice status`"
            )
        time.sleep(POLL)


def _no_group(error: Exception) -> bool:
    return "NOGROUP" in str(error) or "no such key" in str(error).lower()


def _pending_summary(redis: Any, stream: str, group: str) -> str | None:
    """The newest pending entry id of `stream` for `group`, or None (nothing pending, no group)."""
    try:
        summary = redis.xpending(stream, group)
    except rex.ResponseError as e:
        if _no_group(e):
            return None
        raise
    return _text(summary["max"]) if int(summary.get("pending") or 0) else None


def _pending_until(redis: Any, stream: str, group: str, last: str) -> bool:
    """True if some entry up to `last` is still pending."""
    try:
        return bool(redis.xpending_range(stream, group, "-", last, 1))
    except rex.ResponseError as e:
        if _no_group(e):
            return False
        raise

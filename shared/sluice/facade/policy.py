"""The words every facade uses for how it writes and for what a read does when workers are late.

``write=`` (how a write reaches Redis, and when the call returns):

- ``"enqueued"`` (the default of caches and histories): the call returns once the job is in its
  stream; a worker applies it.
- ``"buffered"`` (chat histories): the call returns once the job is in an in-process buffer that
  a thread enqueues within about a millisecond (see `sluice.facade.buffer`).
- ``"direct"`` (the LLM cache): the call writes the entry itself; no worker involved.
- ``"applied"`` (the LangGraph checkpointer): the call returns once a worker applied the job;
  ``"auto"`` there lets LangGraph's ``durability`` choose between it and ``"enqueued"``.

``on_timeout=`` (a read waited `wait_timeout` for this object's pending writes, and they are
still not applied):

- ``"warn"``: log a warning and read without them. Until the workers catch up with the writes
  that read gave up on, later reads (of any object of the same client) do not wait for that
  stream again: they check once and read.
- ``"raise"``: raise `WaitTimeout`; the writes stay pending, the next read waits again.

The defaults per facade, and why, are in the README ("When workers are late").
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

from sluice.errors import InvalidArgument, InvalidArgumentType

WriteMode: TypeAlias = Literal["enqueued", "buffered", "direct", "applied", "auto"]
OnTimeout: TypeAlias = Literal["warn", "raise"]

_RENAMED: Final[Mapping[str, Mapping[str, WriteMode]]] = {
    "llm_cache": {"background": "enqueued", "sync": "direct"},
    "chat_history": {"sync": "enqueued"},
}
_MEANING: Final[Mapping[str, str]] = {
    "enqueued": "enqueue a job in the call",
    "buffered": "enqueue from a background thread",
    "direct": "write in the call, no worker",
    "applied": "return once a worker applied it",
    "auto": "LangGraph's durability decides",
}


def write_mode(given: str, facade: str, accepted: tuple[WriteMode, ...]) -> WriteMode:
    """`given` as one of `accepted`; an old spelling works with a DeprecationWarning."""
    renamed = _RENAMED.get(facade, {}).get(given)
    if renamed is not None:
        warnings.warn(
            f"{facade}(write={given!r}) is now spelt write={renamed!r} ({_MEANING[renamed]})",
            DeprecationWarning,
            stacklevel=outside_sluice(),
        )
        given = renamed
    if given not in accepted:
        choices = ", ".join(f"{m!r} ({_MEANING[m]})" for m in accepted)
        raise InvalidArgument(f"{facade} takes write= {choices}; not {given!r}")
    return given


_PACKAGE: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def outside_sluice() -> int:
    """The `stacklevel` of the first caller outside the sluice package (for a warning's location)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE + os.sep
    ):
        frame, level = frame.f_back, level + 1
    return level


def check_ttl(ttl: float | None, what: str) -> float | None:
    """A time to live in seconds (> 0), or None for `what` that do not expire."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidArgumentType(f"ttl must be seconds (a number) or None, not {type(ttl).__name__}")
    if not ttl > 0:  # also NaN
        raise InvalidArgument(
            f"ttl must be positive seconds, or None for {what} that do not expire; not {ttl}"
        )
    return ttl


def check_count(value: int | None, name: str, *, none: str | None = None, low: int = 1) -> int | None:
    """A whole number >= `low` (`none`: what None means, if None is allowed)."""
    if value is None and none is not None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(f"{name} must be a whole number, not {type(value).__name__}")
    if value < low:
        also = f", or None {none}" if none else ""
        raise InvalidArgument(f"{name} must be at least {low}{also}; not {value}")
    return value


def on_timeout_policy(given: str, facade: str) -> OnTimeout:
    if given not in ("warn", "raise"):
        raise InvalidArgument(
            f"{facade} takes on_timeout='warn' (read without late writes) or 'raise' (WaitTimeout); "
            f"not {given!r}"
        )
    return given  # type: ignore[return-value]

"""Asyncio connections belong to the event loop that uses them: one set per running loop.

A redis-py asyncio connection is bound to the loop it was opened on: used from another loop
(a second `asyncio.run()`, pytest-asyncio's loop per test, a thread with its own loop) it fails
with "attached to a different loop" or "Event loop is closed". `PerLoop` therefore keeps one
value per running loop, built on first use there from the same options.

A value is closed on its own loop when that loop shuts down: `asyncio.run()`, `asyncio.Runner`
and pytest-asyncio call `loop.shutdown_asyncgens()` before closing the loop, and that closes
every async generator first iterated on it, so each value is watched by one suspended async
generator whose `finally` closes it. A loop closed without that shutdown (a bare
`loop.close()`) cannot run a close any more; its value is forgotten on the next use from any
loop and its sockets are left to the garbage collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sluice.errors import NoEventLoop

T = TypeVar("T")


async def _close_at_shutdown(close: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close()


@dataclass(slots=True)
class _Held(Generic[T]):
    value: T
    watcher: AsyncGenerator[None, None]  # kept alive here: the loop holds it only weakly


class PerLoop(Generic[T]):
    """One `T` per running event loop, built by `make()` and closed by `close(value)`. Thread-safe."""

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        # keyed by the loop object itself: a value references its loop, so a weak map would never
        # let go; closed loops are pruned instead
        self._held: dict[asyncio.AbstractEventLoop, _Held[T]] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        """The running loop's value (built on first use there); raises NoEventLoop outside a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise NoEventLoop(
                "sluice's asyncio connections belong to a running event loop; use them inside a "
                "coroutine (async def ...), or use the sync API"
            ) from None
        with self._lock:
            held = self._held.get(loop)
            if held is None:
                self._prune()
                value = self._make()  # no I/O; may raise (a refused twin), then nothing is kept
                held = self._held[loop] = _Held(value, self._watch(value))
            return held.value

    def _watch(self, value: T) -> AsyncGenerator[None, None]:
        async def close() -> None:
            with self._lock:
                for loop, held in list(self._held.items()):
                    if held.value is value:
                        del self._held[loop]
            await self._close(value)

        watcher = _close_at_shutdown(close)
        step = watcher.asend(None)  # registers the generator with the running loop (firstiter hook)
        with contextlib.suppress(StopIteration):
            step.send(None)  # runs it to its `yield` without suspending
        return watcher

    def _prune(self) -> None:
        for loop in [loop for loop in self._held if loop.is_closed()]:
            del self._held[loop]

    def peek(self) -> T | None:
        """The running loop's value if one was built, else None (never builds)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        with self._lock:
            held = self._held.get(loop)
            return held.value if held is not None else None

    async def aclose(self) -> None:
        """Close and forget the running loop's value (other loops' values close with their loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            held = self._held.pop(loop, None)
            self._prune()
        if held is not None:
            await held.watcher.aclose()  # runs the close in the generator's `finally`, on this loop

    def __len__(self) -> int:
        with self._lock:
            self._prune()
            return len(self._held)

"""The vectors a facade computed moments ago, kept briefly so that a fill carries them.

LangChain calls a cache's `lookup(prompt)`, then on a miss the model, then `update(prompt)`: the
semantic cache embedded the prompt at the lookup, and the fill job carries that vector instead of
the app (or a worker) embedding it again. Bounded in count (least recently used first out) and
in age: a vector older than `max_age` seconds (a lookup never followed by an update) is not used.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

from sluice.keys import digest

CAPACITY: Final = 1024
MAX_AGE: Final = 300.0


def compact(vector: Sequence[float]) -> list[float]:
    """The vector at float32 precision (what the index stores) with a short JSON form (9 digits)."""
    return [float(f"{x:.9g}") for x in vector]


class RecentVectors:
    """A small LRU of text -> vector (keyed by a digest of the text), safe across threads."""

    def __init__(self, capacity: int = CAPACITY, max_age: float = MAX_AGE) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.max_age = max_age
        self._items: OrderedDict[str, tuple[float, list[float]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, text: str, vector: Sequence[float]) -> None:
        key = digest(text)
        with self._lock:
            self._items[key] = (time.monotonic(), list(vector))
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, text: str) -> list[float] | None:
        """The vector remembered for `text`, or None if none is fresh."""
        key = digest(text)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if time.monotonic() - item[0] > self.max_age:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def __len__(self) -> int:
        return len(self._items)

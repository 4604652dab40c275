"""Session consistency: the writes a facade object has made and not yet seen applied, per key.

A read of key K waits only for this object's pending writes to K (bounded), never for others.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sluice.types import StreamEntryRef


class PendingWrites:
    def __init__(self) -> None:
        self._by_key: dict[str, list[StreamEntryRef]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, handles: Iterable[StreamEntryRef]) -> None:
        with self._lock:
            self._by_key.setdefault(key, []).extend(handles)

    def for_keys(self, keys: Iterable[str]) -> list[StreamEntryRef]:
        with self._lock:
            return [h for k in keys for h in self._by_key.get(k, [])]

    def all(self) -> list[StreamEntryRef]:
        with self._lock:
            return [h for hs in self._by_key.values() for h in hs]

    def done(self, handles: Iterable[StreamEntryRef]) -> None:
        """Forget handles seen applied (or failed: a failure is reported once)."""
        finished = set(handles)
        with self._lock:
            for key in list(self._by_key):
                left = [h for h in self._by_key[key] if h not in finished]
                if left:
                    self._by_key[key] = left
                else:
                    del self._by_key[key]

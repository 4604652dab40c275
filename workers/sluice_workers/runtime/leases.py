"""Leases on entries in hand: renewed from a thread of their own, so a long handler keeps its
entries and nobody reclaims them while it still works."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sluice.errors import SluiceError
from sluice_workers.runtime.transport import StreamTransport

log = logging.getLogger(__name__)


class Leases:
    def __init__(self, transport: StreamTransport, interval: float) -> None:
        self._transport = transport
        self._interval = interval
        self._held: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @contextmanager
    def hold(self, consumer: str, stream: str, ids: Sequence[str]) -> Iterator[None]:
        key = (consumer, stream)
        with self._lock:
            self._held.setdefault(key, set()).update(ids)
        try:
            yield
        finally:
            with self._lock:
                left = self._held.get(key, set()) - set(ids)
                if left:
                    self._held[key] = left
                else:
                    self._held.pop(key, None)

    def renew_now(self) -> None:
        with self._lock:
            held = [(c, s, sorted(ids)) for (c, s), ids in self._held.items()]
        for consumer, stream, ids in held:
            try:
                self._transport.renew(consumer, stream, ids)
            except SluiceError as e:  # a missed renewal only risks a duplicate run, which is harmless
                log.warning("lease renewal failed for %s: %s", stream, e)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.renew_now()

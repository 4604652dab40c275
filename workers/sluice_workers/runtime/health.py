"""Heartbeats: a key with a TTL per worker process, and the check that probes read.

Reading them (status, `sluice worker --check`) lives in `sluice.ops.workers`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sluice.errors import SluiceError
from sluice.keys import Keys
from sluice.transport.translate import translate_errors

log = logging.getLogger(__name__)


def worker_id(index: int = 0) -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{index}"


class Heartbeat:
    def __init__(
        self,
        redis: Any,
        keys: Keys,
        wid: str,
        interval: float,
        info: dict[str, Any],
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        self._on_beat = on_beat
        self._redis = redis
        self._keys = keys
        self._id = wid
        self._interval = interval
        self._info = {
            "id": wid,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            **info,
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-heartbeat", daemon=True)

    def beat(self) -> None:
        now = time.time()
        body = json.dumps({**self._info, "beat": now})
        with translate_errors("heartbeat"):
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(self._keys.worker(self._id), body, px=int(self._interval * 3000))
            pipe.zadd(self._keys.workers(), {self._id: int(now * 1000)})
            pipe.execute()

    def start(self) -> None:
        try:
            self.beat()
        except SluiceError as e:  # a full or busy Redis must not stop a worker from starting
            log.warning("first heartbeat failed: %s", e)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            with translate_errors("heartbeat"):
                self._redis.delete(self._keys.worker(self._id))
                self._redis.zrem(self._keys.workers(), self._id)
        except SluiceError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
                if self._on_beat is not None:
                    self._on_beat()
            except SluiceError as e:
                log.warning("heartbeat failed: %s", e)

"""The governor: how much of Redis's main thread the workers of a namespace take (DESIGN rule 7).

Redis serves everyone on one thread; while it runs a worker's pipeline, every app lookup waits.
So every vector write pipeline of every worker process goes through one token bucket of
server-milliseconds kept in Redis (``ns:governor``, `governor_take.lua`): it refills at the *rate*
— a share of wall time, at most `governor.duty_cycle` — and a pipeline starts only while it holds
tokens and no other worker's pipeline is on the server (a lease in the same hash), paying
afterwards the server time it measured: the server's CPU clock (`os.clock()` in
`governor_clock.lua`) read just before and after the pipeline, so neither queueing nor the
operating system's scheduling is counted (on a Cluster, its round trip less an empty call's).
The rate adapts to the foreground: the facades publish their lookup p99 (`sluice.ops.foreground`);
while it is above `governor.foreground_ratio` times its idle p99 the rate is halved on each report,
and it climbs back additively; the write pipelines shrink in the same proportion, since a lookup
waits behind one pipeline at most and that wait is what its p99 shows. With no readers it stays at the duty cycle: a bulk load on a quiet
system is not slowed by adaptation.

One `Governor` per worker process, shared by its consumer threads (`Pacer` of the write budget).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from sluice.keys import Keys
from sluice.scripts import Scripts
from sluice.settings import GovernorSettings
from sluice.transport.call import Call
from sluice.transport.translate import translate_errors

LONGEST_SLEEP_MS = 50.0  # re-ask at least this often: the rate may have risen meanwhile
FRESH_REPORTS = 3  # a report stays fresh for this many report intervals
COOLDOWN_REPORTS = 2  # after a decrease, slow reports wait this many intervals (their windows predate it)
OVERHEAD_SAMPLES = 64


class Governor:
    """The worker side of the shared bucket; see the module docstring."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        settings: GovernorSettings,
        worker: str,
        *,
        stop: threading.Event | None = None,
        cluster: bool = False,
    ) -> None:
        self.key = keys.governor()
        self.settings = settings
        self.worker = worker
        self._stop = stop or threading.Event()
        self._script = Scripts(redis)["governor_take"]
        # standalone: the pipeline's server time is read from the server's CPU clock around it
        clock = Call((), route=self.key, script="governor_clock", keys=(self.key,))
        self._marks = None if cluster else (clock, clock)
        self._lock = threading.Lock()
        self._owed = 0.0
        self._rtts: deque[float] = deque(maxlen=OVERHEAD_SAMPLES)
        self.rate = settings.duty_cycle
        self.waits = 0  # admits that had to wait (this process)
        self.waited_s = 0.0

    @property
    def overhead_ms(self) -> float:
        """The smallest recent round trip of a bucket call: what a pipeline's round trip costs the
        server nothing for (the network and both sides' client code)."""
        rtts = self._rtts
        return min(rtts) if rtts else 0.0

    @property
    def scale(self) -> float:
        """Pipelines shrink with the rate (a backoff halves both): their length sets the lookups' p99."""
        return min(1.0, self.rate / self.settings.duty_cycle)

    def marks(self) -> tuple[Call, Call] | None:
        return self._marks

    def server_ms(self, before: Any, after: Any) -> float | None:
        try:
            ms = (float(after) - float(before)) * 1000
        except (TypeError, ValueError):  # an error reply: fall back to the round trip
            return None
        return ms if ms >= 0 else None

    def admit(self, expected_ms: float) -> None:
        while True:
            wait_ms = self._take(max(expected_ms, 0.01))
            if wait_ms <= 0:
                return
            pause = min(wait_ms, LONGEST_SLEEP_MS) / 1000
            self.waits += 1
            self.waited_s += pause
            time.sleep(pause)  # not the stop event: a warm shutdown still finishes the batch in hand

    def pay(self, server_ms: float) -> None:
        with self._lock:
            self._owed += server_ms

    def settle(self) -> None:
        self._take(0.0)  # pays, and ends this caller's lease at once

    def _take(self, expected_ms: float) -> float:
        with self._lock:
            owed, self._owed = self._owed, 0.0
        s = self.settings
        args = [
            f"{owed:.4f}",
            f"{expected_ms:.3f}",
            s.duty_cycle,
            s.burst_ms,
            s.foreground_ratio,
            s.decrease,
            s.increase,
            s.min_duty,
            int(s.report_interval * 1000 * FRESH_REPORTS),
            self.worker,
            f"{self.worker}:{threading.get_ident()}",
            int(s.report_interval * 1000 * COOLDOWN_REPORTS),
        ]
        began = time.perf_counter()
        try:
            with translate_errors("ask the governor for server time"):
                reply = self._script(keys=[self.key], args=args)
        except BaseException:
            self.pay(owed)  # not sent: owed again
            raise
        self._rtts.append((time.perf_counter() - began) * 1000)
        self.rate = float(reply[1])
        return float(reply[0])

    def forget(self, redis: Any) -> None:
        """Drop this process's own counter (on a clean shutdown); the totals stay."""
        with translate_errors("clean up the governor"):
            redis.hdel(self.key, f"spent:{self.worker}")

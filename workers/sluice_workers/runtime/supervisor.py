"""`--processes N`: run N single-process workers as child processes and keep them running.

Children are the same CLI with `--processes 1`, so a child is exactly what a user would run by
hand. Signals are forwarded: the first asks every child to finish its batch, a second kills them.
A child that dies unexpectedly is restarted after a pause that doubles while children keep dying
soon after they start. A child that exits with status 2 (a configuration error: bad settings, a
refused password, a missing extra) is not restarted: restarting cannot fix it, so the supervisor
stops the others and exits with 2 too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)

RESTART_PAUSE = 1.0
MAX_RESTART_PAUSE = 30.0
STABLE_AFTER = 10.0  # a child that ran this long resets the pause
CONFIG_ERROR = 2  # the CLI's exit status for errors a restart cannot fix
POLL = 0.2


def _spawn(argv: Sequence[str], index: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SLUICE_WORKER_INDEX": str(index)}
    return subprocess.Popen([sys.executable, "-m", "sluice_workers.cli.main", *argv], env=env)


class _Children:
    def __init__(self, argv: Sequence[str], processes: int) -> None:
        self.argv = list(argv)
        now = time.monotonic()
        self.procs = {i: _spawn(self.argv, i) for i in range(processes)}
        self.started = dict.fromkeys(self.procs, now)
        self.restart_at: dict[int, float] = {}
        self.pause = RESTART_PAUSE
        self.signals = 0
        self.fatal = False

    def signal_all(self, sig: int) -> None:
        for child in self.procs.values():
            if child.poll() is None:
                child.send_signal(sig)

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        self.restart_at.clear()
        self.signal_all(signal.SIGTERM if self.signals == 1 else signal.SIGKILL)

    @property
    def stopping(self) -> bool:
        return bool(self.signals) or self.fatal

    def step(self) -> bool:
        """One round: note exits, schedule and run restarts; False once nothing is left to do."""
        now = time.monotonic()
        for i, child in self.procs.items():
            code = child.poll()
            if code is None or code == 0 or self.stopping or i in self.restart_at:
                continue
            if code == CONFIG_ERROR:
                log.error(
                    "worker process %d (pid %d) exited with %d: a configuration error (its message is "
                    "above); not restarting, stopping the others",
                    i,
                    child.pid,
                    code,
                )
                self.fatal = True
                self.restart_at.clear()
                self.signal_all(signal.SIGTERM)
                break
            self.pause = RESTART_PAUSE if now - self.started[i] >= STABLE_AFTER else self.pause
            log.warning(
                "worker process %d (pid %d) exited with %d; restarting in %.0fs",
                i,
                child.pid,
                code,
                self.pause,
            )
            self.restart_at[i] = now + self.pause
            self.pause = min(self.pause * 2, MAX_RESTART_PAUSE)
        for i, at in list(self.restart_at.items()):
            if at <= now and not self.stopping:
                del self.restart_at[i]
                self.procs[i] = _spawn(self.argv, i)
                self.started[i] = now
        return bool(self.restart_at) or any(c.poll() is None for c in self.procs.values())

    def exit_code(self) -> int:
        if self.fatal:
            return CONFIG_ERROR
        return 0 if all(c.returncode == 0 for c in self.procs.values()) else 1


def supervise(child_argv: Sequence[str], processes: int) -> int:
    children = _Children(child_argv, processes)
    signal.signal(signal.SIGTERM, children.on_signal)
    signal.signal(signal.SIGINT, children.on_signal)
    log.info("supervising %d worker processes: %s", processes, [c.pid for c in children.procs.values()])
    while children.step():
        time.sleep(POLL)
    return children.exit_code()

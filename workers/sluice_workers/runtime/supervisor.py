"""`--processes N`: run N single-process workers as child processes and keep them running.

Children are the same CLI with `--processes 1`, so a child is exactly what a user would run by
hand. Signals are forwarded: the first asks every child to finish its batch, a second kills them.
A child that dies unexpectedly is restarted after a short pause.
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


def _spawn(argv: Sequence[str], index: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SLUICE_WORKER_INDEX": str(index)}
    return subprocess.Popen([sys.executable, "-m", "sluice_workers.cli.main", *argv], env=env)


def supervise(child_argv: Sequence[str], processes: int) -> int:
    children = {i: _spawn(child_argv, i) for i in range(processes)}
    signals_seen = 0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        sig = signal.SIGTERM if signals_seen == 1 else signal.SIGKILL
        for child in children.values():
            if child.poll() is None:
                child.send_signal(sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("supervising %d worker processes: %s", processes, [c.pid for c in children.values()])
    while True:
        alive = False
        for i, child in list(children.items()):
            code = child.poll()
            if code is None:
                alive = True
            elif not signals_seen and code != 0:
                log.warning("worker process %d (pid %d) exited with %d; restarting", i, child.pid, code)
                time.sleep(RESTART_PAUSE)
                children[i] = _spawn(child_argv, i)
                alive = True
        if not alive:
            break
        time.sleep(0.2)
    codes = [c.returncode for c in children.values()]
    return 0 if all(code == 0 for code in codes) else 1

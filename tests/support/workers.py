"""Workers for tests: in a thread of the test process, or as real `sluice worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from sluice.settings import Settings
from sluice_workers.handlers.base import Handler
from sluice_workers.runtime.process import ProcessSummary, run_process


class ThreadWorker:
    """`run_process` in a thread; `stop()` is the warm shutdown a first SIGTERM triggers."""

    def __init__(self, settings: Settings, handlers: Mapping[str, Handler] | None = None) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.summary: ProcessSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(handlers,), daemon=True)

    def _run(self, handlers: Mapping[str, Handler] | None) -> None:
        try:
            self.summary = run_process(self.settings, 0, self.stop_event, handlers=handlers)
        except BaseException as e:
            self.error = e

    def start(self) -> ThreadWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 20) -> ProcessSummary:
        self.stop_event.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "worker thread did not stop"
        if self.error:
            raise self.error
        assert self.summary is not None
        return self.summary

    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> ThreadWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """Environment that makes `sluice worker` use these settings (what a deployment would set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_REDIS__URL"] = settings.redis.url.get_secret_value()
    env["SLUICE_NAMESPACE"] = settings.namespace
    for section in ("queue", "worker", "governor"):
        model = getattr(settings, section)
        for name, value in model.model_dump().items():
            if value is not None and not isinstance(value, (list, dict)):
                env[f"SLUICE_{section.upper()}__{name.upper()}"] = str(value)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ProcessWorker:
    """A real `sluice worker` child process, stopped (or killed) by pid."""

    def __init__(self, settings: Settings, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.cmd = [sys.executable, "-m", "sluice_workers.cli.main", "worker", *args]
        self.env = dict(env or worker_env(settings))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - a pipe could fill up and stall a chatty worker

    def start(self) -> ProcessWorker:
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> tuple[int, str]:
        """SIGTERM, wait, and return (exit code, output)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode, self.output()

    def __enter__(self) -> ProcessWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate(10)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

"""`sluice demo`: the main job end to end, with no configuration.

Starts an embedded Redis when `SLUICE_REDIS__URL` is unset or unreachable, starts two worker
processes, pushes work through the streams, reads it back synchronously through the facade,
prints a summary, and stops everything it started (unless `--keep`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sluice.connection.factory import connect
from sluice.errors import SluiceError
from sluice.facade.client import Client
from sluice.ops.workers import live_workers
from sluice.settings import Settings
from sluice_workers.cli.extras import require
from sluice_workers.demo.steps import demo_environment, run_steps
from sluice_workers.server.embedded import EmbeddedRedis


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the main job end to end (embedded Redis if none is configured)")
    p.add_argument("--keep", action="store_true", help="leave the server and workers running")
    p.add_argument("--turns", type=int, default=20, help="conversation turns to play (default 20)")
    p.set_defaults(run=run)


def _reachable(settings: Settings) -> bool:
    if "SLUICE_REDIS__URL" not in os.environ:
        return False
    try:
        connect(settings.redis).ping()
        return True
    except Exception:
        return False


@contextmanager
def _redis_for(settings: Settings, keep: bool) -> Iterator[tuple[str, str]]:
    if _reachable(settings):
        yield settings.redis.url.get_secret_value(), "your Redis (SLUICE_REDIS__URL)"
        return
    server = EmbeddedRedis().start()
    try:
        pid = server.process.pid if server.process else 0
        version = ".".join(map(str, server.binary.version))
        yield server.url, f"embedded redis-server {version} pid {pid} ({server.binary.note})"
    finally:
        if keep:
            print(f"kept: redis-server pid {server.process.pid if server.process else '?'} at {server.url}")
        else:
            server.stop()


def _start_workers(url: str, namespace: str, logs: str, n: int = 2) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "SLUICE_REDIS__URL": url, "SLUICE_NAMESPACE": namespace}
    cmd = [sys.executable, "-m", "sluice_workers.cli.main", "worker"]
    out = []
    for i in range(n):
        with open(os.path.join(logs, f"worker-{i}.log"), "wb") as log:
            out.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    return out


READY_TIMEOUT = 120.0  # a fresh, busy machine may take long to import the workers' dependencies


def _wait_ready(client: Client, workers: list[subprocess.Popen[bytes]], logs: str) -> float:
    """Block until every worker has sent its first heartbeat (the demo times its steps from then);
    a worker that exits or a slow start beyond READY_TIMEOUT is an error (`run` prints their logs)."""
    began = time.monotonic()
    while len(live_workers(client.redis, client.keys)) < len(workers):
        if any(w.poll() is not None for w in workers) or time.monotonic() - began > READY_TIMEOUT:
            raise SluiceError(
                f"the demo's workers did not start within {READY_TIMEOUT:.0f} s (their logs are above)"
            )
        time.sleep(0.1)
    return time.monotonic() - began


def _explain(workers: list[subprocess.Popen[bytes]], logs: str) -> str:
    lines = []
    for i, w in enumerate(workers):
        state = "running" if w.poll() is None else f"exited with {w.returncode}"
        with open(os.path.join(logs, f"worker-{i}.log"), encoding="utf-8", errors="replace") as f:
            tail = f.read()[-1500:]
        lines.append(f"--- worker {i} (pid {w.pid}, {state}):\n{tail}")
    return "\n".join(lines)


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=15)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def _command() -> str:
    """How to run this `sluice`: the bare name when it is the one on PATH, else its path."""
    here = Path(sys.executable).parent / "sluice"
    on_path = shutil.which("sluice")
    if on_path and Path(on_path).resolve() == here.resolve():
        return "sluice"
    if here.exists():
        return os.path.relpath(here) if not os.path.relpath(here).startswith("..") else str(here)
    return "sluice"


def run(args: argparse.Namespace, settings: Settings) -> int:
    require("worker", "demo")  # the demo starts worker processes
    os.environ.update(demo_environment())  # MiniLM by name for the client and the workers, if installed
    namespace = f"demo{int(time.time())}"
    with _redis_for(settings, args.keep) as (url, where):
        print(f"sluice demo on {where}: {url}")
        client = Client.from_url(url, namespace=namespace)
        logs = tempfile.mkdtemp(prefix="sluice-demo-")
        workers = _start_workers(url, namespace, logs)
        print(f"started 2 worker processes: pids {[w.pid for w in workers]}")
        try:
            print(f"workers ready after {_wait_ready(client, workers, logs):.1f} s")
            steps = run_steps(client, args.turns)
            status = client.status()
        except SluiceError:
            print(_explain(workers, logs), file=sys.stderr)
            raise
        finally:
            client.close()
            if not args.keep:
                _stop_workers(workers)
        print()
        print(f"| {'step':<38} | {'n':>6} | {'time s':>7} | {'p50 ms':>8} | {'p99 ms':>8} | result")
        print(f"|{'-' * 40}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 10}|-------")
        for step in steps:
            print(step.row())
        t = status.totals()
        print(f"\nqueues: backlog {t['backlog']}, pending {t['pending']}, dead letters {t['dead_letters']}")
        command = _command()
        print("\nNext, against your own Redis:")
        print(f"  SLUICE_REDIS__URL=redis://host:6379/0 {command} worker --processes 2")
        print(f"  SLUICE_REDIS__URL=redis://host:6379/0 {command} status --watch")
        if command != "sluice":
            print(f"  (`sluice` is not on your PATH: use {command}, or activate its environment)")
        if args.keep:
            print(f"kept: workers {[w.pid for w in workers]} (namespace {namespace})")
    return 0

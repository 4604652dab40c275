"""`sluice worker`: consume job streams (and `--check` for health probes)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from typing import Any

from sluice.connection.factory import connect, plan_connection
from sluice.keys import Keys
from sluice.ops.workers import check
from sluice.settings import Settings
from sluice.types import JOB_KINDS
from sluice_workers.cli.extras import require


class _Overrides(argparse.Action):
    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None) -> None:
        overrides = dict(getattr(namespace, "worker_overrides", {}) or {})
        overrides[self.dest] = values
        namespace.worker_overrides = overrides


def add_parser(sub: Any) -> None:
    p = sub.add_parser("worker", help="consume jobs and write the stores")
    p.add_argument(
        "--kinds", nargs="+", choices=JOB_KINDS, action=_Overrides, help="job kinds (default: all)"
    )
    p.add_argument("--processes", type=int, action=_Overrides, help="worker processes (default 1)")
    p.add_argument(
        "--concurrency", type=int, action=_Overrides, help="consumer threads per process (default 1)"
    )
    p.add_argument("--batch-size", dest="batch_size", type=int, action=_Overrides, help="entries per read")
    p.add_argument("--metrics-port", dest="metrics_port", type=int, action=_Overrides, help="Prometheus port")
    p.add_argument("--check", action="store_true", help="exit 0 if a worker on this host is alive (probes)")
    p.set_defaults(run=run, worker_overrides={})


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.check:
        redis = connect(settings.redis)
        ok, why = check(
            redis,
            Keys(settings.namespace, settings.queue.partitions),
            max_age=settings.worker.heartbeat_interval * 3,
            host=socket.gethostname(),
        )
        print(why)
        return 0 if ok else 1
    require("worker", "worker")
    from sluice_workers.runtime.process import install_signals, run_process, validate
    from sluice_workers.runtime.supervisor import supervise

    if settings.worker.processes > 1:
        validate(settings)  # a configuration error exits with 2 before any child starts
        plan_connection(settings.redis)  # so does a bad URL or TLS option (no round trip)
        child = _drop_value(sys.argv[1:], "--processes")
        return supervise([*child, "--processes", "1"], settings.worker.processes)
    stop = threading.Event()
    install_signals(stop)
    run_process(settings, int(os.environ.get("SLUICE_WORKER_INDEX", "0")), stop)
    return 0


def _drop_value(argv: list[str], flag: str) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == flag:
            skip = True
            continue
        if a.startswith(flag + "="):
            continue
        out.append(a)
    return out

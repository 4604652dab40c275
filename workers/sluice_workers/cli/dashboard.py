"""`sluice dashboard`: the operators' web page (needs the `dashboard` extra)."""

from __future__ import annotations

import argparse
from typing import Any

from sluice.settings import Settings
from sluice_workers.cli.extras import require


def add_parser(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="a web page of queues, workers, dead letters and stores")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; SLUICE_DASHBOARD__HOST)")
    p.add_argument("--port", type=int, help="port (default 8470, 0 = a free one; SLUICE_DASHBOARD__PORT)")
    p.add_argument(
        "--read-only",
        dest="read_only",
        action="store_true",
        default=None,
        help="refuse retry and purge of dead letters (SLUICE_DASHBOARD__READ_ONLY)",
    )
    p.set_defaults(run=run)


def with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k) for k in ("host", "port", "read_only") if getattr(args, k) is not None}
    dashboard = settings.dashboard.model_validate({**settings.dashboard.model_dump(), **overrides})
    return settings.model_copy(update={"dashboard": dashboard})


def run(args: argparse.Namespace, settings: Settings) -> int:
    require("dashboard", "dashboard")
    from sluice_workers.dashboard.server import serve

    serve(with_overrides(settings, args))
    return 0

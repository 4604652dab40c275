"""Serving the app with uvicorn: in the foreground (`serve`) or in a thread (`DashboardServer`).

The thread form is what tests and the screenshot script use: it binds the port first (0 picks a
free one), so the URL is known before the first request.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

import uvicorn

from sluice.connection.capabilities import probe
from sluice.connection.factory import connect
from sluice.errors import ConfigError
from sluice.settings import Settings
from sluice_workers.dashboard.app import create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to offer retry/purge to a network without a token."""
    d = settings.dashboard
    if not is_loopback(d.host) and d.token is None and not d.read_only:
        raise ConfigError(
            f"the dashboard would listen on {d.host} with no token and with actions enabled; set "
            "SLUICE_DASHBOARD__TOKEN, or pass --read-only, or bind to 127.0.0.1 (the default)"
        )


class DashboardServer:
    """uvicorn in a daemon thread on an already-bound socket; `stop()` shuts it down."""

    def __init__(self, settings: Settings, redis: Any | None = None) -> None:
        check_exposure(settings)
        self.settings = settings
        self.redis = redis if redis is not None else connect(settings.redis)
        cluster = probe(self.redis).cluster
        self.app = create_app(settings, self.redis, cluster=cluster)
        family = socket.AF_INET6 if ":" in settings.dashboard.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((settings.dashboard.host, settings.dashboard.port))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="sluice-dashboard", daemon=True)

    @property
    def url(self) -> str:
        host = self.settings.dashboard.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 15.0) -> DashboardServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(settings: Settings) -> None:
    """Run in the foreground until Ctrl-C (uvicorn handles the signals)."""
    server = DashboardServer(settings)
    mode = ", read-only" if settings.dashboard.read_only else ""
    print(f"sluice dashboard on {server.url}/ (namespace {settings.namespace}{mode}); Ctrl-C to stop")
    try:
        server.server.run(sockets=[server.sock])
    finally:
        server.sock.close()

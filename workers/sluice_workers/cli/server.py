"""`sluice server`: a local Redis for development, with a data directory and AOF on."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from sluice.settings import Settings
from sluice_workers.server.embedded import EmbeddedRedis, find_binary


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "server", help="run a local Redis (Redis 8 + RediSearch from the sluice[server] extra)"
    )
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--dir", default=os.path.join(".sluice", "redis"), help="data directory (AOF lives here)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    binary = find_binary()
    server = EmbeddedRedis(binary=binary, port=args.port, data_dir=os.path.abspath(args.dir))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    try:
        print(f"redis-server {'.'.join(map(str, binary.version))} at {binary.path}")
        print(f"  {binary.note}")
        print(f"  data directory {server.data_dir} (AOF on)")
        print(f"\nexport SLUICE_REDIS__URL={server.url}\n\nCtrl-C stops it.", flush=True)
        while not stop.wait(0.5):
            if server.process is not None and server.process.poll() is not None:
                print(
                    f"redis-server exited with {server.process.returncode}; see {server.data_dir}/redis.log"
                )
                return 1
    finally:
        server.stop()
        print("stopped")
    return 0

"""Live workers as their heartbeats report them; `check` backs `sluice worker --check`.

Kubernetes and docker-compose use that check as the liveness/health probe.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sluice.keys import Keys
from sluice.transport.translate import translate_errors


def live_workers(redis: Any, keys: Keys) -> list[dict[str, Any]]:
    """Workers whose heartbeat key still exists (bounded: the registry holds worker ids only)."""
    with translate_errors("read workers"):
        ids = [i.decode() if isinstance(i, bytes) else i for i in redis.zrange(keys.workers(), 0, -1)]
        if not ids:
            return []
        pipe = redis.pipeline(transaction=False)
        for i in ids:
            pipe.get(keys.worker(i))
        bodies = pipe.execute()
        stale = [i for i, b in zip(ids, bodies, strict=True) if b is None]
        if stale:
            redis.zrem(keys.workers(), *stale)
    return [json.loads(b) for b in bodies if b is not None]


def check(redis: Any, keys: Keys, max_age: float, host: str | None = None) -> tuple[bool, str]:
    """True when a worker (on `host`, if given) beat within `max_age` seconds."""
    now = time.time()
    for w in live_workers(redis, keys):
        if (host is None or w.get("host") == host) and now - float(w.get("beat", 0)) <= max_age:
            return True, f"worker {w['id']} beat {now - float(w['beat']):.1f}s ago"
    where = f" on host {host}" if host else ""
    return False, f"no worker{where} beat in the last {max_age:.0f}s"

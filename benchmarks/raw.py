"""The floor: a minimal XREADGROUP/XACK loop in plain redis-py, fed by pipelined XADD.

No envelope, no validation, no versioned writes, no reclaim, no dead letters: what any Streams
consumer costs at least. One stream, one group, N worker processes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis as redis_py

from benchmarks import workload

STREAM = "raw:jobs"
GROUP = "workers"
FIELD = "job"


def setup(r: Any) -> None:
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)


def feed(r: Any, first: int, n: int, chunk: int) -> None:
    """Pipelined XADD, `chunk` entries per round trip (the bulk-producer path)."""
    for start in range(first, first + n, chunk):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(start + chunk, first + n)):
            body = workload.job(i)
            body["created"] = time.time()
            pipe.xadd(STREAM, {FIELD: json.dumps(body)})
        pipe.execute()


def add_one(r: Any, i: int) -> None:
    """One XADD per job (the latency case)."""
    body = workload.job(i)
    body["created"] = time.time()
    r.xadd(STREAM, {FIELD: json.dumps(body)})


def worker(url: str, mode: str, consumer: str, stop: Any, count: int, block_ms: int) -> None:
    """Read a batch, apply it (nothing / HSET per job), XACK + count in one pipeline."""
    r = redis_py.Redis.from_url(url)
    latencies: list[float] = []
    while not stop.is_set():
        reply = r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=block_ms)
        if not reply:
            continue
        entries = reply[0][1]
        pipe = r.pipeline(transaction=False)
        if mode == "hash":
            for eid, fields in entries:
                body = json.loads(fields[FIELD.encode()])
                pipe.hset(workload.hash_key(body["prompt"]), mapping=workload.hash_fields(body, eid.decode()))
        elif mode == "latency":
            now = time.time()
            for _, fields in entries:
                body = json.loads(fields[FIELD.encode()])
                if not workload.is_warmup(body["prompt"]):
                    latencies.append(now - body["created"])
        pipe.xack(STREAM, GROUP, *[eid for eid, _ in entries])
        pipe.incrby(workload.DONE, len(entries))
        pipe.execute()
    if latencies:
        workload.push_latencies(r, latencies)
    r.close()


def pending(r: Any) -> int:
    return int(r.xpending(STREAM, GROUP)["pending"])

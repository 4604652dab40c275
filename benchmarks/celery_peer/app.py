"""The Celery 5 app of the benchmarks: Redis broker on the benchmark server, no result backend.

Every task increments a completions counter in Redis (`bench:done`) after its effect: Celery has
no cheap way to tell that N tasks finished, and the counter costs one INCR per task.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis as redis_py
from celery import Celery

from benchmarks import workload

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = "bench"

app = Celery("bench", broker=URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_redirect_stdouts=False,
)

_clients: dict[int, Any] = {}


def _redis() -> Any:
    """One connection per (forked) pool process."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis_py.Redis.from_url(URL)
    return _clients[pid]


@app.task(name="bench.noop")
def noop(job: dict[str, Any]) -> None:
    _redis().incr(workload.DONE)


@app.task(name="bench.hash", bind=True)
def write_hash(self: Any, job: dict[str, Any]) -> None:
    pipe = _redis().pipeline(transaction=False)
    version = str(self.request.id)
    pipe.hset(workload.hash_key(job["prompt"]), mapping=workload.hash_fields(job, version))
    pipe.incr(workload.DONE)
    pipe.execute()


@app.task(name="bench.latency")
def latency(job: dict[str, Any]) -> None:
    now = time.time()
    pipe = _redis().pipeline(transaction=False)
    pipe.rpush(workload.LATENCIES, now - float(job["created"]))
    pipe.incr(workload.DONE)
    pipe.execute()


TASKS = {"noop": noop, "hash": write_hash, "latency": latency}

"""Run one Celery case and print its measurements as one JSON line on stdout.

`python -m benchmarks.celery_peer.drive --url URL --case noop|hash|latency --n N [--rate R]`
starts `celery worker --pool prefork -c 2` as a child, warms it up, measures, stops it.
Runs in any Python with celery[redis] (the runner's own, or benchmarks/.venv-peers).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WARMUP = 20


def start_worker(url: str, concurrency: int) -> tuple[subprocess.Popen[bytes], object]:
    env = dict(os.environ, BENCH_REDIS_URL=url, PYTHONPATH=str(ROOT))
    log = tempfile.TemporaryFile()  # noqa: SIM115 - a pipe could fill up and stall the worker
    cmd = [
        sys.executable, "-m", "celery", "-A", "benchmarks.celery_peer.app", "worker",
        "--pool", "prefork", "-c", str(concurrency), "--loglevel", "WARNING", "-Q", "bench",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return proc, log


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # warm shutdown of the main process and its pool
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this script created for it
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--case", choices=["noop", "hash", "latency"], required=True)
    ap.add_argument("--n", type=int, required=True, help="jobs (latency: rate * duration)")
    ap.add_argument("--rate", type=float, default=1000.0, help="jobs/s in the latency case")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    os.environ["BENCH_REDIS_URL"] = args.url
    sys.path.insert(0, str(ROOT))
    import redis as redis_py

    from benchmarks import workload
    from benchmarks.celery_peer.app import TASKS, noop

    r = redis_py.Redis.from_url(args.url)
    proc, log = start_worker(args.url, args.concurrency)
    out: dict[str, object] = {"case": args.case, "n": args.n}
    try:
        for i in range(WARMUP):
            noop.apply_async(args=[workload.job(-1 - i)])
        count, _ = workload.wait_count(r, WARMUP, 120, 0.01)
        if count < WARMUP:
            raise SystemExit(f"celery worker did not start: {count}/{WARMUP} warm-up tasks done")
        r.delete(workload.DONE, workload.LATENCIES)
        task = TASKS[args.case]
        t0 = time.monotonic()
        if args.case == "latency":
            for i in range(args.n):
                target = t0 + i / args.rate
                delay = target - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                body = workload.job(i)
                body["created"] = time.time()
                task.apply_async(args=[body])
        else:
            for i in range(args.n):
                task.apply_async(args=[workload.job(i)])
        t_enq = time.monotonic()
        count, t1 = workload.wait_count(r, args.n, args.timeout, 0.002)
        out.update(
            completed=count,
            seconds=t1 - t0,
            enqueue_seconds=t_enq - t0,
            latencies=workload.read_latencies(r) if args.case == "latency" else [],
        )
    finally:
        stop_worker(proc)
        log.seek(0)  # type: ignore[attr-defined]
        tail = log.read()[-2000:].decode(errors="replace")  # type: ignore[attr-defined]
        if proc.returncode not in (0, -signal.SIGTERM):
            out["worker_log_tail"] = tail
    print(json.dumps(out))


if __name__ == "__main__":
    main()

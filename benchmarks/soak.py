"""Soak: a bounded mixed workload for a few minutes, with memory over time and Jepsen-style accounting.

    python -m benchmarks.soak --seconds 240        # what `make soak` runs
    python -m benchmarks.soak --seconds 20 --rate 0.3   # a quick look

An embedded Redis 8 (RediSearch + JSON, AOF on) and `--workers` real `sluice worker` processes; in
this process, writers for every job kind (history appends, exact and semantic cache fills,
cache-warm jobs, index upserts and deletes, and with `sluice[langgraph]` checkpoints and store
puts: `benchmarks.soak_langgraph`) and readers in parallel (history, both caches, vector search,
checkpoints, store items). Stored data is bounded (TTLs, trimmed histories, a rolling set of document ids), so memory
should level off after the warm-up. Every `--sample` seconds: Redis `used_memory` and RSS, each
worker's and this process's RSS (/proc), backlog, pending, dead letters.

After the writers stop and the queues drain: jobs enqueued per kind, applied and dead-lettered (the
workers' per-minute counters), and data checks: audit sessions and audit cache entries (no TTL)
hold everything sent, the index holds exactly the live documents, the audit checkpoint thread
lists every checkpoint put on it and the audit store namespace holds every item. Results under
`benchmarks/results/` (git-ignored): `soak-<stamp>.json`, `.md`, `.png` and `soak-latest.*`. Exit
code 1 if anything was lost or dead-lettered, or (runs of 2 minutes or more) memory kept growing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation
from pydantic import SecretStr

from benchmarks.common import percentile
from benchmarks.soak_langgraph import langgraph_load
from sluice.facade.client import Client
from sluice.jobs.models import CacheWarmPayload, IndexDocument
from sluice.models.registry import ModelRegistry
from sluice.settings import ComponentSpec, RedisSettings, Settings
from sluice.types import JOB_KINDS
from sluice.vectors import IndexSchema, MetadataField, ingest
from sluice_workers.server.embedded import EmbeddedRedis

RESULTS = Path(__file__).resolve().parent / "results"
NAMESPACE = "soak"
DIMS = 64
TTL = 45.0  # seconds every load entry lives: memory levels off once the first ones expire
AUDIT = 4  # audit sessions (no TTL): every message sent must be there at the end
SESSIONS, PROMPTS, DOC_IDS = 60, 400, 200  # small enough that every set fills up within the warm-up
WORDS = [
    "redis",
    "stream",
    "worker",
    "cache",
    "vector",
    "index",
    "session",
    "prompt",
    "answer",
    "model",
    "queue",
    "memory",
    "latency",
]
MAX_GROWTH = 0.10  # memory may grow at most this fraction of its mean over the measured window


def _pool(size: int, words: int) -> list[str]:
    rng = random.Random(size * words)
    return [" ".join(rng.choice(WORDS) for _ in range(words)) + f" {i}" for i in range(size)]


# Bounded content: every cache (embeddings included) reaches a steady state, so growth means a leak.
TEXTS = {6: _pool(300, 6), 20: _pool(200, 20)}


def text(rng: random.Random, n: int = 6) -> str:
    return rng.choice(TEXTS[n])


def make_settings(url: str) -> Settings:
    hashing = ComponentSpec(import_path="sluice.embeddings.hashing:HashingEmbeddings", kwargs={"dims": DIMS})
    return Settings(
        namespace=NAMESPACE, redis=RedisSettings(url=SecretStr(url)), embedders={"hashing": hashing}
    )


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_REDIS__URL=settings.redis.url.get_secret_value(),
        SLUICE_NAMESPACE=settings.namespace,
        SLUICE_EMBEDDERS=json.dumps({n: s.model_dump() for n, s in settings.embedders.items()}),
        SLUICE_WORKER__BLOCK_MS="200",
    )
    return env


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Sample:
    t: float
    redis_used_mb: float
    redis_rss_mb: float
    workers_rss_mb: list[float]
    app_rss_mb: float
    backlog: int
    pending: int
    dead: int


@dataclass
class Tally:
    """What the load did; threads add to it under one lock."""

    enqueued: Counter[str] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)
    read_errors: Counter[str] = field(default_factory=Counter)
    write_errors: Counter[str] = field(default_factory=Counter)
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    audit_sent: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    audit_prompts: list[str] = field(default_factory=list)
    live_docs: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)


class Load:
    """Writer and reader threads at `rate` times the base rates, until `stop` is set."""

    def __init__(self, client: Client, rate: float, stop: threading.Event, tally: Tally) -> None:
        self.client, self.rate, self.stop, self.tally = client, rate, stop, tally
        self.history = {
            f"s{i}": client.chat_history(f"s{i}", ttl=TTL, max_messages=20, read_your_writes=False)
            for i in range(SESSIONS)
        }
        self.audit = {
            f"audit{i}": client.chat_history(f"audit{i}", read_your_writes=False) for i in range(AUDIT)
        }
        self.cache = client.llm_cache(ttl=TTL, read_your_writes=False)
        self.audit_cache = client.llm_cache(read_your_writes=False, record_hits=False)
        self.semantic = client.semantic_cache(
            client_embeddings(client), embedder="hashing", ttl=TTL, read_your_writes=False
        )
        schema = IndexSchema.for_dims(DIMS, MetadataField(name="kind", type="tag"))
        self.store = client.vectorstore("soak", "hashing", schema=schema, read_your_writes=False)
        self.store._open()
        self.llm_string = ModelRegistry(client.settings.models).llm_string("fake")
        self.graph = langgraph_load(client, self._count, tally.lock)  # None without sluice[langgraph]

    def threads(self) -> list[threading.Thread]:
        every = {  # base operations per second, each one job
            self.write_history: 20, self.write_cache: 25, self.write_semantic: 8, self.write_warm: 4,
            self.write_index: 6, self.write_audit: 4, self.read_history: 20, self.read_cache: 30,
            self.read_semantic: 10, self.read_vectors: 10,
        }  # fmt: skip
        if self.graph is not None:
            every |= self.graph.writers() | self.graph.readers()
        return [
            threading.Thread(
                target=self._loop, args=(op, per_second * self.rate), name=op.__name__, daemon=True
            )
            for op, per_second in every.items()
        ]

    def _loop(self, op: Any, per_second: float) -> None:
        rng = random.Random(op.__name__)
        interval = 1.0 / max(per_second, 0.01)
        kind = "read" if op.__name__.startswith("read") else "write"
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                op(rng)
            except Exception as e:  # counted and reported, never silent
                with self.tally.lock:
                    errors = self.tally.read_errors if kind == "read" else self.tally.write_errors
                    errors[f"{op.__name__}: {type(e).__name__}: {str(e)[:80]}"] += 1
            elapsed = time.perf_counter() - started
            if kind == "read":
                with self.tally.lock:
                    self.tally.reads[op.__name__] += 1
                    self.tally.latency_ms[op.__name__].append(elapsed * 1000)
            self.stop.wait(max(0.0, interval - elapsed))

    def _count(self, kind: str, n: int = 1) -> None:
        with self.tally.lock:
            self.tally.enqueued[kind] += n

    # --- writers ---------------------------------------------------------------------------------------
    def write_history(self, rng: random.Random) -> None:
        self.history[f"s{rng.randrange(SESSIONS)}"].add_messages(
            [HumanMessage(text(rng)), HumanMessage(text(rng))]
        )
        self._count("history-append")

    def write_audit(self, rng: random.Random) -> None:
        session = f"audit{rng.randrange(AUDIT)}"
        with self.tally.lock:  # numbered in send order, per session
            n = len(self.tally.audit_sent[session])
            self.tally.audit_sent[session].append(n)
            self.audit[session].add_messages([HumanMessage(str(n))])
            prompt = f"audit prompt {sum(len(v) for v in self.tally.audit_sent.values())}"
            self.tally.audit_prompts.append(prompt)
        self.audit_cache.update(prompt, "audit-llm", [Generation(text=prompt)])
        self._count("history-append")
        self._count("cache-fill")

    def write_cache(self, rng: random.Random) -> None:
        self.cache.update(f"prompt {rng.randrange(PROMPTS)}", "soak-llm", [Generation(text=text(rng, 20))])
        self._count("cache-fill")

    def write_semantic(self, rng: random.Random) -> None:
        self.semantic.update(text(rng), "soak-llm", [Generation(text=text(rng, 20))])
        self._count("cache-fill")

    def write_warm(self, rng: random.Random) -> None:
        payload = CacheWarmPayload(
            model="fake", llm_string=self.llm_string, prompts=[f"warm {rng.randrange(500)}"], ttl=TTL
        )
        self._count("cache-warm", len(self.client.enqueue([payload])))

    def write_index(self, rng: random.Random) -> None:
        ids = [f"d{rng.randrange(DOC_IDS)}" for _ in range(3)]
        deletes = [f"d{rng.randrange(DOC_IDS)}"] if rng.random() < 0.3 else []
        docs = [
            IndexDocument(id=i, text=text(rng), metadata={"kind": rng.choice(WORDS)})
            for i in dict.fromkeys(ids)
        ]
        keys, limits = self.client.keys, self.client.settings.limits
        with self.tally.lock:  # one lock: the live set follows enqueue order, as the index does per id
            payloads = ingest.payloads(keys, limits, "soak", deletes=deletes) + ingest.payloads(
                keys, limits, "soak", upserts=docs
            )
            self._count("index", len(self.client.enqueue(payloads)))
            self.tally.live_docs.difference_update(deletes)
            self.tally.live_docs.update(d.id for d in docs)

    # --- readers ---------------------------------------------------------------------------------------
    def read_history(self, rng: random.Random) -> None:
        self.history[f"s{rng.randrange(SESSIONS)}"].get_recent(10)

    def read_cache(self, rng: random.Random) -> None:
        self.cache.lookup(f"prompt {rng.randrange(PROMPTS)}", "soak-llm")

    def read_semantic(self, rng: random.Random) -> None:
        self.semantic.lookup(text(rng), "soak-llm")

    def read_vectors(self, rng: random.Random) -> None:
        self.store.similarity_search(text(rng), k=4)


def client_embeddings(client: Client) -> Any:
    from sluice.embeddings.registry import EmbedderRegistry

    return EmbedderRegistry(client.settings.embedders).get("hashing")


def sample(client: Client, workers: list[subprocess.Popen[bytes]], t0: float) -> Sample:
    info = client.redis.info("memory")
    totals = client.status().totals()
    return Sample(
        round(time.monotonic() - t0, 1), info["used_memory"] / 2**20, info["used_memory_rss"] / 2**20,
        [round(rss_mb(w.pid), 1) for w in workers], round(rss_mb(os.getpid()), 1),
        totals["backlog"], totals["pending"], totals["dead_letters"],
    )  # fmt: skip


def counted(client: Client, first_minute: int, last_minute: int) -> dict[str, dict[str, int]]:
    """Applied and dead-lettered jobs per kind, from the workers' per-minute counters."""
    out: dict[str, dict[str, int]] = {}
    for kind in JOB_KINDS:
        applied = dead = 0
        for minute in range(first_minute, last_minute + 1):
            values = client.redis.hgetall(client.keys.stats(kind, minute))
            applied += int(values.get(b"applied", 0))
            dead += int(values.get(b"dead", 0))
        out[kind] = {"applied": applied, "dead": dead}
    return out


def audit(client: Client, tally: Tally, load: Load) -> dict[str, Any]:
    """Data checks: what was sent is stored, exactly."""
    sessions_ok = all(
        [int(str(m.content)) for m in client.chat_history(s).messages] == sent
        for s, sent in tally.audit_sent.items()
    )
    missing_prompts = sum(load.audit_cache.lookup(p, "audit-llm") is None for p in tally.audit_prompts)
    docs = load.store.session.count()
    graph = load.graph.audit() if load.graph is not None else {}
    return graph | {
        "audit_messages": sum(len(v) for v in tally.audit_sent.values()),
        "audit_sessions_exact": sessions_ok,
        "audit_cache_entries": len(tally.audit_prompts),
        "audit_cache_missing": missing_prompts,
        "index_documents": docs,
        "index_expected": len(tally.live_docs),
    }


def breakdown(client: Client) -> dict[str, float]:
    """KB per key family (the key with ids, digests and numbers masked), and the search indexes' own memory."""
    import re

    sizes: Counter[str] = Counter()
    for key in client.redis.scan_iter(match=f"{NAMESPACE}:*", count=1000):
        family = re.sub(r"\{[^}]*\}|[0-9a-f]{16,}|\d+", "#", key.decode(errors="replace"))
        sizes[family] += client.redis.memory_usage(key, samples=0) or 0
    for name in client.redis.execute_command("FT._LIST"):
        info = client.redis.ft(name.decode()).info()
        sizes[f"FT index {name.decode()} (total_index_memory)"] += (
            float(info.get("total_index_memory_sz_mb", 0)) * 2**20
        )
    return {k: round(v / 1024, 1) for k, v in sizes.most_common(12)}


def growth(samples: list[Sample], warmup: float, value: Any) -> float:
    """Least-squares growth of `value` over the samples after the warm-up, as a fraction of its mean."""
    points = [(s.t, value(s)) for s in samples if s.t >= warmup]
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt, mv = sum(t for t, _ in points) / n, sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    slope = sum((t - mt) * (v - mv) for t, v in points) / var if var else 0.0
    return slope * (points[-1][0] - points[0][0]) / mv if mv else 0.0


def plot(samples: list[Sample], warmup: float, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (redis_ax, procs, queue) = plt.subplots(3, 1, figsize=(10, 9), sharex=True, height_ratios=[2, 2, 1])
    ts = [s.t for s in samples]
    redis_ax.plot(ts, [s.redis_used_mb for s in samples], label="used_memory", lw=2)
    redis_ax.plot(ts, [s.redis_rss_mb for s in samples], label="RSS", ls="--")
    redis_ax.set_ylabel("Redis, MB")
    redis_ax.set_ylim(bottom=0)
    redis_ax.set_title("sluice soak: memory over time (grey line: end of warm-up)")
    for i in range(len(samples[0].workers_rss_mb) if samples else 0):
        procs.plot(ts, [s.workers_rss_mb[i] for s in samples], label=f"worker {i + 1}")
    procs.plot(ts, [s.app_rss_mb for s in samples], label="app (load generator)", ls=":")
    procs.set_ylabel("process RSS, MB")
    procs.set_ylim(bottom=0)
    queue.plot(ts, [s.backlog for s in samples], label="backlog")
    queue.plot(ts, [s.pending for s in samples], label="pending")
    queue.set_xlabel("seconds")
    for ax in (redis_ax, procs, queue):
        ax.axvline(warmup, color="grey", lw=0.8)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def markdown(r: dict[str, Any]) -> str:
    rows = [
        f"| {k} | {v['enqueued']:,} | {v['applied']:,} | {v['dead']:,} | {v['lost']:,} |"
        for k, v in r["jobs"].items()
    ]
    reads = [
        f"| {k} | {v['count']:,} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} | {v['errors']} |"
        for k, v in r["reads"].items()
    ]
    m = r["memory"]
    return "\n".join([
        f"## Soak: {r['seconds']} s, {r['workers']} workers, rate x{r['rate']}", "",
        "| kind | enqueued | applied | dead-lettered | lost |", "|---|---|---|---|---|", *rows, "",
        "| reader | reads | p50 ms | p99 ms | errors |", "|---|---|---|---|---|", *reads, "",
        f"- Redis used_memory after warm-up: {m['redis_used_mb_min']:.1f} to {m['redis_used_mb_max']:.1f} MB, growth {m['redis_growth']:+.1%}",
        f"- worker RSS growth after warm-up: {', '.join(f'{g:+.1%}' for g in m['workers_growth'])}",
        f"- data checks: {json.dumps(r['audit'])}",
        f"- write errors: {dict(r['write_errors']) or 'none'}; verdict: **{'OK' if r['ok'] else 'FAILED: ' + '; '.join(r['problems'])}**",
    ])  # fmt: skip


def run(
    seconds: float, workers: int = 2, rate: float = 1.0, every: float = 5.0, out: Path = RESULTS
) -> dict[str, Any]:
    redis = EmbeddedRedis().start()
    procs: list[subprocess.Popen[bytes]] = []
    logs = out / "soak-workers.log"
    out.mkdir(parents=True, exist_ok=True)
    try:
        settings = make_settings(redis.url)
        client = Client(settings)
        with logs.open("wb") as log:
            procs = [subprocess.Popen([sys.executable, "-m", "sluice_workers.cli.main", "worker"], env=worker_env(settings), stdout=log, stderr=subprocess.STDOUT) for _ in range(workers)]  # fmt: skip
            tally, stop = Tally(), threading.Event()
            load = Load(client, rate, stop, tally)
            first_minute, t0, samples = int(time.time() // 60), time.monotonic(), []
            threads = load.threads()
            for th in threads:
                th.start()
            while time.monotonic() - t0 < seconds:
                samples.append(sample(client, procs, t0))
                time.sleep(min(every, max(0.0, seconds - (time.monotonic() - t0))))
            stop.set()
            for th in threads:
                th.join(30)
            deadline = time.monotonic() + 120
            while (
                time.monotonic() < deadline and (t := client.status().totals())["backlog"] + t["pending"] > 0
            ):
                time.sleep(0.5)
            samples.append(sample(client, procs, t0))
            jobs = counted(client, first_minute - 1, int(time.time() // 60) + 1)
            checks = audit(client, tally, load)
            checks["memory_kb_by_family"] = breakdown(client)
        return report(seconds, workers, rate, samples, tally, jobs, checks, out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        redis.stop()


def report(
    seconds: float,
    workers: int,
    rate: float,
    samples: list[Sample],
    tally: Tally,
    jobs: dict[str, dict[str, int]],
    checks: dict[str, Any],
    out: Path,
) -> dict[str, Any]:
    warmup = min(max(0.25 * seconds, 2 * TTL), 0.5 * seconds)
    table = {
        k: {
            "enqueued": tally.enqueued[k],
            **jobs[k],
            "lost": max(0, tally.enqueued[k] - jobs[k]["applied"] - jobs[k]["dead"]),
        }
        for k in JOB_KINDS
        if tally.enqueued[k] or jobs[k]["applied"] or jobs[k]["dead"]
    }
    measured = [s for s in samples if s.t >= warmup] or samples
    memory = {
        "redis_used_mb_min": min(s.redis_used_mb for s in measured), "redis_used_mb_max": max(s.redis_used_mb for s in measured),
        "redis_growth": growth(samples, warmup, lambda s: s.redis_used_mb),
        "workers_growth": [growth(samples, warmup, lambda s, i=i: s.workers_rss_mb[i]) for i in range(workers)],
    }  # fmt: skip
    problems = [f"{k}: {v['lost']} lost" for k, v in table.items() if v["lost"]]
    problems += [f"{n} failed writes ({e})" for e, n in tally.write_errors.items()]
    problems += [f"{k}: {v['dead']} dead-lettered" for k, v in table.items() if v["dead"]]
    if (
        not checks["audit_sessions_exact"]
        or checks["audit_cache_missing"]
        or checks["index_documents"] != checks["index_expected"]
        or not checks.get("audit_checkpoints_exact", True)
        or not checks.get("audit_store_exact", True)
    ):
        problems.append(f"data check failed: {checks}")
    if seconds >= 120 and max([memory["redis_growth"], *memory["workers_growth"]]) > MAX_GROWTH:
        problems.append(f"memory grew after warm-up by more than {MAX_GROWTH:.0%}")
    reads = {k: {"count": n, "p50_ms": percentile(tally.latency_ms[k], 50), "p99_ms": percentile(tally.latency_ms[k], 99), "errors": sum(c for e, c in tally.read_errors.items() if e.startswith(k + ":"))} for k, n in tally.reads.items()}  # fmt: skip
    result = {
        "seconds": seconds, "workers": workers, "rate": rate, "warmup_seconds": warmup, "jobs": table,
        "reads": reads, "read_errors": dict(tally.read_errors), "write_errors": dict(tally.write_errors),
        "memory": memory, "audit": checks, "samples": [asdict(s) for s in samples], "problems": problems, "ok": not problems,
    }  # fmt: skip
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"soak-{stamp}", "soak-latest"):
        (out / f"{name}.json").write_text(json.dumps(result, indent=1))
        (out / f"{name}.md").write_text(markdown(result) + "\n")
        plot(samples, warmup, out / f"{name}.png")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=240.0, help="how long the load runs")
    p.add_argument("--workers", type=int, default=2, help="sluice worker processes")
    p.add_argument(
        "--rate", type=float, default=1.0, help="multiplier of the base rates (~110 jobs/s + 70 reads/s)"
    )
    p.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = p.parse_args(argv)
    result = run(args.seconds, args.workers, args.rate, args.sample, args.out)
    print(markdown(result))
    print(f"\nresults: {args.out}/soak-latest.{{json,md,png}}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""`make screenshot`: the dashboard under load, photographed by headless Chromium into docs/dashboard.png.

Starts a local Redis 8 (with RediSearch), two in-process workers exporting Prometheus metrics,
and the dashboard on a free loopback port; then keeps a steady load going (chat turns, cache
fills and lookups, vector index batches, a few jobs that fail for good) for `--seconds`, and
takes a full-page screenshot while the queues still hold work. Needs the dev extra and Debian's
`chromium` (`apt-get install chromium`); it never downloads a browser.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from playwright.sync_api import BrowserContext, sync_playwright
from pydantic import SecretStr

from sluice.embeddings.hashing import HashingEmbeddings
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload, IndexDocument, IndexPayload
from sluice.ops import cachestats
from sluice.settings import DashboardSettings, QueueSettings, RedisSettings, Settings, WorkerSettings
from sluice_workers.dashboard.server import DashboardServer
from sluice_workers.runtime.process import run_process
from sluice_workers.server.embedded import EmbeddedRedis

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOPICS = [
    "redis streams",
    "vector search",
    "semantic caching",
    "consumer groups",
    "HNSW graphs",
    "chat memory",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notes(topic: str, n: int, count: int) -> list[IndexDocument]:
    return [IndexDocument(id=f"d{n}-{i}", text=f"{topic} note {n}.{i}") for i in range(count)]


def load(client: Client, stop: threading.Event, burst: threading.Event) -> None:
    """A steady mix of traffic; `burst` queues a batch of index work faster than workers drain it."""
    rng = random.Random(7)
    cache = client.llm_cache(name="default", read_your_writes=False)
    semantic = client.semantic_cache(
        HashingEmbeddings(), embedder="hashing", name="semantic", read_your_writes=False
    )
    counts = {"default": cachestats.LookupCounts(), "semantic": cachestats.LookupCounts()}
    store = client.vectorstore("docs", "hashing")
    store.add_texts(
        [f"seed document about {t}" for t in TOPICS], ids=[f"seed-{i}" for i in range(len(TOPICS))]
    )
    n = 0
    while not stop.is_set():
        n += 1
        topic = rng.choice(TOPICS)
        prompt = f"What is {topic}? ({rng.randint(1, 40)})"
        found = cache.lookup(prompt, "model=fake")
        counts["default"].exact(found is not None)
        if found is None:
            cache.update(prompt, "model=fake", [Generation(text=f"{topic} explained")])
        if n % 4 == 0:  # the app counts its lookups (sluice.ops.cachestats) so the page shows hit rates
            asked = f"tell me about {topic} {rng.choice(['please', 'briefly', 'in detail', ''])}"
            hit = semantic.lookup_with_score(asked, "model=fake")
            counts["semantic"].semantic(hit is not None, hit.distance if hit else None)
            if hit is None:
                semantic.update(asked, "model=fake", [Generation(text=f"{topic}, briefly")])
        history = client.chat_history(f"user-{rng.randint(1, 30)}", read_your_writes=False)
        history.add_messages([HumanMessage(prompt), AIMessage(f"About {topic}.")])
        if n % 3 == 0:
            client.enqueue([IndexPayload(index="docs", upserts=notes(topic, n, 20), embedder="hashing")])
        if burst.is_set():  # a bulk import: more than the workers index in the next minute
            bulk = [
                IndexPayload(index="docs", upserts=notes(topic, -b, 20), embedder="hashing")
                for b in range(600)
            ]
            client.enqueue(bulk)
            burst.clear()
        if n % 400 == 0:  # jobs no worker can apply: they land in the dead letters
            bad = {"type": "alien", "data": {"content": "<b>not a LangChain message</b>"}}
            client.enqueue([HistoryAppendPayload(session_id=f"user-{n}", messages=[bad])])
            client.enqueue([IndexPayload(index="archive", upserts=notes(topic, n, 1), embedder="hashing")])
        if n % 10 == 0:
            for name, c in counts.items():
                cachestats.record(client.redis, client.keys, name, c.take())
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/dashboard.png")
    parser.add_argument("--seconds", type=float, default=75.0, help="load before the screenshot")
    args = parser.parse_args()
    with EmbeddedRedis(appendonly=False) as redis_server:
        metrics = free_port()  # worker i serves metrics on metrics + i
        base = Settings(
            namespace="demo",
            redis=RedisSettings(url=SecretStr(redis_server.url)),
            queue=QueueSettings(partitions=2),
            worker=WorkerSettings(block_ms=200, batch_size=16, heartbeat_interval=1.0, metrics_port=metrics),
            dashboard=DashboardSettings(
                port=0,
                refresh_seconds=2,
                metrics_urls=[f"http://127.0.0.1:{metrics + i}/metrics" for i in range(2)],
            ),
        )
        stop = threading.Event()
        workers = [threading.Thread(target=run_process, args=(base, i, stop), daemon=True) for i in range(2)]
        for w in workers:
            w.start()
        client = Client(base)
        burst = threading.Event()
        loader = threading.Thread(target=load, args=(client, stop, burst), daemon=True)
        loader.start()
        with DashboardServer(base) as dashboard, browser() as context:
            print(f"dashboard at {dashboard.url}/ ; load for {args.seconds:.0f}s")
            page = context.new_page()
            page.goto(f"{dashboard.url}/")  # open all along, as an operator would: it samples latency
            time.sleep(args.seconds)
            burst.set()
            time.sleep(3)
            page.reload()
            page.wait_for_selector("#totals")
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            stop.set()
        loader.join(10)
        for w in workers:
            w.join(20)
        client.close()
    print(f"wrote {args.out}")
    return 0


@contextlib.contextmanager
def browser() -> Iterator[BrowserContext]:
    """Debian's Chromium with a fresh profile (never a downloaded browser)."""
    with tempfile.TemporaryDirectory(prefix="sluice-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1360, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


if __name__ == "__main__":
    raise SystemExit(main())

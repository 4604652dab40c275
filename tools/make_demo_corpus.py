"""Regenerates the demo corpus (workers/sluice_workers/demo/corpus.jsonl) deterministically.

Short documents on a handful of topics, each with tag/numeric metadata so the demo can show
filtered search and MMR. Run: python tools/make_demo_corpus.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "redis": (
        [
            "Redis Streams",
            "consumer groups",
            "XAUTOCLAIM",
            "the AOF",
            "Redis Cluster",
            "Sentinel",
            "Lua scripts",
            "vector sets",
            "RediSearch",
            "client-side caching",
        ],
        [
            "keep messages until a consumer acknowledges them",
            "recover entries of crashed consumers",
            "make writes durable across restarts",
            "spread keys over hash slots",
            "fail over to a replica",
            "run several commands atomically",
            "answer nearest-neighbour queries",
            "index hashes for search",
            "invalidate cached keys from the server",
            "bound memory with eviction policies",
        ],
    ),
    "python": (
        [
            "asyncio",
            "type hints",
            "dataclasses",
            "generators",
            "the GIL",
            "pydantic models",
            "context managers",
            "decorators",
            "virtual environments",
            "pytest fixtures",
        ],
        [
            "make concurrent I/O simple",
            "catch bugs before running the code",
            "remove boilerplate from classes",
            "stream large data lazily",
            "limit CPU parallelism in threads",
            "validate untrusted input",
            "release resources reliably",
            "wrap behaviour around functions",
            "isolate project dependencies",
            "share setup between tests",
        ],
    ),
    "cooking": (
        [
            "sourdough bread",
            "a risotto",
            "fresh pasta",
            "a curry",
            "roast vegetables",
            "a vinaigrette",
            "pancakes",
            "a stir fry",
            "tomato soup",
            "a lemon tart",
        ],
        [
            "needs patience and a warm kitchen",
            "wants stock added a ladle at a time",
            "needs only flour and eggs",
            "gets depth from toasted spices",
            "caramelises in a hot oven",
            "balances acid and oil",
            "rests the batter before cooking",
            "cooks fast over high heat",
            "tastes better the next day",
            "needs a crisp shortcrust base",
        ],
    ),
    "astronomy": (
        [
            "Jupiter",
            "the Andromeda galaxy",
            "a solar eclipse",
            "the Milky Way",
            "Saturn's rings",
            "a comet",
            "the Moon",
            "a neutron star",
            "Mars",
            "the Orion nebula",
        ],
        [
            "is visible with binoculars",
            "lies two million light years away",
            "darkens the sky for minutes",
            "spans the summer sky",
            "are made of ice and rock",
            "grows a tail near the Sun",
            "always shows us the same face",
            "spins hundreds of times a second",
            "has the tallest volcano",
            "is a nursery of new stars",
        ],
    ),
    "gardening": (
        [
            "tomatoes",
            "roses",
            "compost",
            "a lawn",
            "herbs",
            "fruit trees",
            "seedlings",
            "potatoes",
            "a vegetable bed",
            "houseplants",
        ],
        [
            "need full sun and regular water",
            "want pruning in late winter",
            "turns kitchen scraps into soil",
            "stays green with deep watering",
            "grow well on a windowsill",
            "need a pollinator nearby",
            "must be hardened off before planting",
            "are earthed up as they grow",
            "benefits from crop rotation",
            "dislike cold draughts",
        ],
    ),
}


def main() -> None:
    rng = random.Random(2026)
    docs = []
    n = 0
    for topic, (subjects, predicates) in TOPICS.items():
        for s in subjects:
            for p in rng.sample(predicates, 6):
                n += 1
                lang = "en" if n % 10 else "fr"
                docs.append(
                    {
                        "id": f"doc-{n:04d}",
                        "text": f"{s[0].upper()}{s[1:]} {p}.",
                        "metadata": {"topic": topic, "lang": lang, "year": 2015 + n % 11},
                    }
                )
    out = Path(__file__).resolve().parent.parent / "workers" / "sluice_workers" / "demo" / "corpus.jsonl"
    out.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    print(f"wrote {len(docs)} documents to {out}")


if __name__ == "__main__":
    main()

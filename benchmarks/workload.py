"""What every system in a runtime case processes: the same job payloads and the same effects.

Imported by the sluice side, the raw loop and the Celery peer, so it uses only the standard
library and redis-py (the peer environment has no sluice).
"""

from __future__ import annotations

import json
import time
from typing import Any

DONE = "bench:done"  # completions counter: every system increments it after a job's effect
LATENCIES = "bench:latencies"  # seconds enqueue -> applied, pushed by workers when they stop
LLM_STRING = "bench-model|temperature=0"


def job(i: int) -> dict[str, Any]:
    """The shape of a cache fill: llm_string, prompt and one generation (~200 bytes of JSON)."""
    return {
        "llm_string": LLM_STRING,
        "prompt": f"prompt-{i:08d} what is the capital of country number {i}?",
        "generations": [{"type": "Generation", "text": f"answer {i}: the capital city"}],
    }


def is_warmup(prompt: str) -> bool:
    """Warm-up jobs have negative numbers; they are never measured."""
    return prompt.startswith("prompt--")


def hash_key(prompt: str) -> str:
    return f"bench:h:{prompt}"


def hash_fields(payload: dict[str, Any], version: str) -> dict[str, str]:
    """The few fields a cache-fill writes: prompt, llm_string, generations and the version."""
    return {
        "llm_string": payload["llm_string"],
        "prompt": payload["prompt"],
        "generations": json.dumps(payload["generations"]),
        "version": version,
    }


def wait_count(redis: Any, target: int, timeout: float, interval: float = 0.001) -> tuple[int, float]:
    """Poll the completions counter until it reaches `target`; returns (count, monotonic time)."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        count = int(redis.get(DONE) or 0)
        if count >= target or now >= deadline:
            return count, now
        time.sleep(interval)


def push_latencies(redis: Any, values: list[float]) -> None:
    for i in range(0, len(values), 5000):
        redis.rpush(LATENCIES, *values[i : i + 5000])


def read_latencies(redis: Any) -> list[float]:
    return [float(v) for v in redis.lrange(LATENCIES, 0, -1)]

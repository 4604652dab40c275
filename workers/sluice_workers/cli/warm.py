"""`sluice warm prompts.jsonl --model NAME`: fill the LLM cache ahead of traffic.

Each line is a JSON string, ``{"prompt": "..."}`` or ``{"messages": [...]}`` (role/content
dicts or LangChain message dicts). Every line becomes one ``cache-warm`` job (one prompt each,
so a prompt the model fails on is exactly one dead letter, retried alone with
``sluice dlq retry``), enqueued in batches. The command then shows how many jobs the workers
have *applied* (not merely enqueued) and lists the failures, with their reasons, at the end.
Exit status: 0 all applied, 1 some failed or did not finish in time, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from langchain_core.messages import BaseMessage, convert_to_messages, messages_from_dict

from sluice.connection.factory import connect
from sluice.errors import ConfigError
from sluice.jobs.models import CacheWarmPayload
from sluice.keys import Keys
from sluice.models.prompts import cache_prompt, text_of
from sluice.models.registry import ModelRegistry
from sluice.queue.producer import Producer
from sluice.queue.waiting import parse_state, state_commands
from sluice.settings import Settings
from sluice.types import StreamEntryRef

STATE_CHUNK = 500  # ids per state check: keeps each XPENDING range small
POLL = 0.2


def add_parser(sub: Any) -> None:
    p = sub.add_parser("warm", help="answer prompts with a configured model and fill the cache")
    p.add_argument("file", type=Path, help="JSON lines: a string, {'prompt': ...} or {'messages': [...]}")
    p.add_argument("--model", required=True, help="model name in the settings (SLUICE_MODELS)")
    p.add_argument("--cache", default="default", help="cache name (default: default)")
    p.add_argument("--ttl", type=float, help="seconds the entries live (default: no expiry)")
    p.add_argument(
        "--embedder", help="also fill the semantic cache of this name, embedding with this embedder"
    )
    p.add_argument("--batch", type=int, default=500, help="jobs per enqueue call (default 500)")
    p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the workers (default 600)"
    )
    p.add_argument("--no-wait", action="store_true", help="enqueue and exit")
    p.set_defaults(run=run)


def parse_line(raw: str) -> str | list[BaseMessage]:
    """One input line as text or messages; raises ValueError saying what is wrong."""
    data = json.loads(raw)
    if isinstance(data, str):
        return data
    if isinstance(data, dict) and isinstance(data.get("prompt"), str):
        return str(data["prompt"])
    if isinstance(data, dict) and isinstance(data.get("messages"), list) and data["messages"]:
        items = data["messages"]
        if all(isinstance(m, dict) and "data" in m and "type" in m for m in items):
            return messages_from_dict(items)
        return convert_to_messages(items)
    raise ValueError('expected a JSON string, {"prompt": "..."} or {"messages": [...]}')


def read_prompts(path: Path) -> list[str]:
    """The cache prompts of every line (what the app's cache lookups will use)."""
    prompts: list[str] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                prompts.append(cache_prompt(parse_line(line)))
            except (ValueError, TypeError, KeyError) as e:
                raise ConfigError(f"{path}:{number}: {e}") from None
    return prompts


class Progress:
    """Which jobs are applied or dead-lettered, from the consumer group's state (no polling of data)."""

    def __init__(self, redis: Any, keys: Keys, group: str, handles: Sequence[StreamEntryRef]) -> None:
        self.redis, self.keys, self.group = redis, keys, group
        self.left: dict[StreamEntryRef, int] = {h: i for i, h in enumerate(handles)}
        self.applied = 0
        self.failed: dict[int, str] = {}

    def update(self) -> None:
        by_stream: dict[str, list[StreamEntryRef]] = defaultdict(list)
        for h in self.left:
            by_stream[h.stream].append(h)
        for stream, refs in by_stream.items():
            ids = sorted((r.entry_id for r in refs), key=lambda i: tuple(map(int, i.split("-"))))
            for start in range(0, len(ids), STATE_CHUNK):
                chunk = ids[start : start + STATE_CHUNK]
                pipe = self.redis.pipeline(transaction=False)
                state_commands(pipe, self.keys, self.group, stream, chunk)
                state = parse_state(chunk, pipe.execute(), self.group)
                for entry_id in state.applied:
                    del self.left[StreamEntryRef(stream, entry_id)]
                    self.applied += 1
                for entry_id, reason in state.dead.items():
                    self.failed[self.left.pop(StreamEntryRef(stream, entry_id))] = reason

    def bar(self, total: int, width: int = 30) -> str:
        done = self.applied + len(self.failed)
        filled = int(width * done / total) if total else width
        return f"[{'#' * filled}{'.' * (width - filled)}] {self.applied}/{total} applied, {len(self.failed)} failed"


def wait(progress: Progress, total: int, timeout: float, out: TextIO) -> None:
    deadline = time.monotonic() + timeout
    while progress.left and time.monotonic() < deadline:
        progress.update()
        out.write("\r" + progress.bar(total))
        out.flush()
        if progress.left:
            time.sleep(POLL)
    out.write("\n")


def run(args: argparse.Namespace, settings: Settings) -> int:
    prompts = read_prompts(args.file)
    if not prompts:
        print(f"{args.file}: no prompts", file=sys.stderr)
        return 2
    registry = ModelRegistry(settings.models)
    llm_string = registry.llm_string(args.model)  # the key part the app's lookups will use
    payloads = [
        CacheWarmPayload(
            model=args.model, llm_string=llm_string, prompts=[p], ttl=args.ttl, cache=args.cache,
            embedder=args.embedder,
        )
        for p in prompts
    ]  # fmt: skip
    redis = connect(settings.redis)
    producer = Producer(redis, settings)
    handles: list[StreamEntryRef] = []
    for start in range(0, len(payloads), max(1, args.batch)):
        handles += producer.enqueue_many(payloads[start : start + args.batch])
        print(f"\renqueued {len(handles)}/{len(payloads)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if args.no_wait:
        print(f"{len(handles)} warm jobs enqueued for model {args.model!r}")
        return 0
    progress = Progress(redis, producer.keys, settings.queue.group, handles)
    wait(progress, len(handles), args.timeout, sys.stderr)
    print(
        f"{progress.applied} of {len(handles)} prompts warmed into cache {args.cache!r} with model {args.model!r}"
    )
    for index, reason in sorted(progress.failed.items()):
        print(f"FAILED {text_of(prompts[index])[:100]!r}: {reason}")
    if progress.left:
        print(
            f"{len(progress.left)} jobs not applied after {args.timeout}s; are workers running? (`sluice status`)"
        )
    return 1 if progress.failed or progress.left else 0

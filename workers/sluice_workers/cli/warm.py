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
from pathlib import Path
from typing import Any, TextIO

from langchain_core.messages import BaseMessage, convert_to_messages, messages_from_dict

from sluice.connection.factory import connect
from sluice.errors import ConfigError
from sluice.jobs.models import CacheWarmPayload
from sluice.models.prompts import cache_prompt, text_of
from sluice.models.registry import ModelRegistry
from sluice.queue.producer import Producer
from sluice.queue.progress import Applied
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


def wait(progress: Applied, timeout: float, out: TextIO) -> None:
    def tick(p: Applied) -> None:
        out.write("\r" + p.bar(what="applied"))
        out.flush()

    progress.wait(timeout, tick)
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
    progress = Applied(redis, producer.keys, settings.queue.group)
    progress.add(handles)
    wait(progress, args.timeout, sys.stderr)
    print(
        f"{progress.applied_units} of {len(handles)} prompts warmed into cache {args.cache!r} "
        f"with model {args.model!r}"
    )
    position = {h: i for i, h in enumerate(handles)}
    for index, reason in sorted((position[h], r) for h, r in progress.failed.items()):
        print(f"FAILED {text_of(prompts[index])[:100]!r}: {reason}")
    if progress.left:
        print(
            f"{len(progress.left)} jobs not applied after {args.timeout}s; are workers running? (`sluice status`)"
        )
    return 1 if progress.failed or progress.left else 0

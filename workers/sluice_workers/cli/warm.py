"""`sluice warm prompts.jsonl --model NAME`: fill the LLM cache ahead of traffic.

Each line is a JSON string, ``{"prompt": "..."}`` or ``{"messages": [...]}`` (role/content
dicts or LangChain message dicts). Every line becomes one ``cache-warm`` job (one prompt each,
so a prompt the model fails on is exactly one dead letter, retried alone with
``sluice dlq retry``), enqueued in batches. The command then shows how many jobs the workers
have *applied* (not merely enqueued) and lists the failures, with their reasons, at the end.
Without ``--embedder`` the exact cache ``--cache`` (default ``default``, the exact cache's default
name) is filled; with ``--embedder E`` the semantic cache ``--cache`` (default ``semantic``, its
default name), which must exist and be indexed with E: both are checked before anything is enqueued.
Exit status: 0 all applied, 1 some failed or did not finish in time, 2 bad input or settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from langchain_core.messages import BaseMessage, convert_to_messages, messages_from_dict

from sluice.connection.factory import connect
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError
from sluice.jobs.models import CacheWarmPayload
from sluice.keys import Keys
from sluice.models.prompts import cache_prompt, text_of
from sluice.models.registry import ModelRegistry
from sluice.queue.producer import Producer
from sluice.queue.progress import Applied
from sluice.settings import Settings
from sluice.stores.semantic_cache import index_name
from sluice.transport.translate import translate_errors
from sluice.types import StreamEntryRef
from sluice.vectors.meta import IndexMeta
from sluice_workers.cli.lines import read_lines


def add_parser(sub: Any) -> None:
    p = sub.add_parser("warm", help="answer prompts with a configured model and fill the cache")
    p.add_argument("file", type=Path, help="JSON lines: a string, {'prompt': ...} or {'messages': [...]}")
    p.add_argument("--model", required=True, help="model name in the settings (SLUICE_MODELS)")
    p.add_argument(
        "--cache",
        help="cache name (default: 'default', the exact cache's; with --embedder 'semantic', the semantic cache's)",
    )
    p.add_argument("--ttl", type=float, help="seconds the entries live (default: no expiry)")
    p.add_argument(
        "--embedder",
        help="fill the semantic cache --cache (which must exist, indexed with this settings embedder)",
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
    for number, line in read_lines(path):
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


def check_semantic(redis: Any, keys: Keys, settings: Settings, cache: str, embedder: str) -> None:
    """Refuse before enqueueing what every job would fail on: an unknown embedder, a semantic cache
    that does not exist or is indexed with another embedder (or with the app's vectors)."""
    EmbedderRegistry(settings.embedders).spec(embedder)  # ConfigError naming the known ones
    index = index_name(cache)
    with translate_errors("read the semantic cache's index"):
        raw = redis.get(keys.vector_meta(index))
    if not raw:
        raise ConfigError(
            f"there is no semantic cache {cache!r} in namespace {keys.namespace!r}: the app's "
            f"client.semantic_cache(embeddings, embedder={embedder!r}, name={cache!r}) creates it at its "
            "first lookup; or pass --cache NAME of the one the app uses"
        )
    indexed_with = IndexMeta.decode(raw, keys.vector_meta(index)).embedder
    if indexed_with is None:
        raise ConfigError(
            f"semantic cache {cache!r} holds the app's vectors (created without a settings embedder), so "
            f"workers cannot embed into it; open it with client.semantic_cache(embeddings, embedder={embedder!r}) "
            "on a new name or after cache.clear()"
        )
    if indexed_with != embedder:
        raise ConfigError(
            f"semantic cache {cache!r} is indexed with embedder {indexed_with!r}, not {embedder!r}: "
            f"pass --embedder {indexed_with}"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    prompts = read_prompts(args.file)
    if not prompts:
        print(f"sluice: {args.file}: no prompts", file=sys.stderr)
        return 2
    cache = args.cache or ("semantic" if args.embedder else "default")
    registry = ModelRegistry(settings.models)
    llm_string = registry.llm_string(args.model)  # the key part the app's lookups will use
    redis = connect(settings.redis)
    keys = Keys(settings.namespace, settings.queue.partitions)
    if args.embedder:
        check_semantic(redis, keys, settings, cache, args.embedder)
    payloads = [
        CacheWarmPayload(
            model=args.model, llm_string=llm_string, prompts=[p], ttl=args.ttl, cache=cache,
            embedder=args.embedder,
        )
        for p in prompts
    ]  # fmt: skip
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
    kind = "semantic cache" if args.embedder else "cache"
    print(
        f"{progress.applied_units} of {len(handles)} prompts warmed into {kind} {cache!r} "
        f"with model {args.model!r}"
    )
    position = {h: i for i, h in enumerate(handles)}
    failed = sorted((position[h], r) for h, r in progress.failed.items())
    exact = _exact_exists(
        redis, keys, cache, llm_string, [prompts[i] for i, _ in failed] if args.embedder else []
    )
    for n, (index, reason) in enumerate(failed):
        note = (
            " (its exact entry exists, the semantic entry was not written)"
            if n < len(exact) and exact[n]
            else ""
        )
        print(f"FAILED {text_of(prompts[index])[:100]!r}{note}: {reason}")
    if progress.left:
        print(
            f"{len(progress.left)} jobs not applied after {args.timeout}s; are workers running? (`sluice status`)"
        )
    return 1 if progress.failed or progress.left else 0


def _exact_exists(redis: Any, keys: Keys, cache: str, llm_string: str, prompts: list[str]) -> list[bool]:
    """Whether each prompt's exact entry exists (a semantic warm job can fail after writing it)."""
    if not prompts:
        return []
    with translate_errors("read the cache entries"):
        pipe = redis.pipeline(transaction=False)
        for prompt in prompts:
            pipe.exists(keys.cache_entry(cache, llm_string, prompt))
        return [bool(n) for n in pipe.execute()]

"""`sluice dlq list|show|retry|purge`: the dead letters, with filters by kind and age."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sluice.connection.capabilities import probe
from sluice.connection.factory import connect
from sluice.keys import Keys
from sluice.ops.deadletters import DeadLetter, DeadLetters
from sluice.queue.producer import Producer
from sluice.settings import Settings
from sluice.types import JOB_KINDS


def add_parser(sub: Any) -> None:
    p = sub.add_parser("dlq", help="inspect, retry or purge dead letters")
    p.add_argument("action", choices=["list", "show", "retry", "purge"])
    p.add_argument("ids", nargs="*", help="dead-letter ids or original entry ids (show/retry/purge)")
    p.add_argument("--kind", choices=[*JOB_KINDS, "unknown"], help="only this job kind")
    p.add_argument("--older-than", type=float, metavar="SECONDS", help="only entries older than this")
    p.add_argument("--newer-than", type=float, metavar="SECONDS", help="only entries newer than this")
    p.add_argument("--all", action="store_true", help="retry/purge every entry matching the filters")
    p.add_argument("--limit", type=int, default=50, help="entries listed (default 50)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def _select(dl: DeadLetters, args: argparse.Namespace) -> list[DeadLetter]:
    filters = {"kind": args.kind, "older_than": args.older_than, "newer_than": args.newer_than}
    if args.ids:
        return [dl.get(i) for i in args.ids]
    if args.all:
        return list(dl.iter(**filters))
    raise SystemExit(f"dlq {args.action}: name entries by id, or pass --all (with filters) to select all")


def run(args: argparse.Namespace, settings: Settings) -> int:
    redis = connect(settings.redis)
    keys = Keys(settings.namespace, settings.queue.partitions)
    producer = Producer(redis, settings, cluster=probe(redis).cluster) if args.action == "retry" else None
    dl = DeadLetters(redis, keys, producer)
    if args.action == "list":
        items = dl.recent(args.limit, kind=args.kind, older_than=args.older_than, newer_than=args.newer_than)
        if args.json:
            print(json.dumps([d.as_dict() for d in items], indent=2))
        else:
            print(f"{dl.count()} dead letters; showing {len(items)}")
            for d in items:
                print(f"{d.id}  {d.kind:<15} attempts={d.attempts} age={d.age():.0f}s  {d.error[:100]}")
        return 0
    if args.action == "show":
        for d in [dl.get(i) for i in args.ids]:
            print(json.dumps(d.as_dict(with_job=True), indent=2))
        return 0
    selected = _select(dl, args)
    if args.action == "retry":
        for stream, entry_id in dl.retry(selected):
            print(f"re-enqueued on {stream} as {entry_id}")
        return 0
    print(f"purged {dl.purge(selected)} dead letters")
    return 0

"""`sluice partitions [--set N]`: show the namespace's recorded partition count, or change it.

Every client and worker refuses to start with a count other than the recorded one; `--set`
is the one safe way to change it (see `sluice.ops.partitions` and the README).
"""

from __future__ import annotations

import argparse
from typing import Any

from sluice.connection.factory import connect
from sluice.keys import Keys
from sluice.ops.partitions import change_partitions, recorded
from sluice.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("partitions", help="show or change the partition count of the namespace")
    p.add_argument(
        "--set", type=int, metavar="N", dest="new", help="change it (queues drained, workers stopped)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    redis = connect(settings.redis)
    keys = Keys(settings.namespace, settings.queue.partitions)
    try:
        if args.new is None:
            count = recorded(redis, keys)
            shown = (
                "none recorded yet (the first client or worker records its own)" if count is None else count
            )
            print(f"namespace {settings.namespace!r}: {shown}; this configuration: {keys.partitions}")
            return 0 if count in (None, keys.partitions) else 1
        change = change_partitions(redis, keys, args.new)
        print(
            f"namespace {settings.namespace!r}: {change.old or keys.partitions} -> {change.new} partitions; "
            f"{change.moved} streams moved up to {change.top}. Now set SLUICE_QUEUE__PARTITIONS={change.new} "
            "in every app and worker and start them"
        )
        return 0
    finally:
        redis.close()

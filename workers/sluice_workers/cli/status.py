"""`sluice status`: per stream length, lag, pending, consumers; dead letters; workers; throughput."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from sluice.connection.factory import connect
from sluice.keys import Keys
from sluice.ops.governor import GovernorStatus
from sluice.ops.status import Status, collect
from sluice.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="queues, workers and dead letters")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--watch", type=float, nargs="?", const=2.0, metavar="SECONDS", help="refresh in place")
    p.add_argument("--all", action="store_true", help="show idle streams too")
    p.set_defaults(run=run)


def render(status: Status, *, show_all: bool = False) -> str:
    t = status.totals()
    lines = [
        f"namespace {status.namespace}: backlog {t['backlog']}, pending {t['pending']}, "
        f"dead letters {t['dead_letters']}, workers {t['workers']}",
        "",
        f"{'stream':<44} {'length':>8} {'lag':>8} {'pending':>8} {'consumers':>9} {'idle(s)':>8}",
    ]
    for s in status.streams:
        if not show_all and not (s.length or s.pending or s.consumers):
            continue
        idle = min((c.idle_ms for c in s.consumers), default=0) / 1000
        lag = "-" if s.lag is None else str(s.lag)
        lines.append(
            f"{s.stream:<44} {s.length:>8} {lag:>8} {s.pending:>8} {len(s.consumers):>9} {idle:>8.1f}"
        )
    lines.append("")
    lines.append("applied per minute (last 5 min, oldest first):")
    for kind, counts in status.throughput.items():
        lines.append(f"  {kind:<16} {' '.join(f'{c:>6}' for c in counts)}")
    lines += ["", *governor_lines(status.governor)]
    if status.workers:
        lines.append("")
        lines.append("workers:")
        for w in status.workers:
            lines.append(f"  {w.get('id')}  beat {time.time() - float(w.get('beat', 0)):.1f}s ago")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    redis = connect(settings.redis)
    keys = Keys(settings.namespace, settings.queue.partitions)
    while True:
        status = collect(redis, keys, settings.queue.group)
        if args.json:
            out = json.dumps(status.as_dict(), indent=2, default=str)
        else:
            out = render(status, show_all=args.all)
        if args.watch:
            sys.stdout.write("\x1b[2J\x1b[H" + out + "\n")
            sys.stdout.flush()
            time.sleep(args.watch)
            continue
        print(out)
        return 0


def governor_lines(g: GovernorStatus) -> list[str]:
    """The governor: budget, measured duty cycle, waits and backoffs, the apps' lookup p99."""
    rate = "not started (no worker has written yet)" if g.rate is None else f"{g.rate:.0%} of wall time"
    lines = [
        f"governor: budget {rate}, duty cycle {g.duty:.0%} (last second), "
        f"{g.spent_ms / 1000:,.1f} server-s taken, {g.waits} waits, {g.backoffs} backoffs",
    ]
    if g.foreground_p99_us is None or g.report_age_s is None:
        lines.append("  foreground: no lookup reports (no readers, or report_foreground off)")
    else:
        idle = f"{g.foreground_idle_us:,.0f} µs idle" if g.foreground_idle_us else "idle p99 not learned yet"
        ratio = f", {g.foreground_ratio:.2f}x" if g.foreground_ratio else ""
        lines.append(
            f"  foreground p99 {g.foreground_p99_us:,.0f} µs ({g.foreground_kind}; {idle}{ratio}), "
            f"reported {g.report_age_s:.1f}s ago"
        )
    lines.append(f"  query engine worker threads: {g.search_threads}")
    return lines

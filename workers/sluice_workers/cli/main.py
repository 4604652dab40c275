"""The `sluice` command. Settings are built once here and passed down."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sluice.errors import SluiceError
from sluice.settings import Settings
from sluice_workers.cli import dashboard, demo, dlq, index, migrate, partitions, server, status, warm, worker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice", description="LLM memory on Redis: workers and operator tools"
    )
    parser.add_argument("--url", help="Redis URL (default: SLUICE_REDIS__URL)")
    parser.add_argument("--namespace", help="key namespace (default: SLUICE_NAMESPACE or 'sluice')")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    worker.add_parser(sub)
    status.add_parser(sub)
    dlq.add_parser(sub)
    warm.add_parser(sub)
    demo.add_parser(sub)
    server.add_parser(sub)
    dashboard.add_parser(sub)
    index.add_parser(sub)
    migrate.add_parser(sub)
    partitions.add_parser(sub)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first, then the command-line overrides, validated together."""
    data = Settings().model_dump()
    if args.namespace:
        data["namespace"] = args.namespace
    if args.url:
        data["redis"]["url"] = args.url
    for name, value in getattr(args, "worker_overrides", {}).items():
        if value is not None:
            data["worker"][name] = value
    return Settings.model_validate(data)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = settings_from(args)
        code: int = args.run(args, settings)
    except SluiceError as e:
        print(f"sluice: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())

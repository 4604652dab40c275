"""`sluice migrate`: bring LangChain / redisvl data already in Redis into sluice.

``sluice migrate --from langchain-community|langchain-redis|redisvl --what cache|semantic-cache|
vectors|history [--dry-run] [--re-embed] [--source-prefix P] [--index NAME]`` reads the source
layout (read commands only: the source keys are never written), enqueues ordinary sluice jobs
in batches, shows a progress bar of *applied* jobs and ends with a count per job kind. Stored
vectors are copied when their size and metric match the target (and the named embedder gives
the same vectors); otherwise it says why and re-embeds only with ``--re-embed``.

Exit status: 0 done, 1 some jobs failed or did not finish in time, 2 bad input or setup.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import SecretStr

from sluice.connection.factory import connect
from sluice.facade.client import Client
from sluice.migrate.records import SOURCES, WHATS, Options
from sluice.migrate.run import Migration, Report
from sluice.migrate.sources import open_source
from sluice.settings import Settings

SHOWN_FAILURES = 5


def add_parser(sub: Any) -> None:
    p = sub.add_parser("migrate", help="copy LangChain / redisvl caches, vectors and histories into sluice")
    p.add_argument("--from", dest="source", required=True, choices=SOURCES, help="the layout the data is in")
    p.add_argument("--what", required=True, choices=WHATS, help="which data to copy")
    p.add_argument("--dry-run", action="store_true", help="read and count only; enqueue nothing")
    p.add_argument("--re-embed", action="store_true", help="let the workers embed what cannot be copied")
    p.add_argument("--source-prefix", help="key prefix of the source (history, exact cache)")
    p.add_argument("--index", help="the source RediSearch index (vectors; semantic cache; history)")
    p.add_argument("--source-url", help="Redis holding the source data (default: the sluice Redis)")
    p.add_argument("--target", help="sluice cache or index name (default: cache 'default' / 'semantic', "
                   "the source index name for vectors)")  # fmt: skip
    p.add_argument("--embedder", help="settings embedder of the target (semantic cache, vectors)")
    p.add_argument("--text-field", help="source field holding the document text (vectors)")
    p.add_argument("--llm-string", default="", help="model of a plain redisvl semantic cache's entries")
    p.add_argument("--replace", action="store_true", help="history: replace sessions sluice already has")
    p.add_argument("--batch", type=int, default=500, help="source entries per enqueue (default 500)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the workers")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = Client(settings)
    source_redis = client.redis
    if args.source_url:
        source_redis = connect(settings.redis.model_copy(update={"url": SecretStr(args.source_url)}))
    try:
        return _migrate(args, client, source_redis)
    finally:
        client.close()
        if source_redis is not client.redis:
            source_redis.close()


def _migrate(args: argparse.Namespace, client: Client, source_redis: Any) -> int:
    options = Options(
        source_prefix=args.source_prefix,
        index=args.index,
        text_field=args.text_field,
        llm_string=args.llm_string,
    )
    source = open_source(source_redis, args.source, args.what, options)
    m = Migration(
        client, source, args.what, target=args.target, embedder=args.embedder,
        re_embed=args.re_embed, replace=args.replace, batch=args.batch,
    )  # fmt: skip
    print(f"source: {source.described}")
    survey = m.survey()
    print(
        f"found: {survey.items} {m.unit} in {survey.records} {_records(args.what)}, {len(survey.skipped)} keys skipped"
    )
    for skipped in survey.skipped[:SHOWN_FAILURES]:
        print(f"  skipped {skipped.key}: {skipped.reason}")
    decision = m.decide(survey)
    for line in decision.lines:
        print(line)
    if decision.blocked:
        print(f"sluice: {decision.blocked}", file=sys.stderr)
        return 2
    if args.dry_run:
        print("dry run: nothing enqueued")
        return 0
    shown = [""]

    def tick(report: Report) -> None:
        bar = report.bar(m.unit)
        if bar != shown[0]:
            sys.stderr.write("\r" + bar)
            shown[0] = bar

    report = m.run(decision, args.timeout, tick=tick)
    sys.stderr.write("\n")
    return _summary(report, m.unit)


def _records(what: str) -> str:
    return "conversations" if what == "history" else "keys"


def _summary(report: Report, unit: str) -> int:
    for kind in sorted(report.jobs):
        t = report.trackers[kind]
        print(
            f"{kind}: {report.jobs[kind]} jobs, {t.applied_units} {unit} applied, {t.failed_units} failed"
            + ("" if t.done else f", {t.total_units - t.applied_units - t.failed_units} not applied yet")
        )
    if not report.jobs:
        print(f"nothing to migrate: no {unit} enqueued")
    if report.kept:
        print(
            f"{report.kept} conversations already in sluice were left as they are (--replace replaces them)"
        )
    failures = report.failures()
    for ref, reason in list(failures.items())[:SHOWN_FAILURES]:
        print(f"FAILED job {ref.entry_id}: {reason}")
    if failures:
        print("dead letters: `sluice dlq list`; fix and `sluice dlq retry <ids>`")
    if not report.finished:
        print("not every job was applied in time: are workers running? see `sluice status`", file=sys.stderr)
    return 0 if report.finished and not failures else 1

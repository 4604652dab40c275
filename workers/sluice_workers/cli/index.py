"""`sluice index create|info|drop|load|migrate`: vector indexes from the command line.

- ``create NAME``: from ``--schema FILE.json`` or flags (``--dims``, ``--tag lang``, ...); the
  dims default to the ``--embedder``'s.
- ``load FILE.jsonl --index NAME``: one document per line (``{"id", "text", "metadata",
  "vector"}`` or a JSON string), enqueued in batches; the progress bar counts documents the
  workers have *applied*; the summary lists dead letters. Give ids to make a reload replace.
- ``migrate NAME``: a new generation with the changed schema (flags change only what they name;
  ``--tag x`` adds a field, ``--drop-field x`` removes one), re-indexed in the background, then
  an atomic switch; queries are answered throughout. ``--resume`` / ``--abort`` an interrupted one.

Exit status: 0 done, 1 some documents failed or did not finish in time, 2 bad input or setup.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.jobs.models import IndexDocument
from sluice.queue.progress import Applied
from sluice.settings import Settings
from sluice.transport.runner import Runner, drive
from sluice.vectors import ingest
from sluice.vectors.manager import index_info, read_meta
from sluice.vectors.meta import IndexMeta
from sluice.vectors.migration import Migration, MigrationError, Target, resumed
from sluice.vectors.schema import IndexSchema, MetadataField, VectorField, differences
from sluice.vectors.session import IndexSession
from sluice_workers.cli.lines import read_lines

VECTOR_FLAGS = ("dims", "algorithm", "metric", "dtype", "m", "ef_construction", "ef_runtime")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("index", help="create, inspect, drop, bulk-load or migrate vector indexes")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an index (no-op if it exists with this schema)")
    create.add_argument("name")
    _schema_options(create)
    info = actions.add_parser("info", help="schema, backend, generations and document count")
    info.add_argument("name")
    info.add_argument("--json", action="store_true")
    drop = actions.add_parser("drop", help="drop an index, its documents and its metadata")
    drop.add_argument("name")
    drop.add_argument("--yes", action="store_true", help="really drop it")
    load = actions.add_parser("load", help="enqueue documents from a JSON-lines file and follow them")
    load.add_argument("file", type=Path)
    load.add_argument("--index", required=True)
    load.add_argument("--batch", type=int, default=1000, help="documents per enqueue call (default 1000)")
    load.add_argument("--no-wait", action="store_true", help="enqueue and exit")
    _schema_options(load)
    migrate = actions.add_parser("migrate", help="change an index's schema/embedder/backend online")
    migrate.add_argument("name")
    _schema_options(migrate)
    migrate.add_argument("--drop-field", action="append", default=[], metavar="NAME")
    migrate.add_argument(
        "--grace", type=float, help="seconds the old generation stays readable after the switch"
    )
    migrate.add_argument("--rebuild", action="store_true", help="migrate even if nothing changes")
    migrate.add_argument("--force", action="store_true", help="switch even if some documents failed")
    state = migrate.add_mutually_exclusive_group()
    state.add_argument("--resume", action="store_true", help="go on with the migration in progress")
    state.add_argument(
        "--abort", action="store_true", help="drop the migration in progress (before its switch)"
    )
    for q in (load, migrate):
        q.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the workers")
    p.set_defaults(run=run)


def _schema_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", type=Path, help="JSON file holding an IndexSchema (instead of the flags)")
    p.add_argument("--embedder", help="settings name of the embedder the workers embed with")
    p.add_argument("--backend", choices=["auto", "search", "vsets"], default="auto")
    p.add_argument("--dims", type=int)
    p.add_argument("--algorithm", choices=["hnsw", "flat"])
    p.add_argument("--metric", choices=["cosine", "l2", "ip"])
    p.add_argument("--dtype", choices=["float32", "float16", "q8", "bin"])
    p.add_argument("--m", type=int, help="HNSW links per node")
    p.add_argument("--ef-construction", type=int)
    p.add_argument("--ef-runtime", type=int)
    for kind in ("tag", "numeric", "text"):
        p.add_argument(
            f"--{kind}", action="append", default=[], metavar="FIELD", help=f"a {kind} metadata field"
        )


def _given(args: argparse.Namespace) -> bool:
    fields = args.tag or args.numeric or args.text or getattr(args, "drop_field", [])
    return bool(args.schema or fields or any(getattr(args, f) is not None for f in VECTOR_FLAGS))


def build_schema(args: argparse.Namespace, base: IndexSchema | None, dims: Any) -> IndexSchema:
    """The schema the flags describe, changing `base` where given (None: a new one)."""
    if args.schema:
        try:
            return IndexSchema.model_validate_json(args.schema.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"--schema {args.schema}: {e}") from None
    vector = base.vector.model_dump() if base else {"dims": args.dims or dims()}
    vector.update({f: getattr(args, f) for f in VECTOR_FLAGS if getattr(args, f) is not None})
    fields = [f for f in (base.metadata if base else ()) if f.name not in getattr(args, "drop_field", [])]
    for kind in ("tag", "numeric", "text"):
        fields += [MetadataField(name=n, type=kind) for n in getattr(args, kind)]
    text_field = base.text_field if base else "text"
    try:
        return IndexSchema(text_field=text_field, vector=VectorField(**vector), metadata=tuple(fields))
    except ValueError as e:
        raise ConfigError(f"schema: {e}") from None


def _dims_of(settings: Settings, embedder: str | None) -> Any:
    def dims() -> int:
        if not embedder:
            raise ConfigError("give --dims (or --embedder NAME to take its dimensions)")
        return len(EmbedderRegistry(settings.embedders).get(embedder).embed_query("dimension probe"))

    return dims


def _client(settings: Settings, timeout: float = 0.0) -> Client:
    """The CLI waits for room in a full stream instead of failing half-way through a file."""
    queue = settings.queue.model_copy(
        update={"backlog_policy": "wait", "backlog_wait": max(settings.queue.backlog_wait, timeout)}
    )
    return Client(settings.model_copy(update={"queue": queue}))


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings, getattr(args, "timeout", 0.0))
    try:
        action: Any = {"create": create, "info": info, "drop": drop, "load": load, "migrate": migrate}
        code: int = action[args.action](args, client)
        return code
    finally:
        client.close()


def _open(client: Client, args: argparse.Namespace, name: str) -> IndexMeta:
    runner = Runner(client.redis, cluster=client.capabilities.cluster)
    existing = drive(read_meta(client.keys, name), runner)
    schema = build_schema(args, None, _dims_of(client.settings, args.embedder)) if _given(args) else None
    embedder = args.embedder or (existing.embedder if existing else None)
    session = IndexSession(client, name, schema=schema, backend=args.backend, embedder=embedder)
    return session.open(_dims_of(client.settings, embedder))


def create(args: argparse.Namespace, client: Client) -> int:
    existed = drive(
        read_meta(client.keys, args.name), Runner(client.redis, cluster=client.capabilities.cluster)
    )
    meta = _open(client, args, args.name)
    verb = "exists already with this schema" if existed else "created"
    print(f"index {args.name!r} {verb}: {_describe(meta)}")
    return 0


def _describe(meta: IndexMeta) -> str:
    v = meta.index_schema.vector
    fields = ", ".join(f"{f.name}:{f.type}" for f in meta.index_schema.metadata) or "none"
    return (
        f"{meta.backend}, {v.dims}-dim {v.metric} {v.algorithm} {v.dtype}, embedder {meta.embedder or '(the app)'}, "
        f"metadata fields {fields}, generation {meta.generation}"
    )


def info(args: argparse.Namespace, client: Client) -> int:
    runner = Runner(client.redis, cluster=client.capabilities.cluster)
    data = drive(index_info(client.keys, args.name, runner.shard_tags()), runner)
    if data is None:
        print(f"sluice: no index {args.name!r}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    meta = IndexMeta.model_validate({k: v for k, v in data.items() if k != "documents"})
    print(f"index {args.name!r}: {_describe(meta)}; {data['documents']} documents")
    if meta.other is not None:
        state = (
            "being built" if meta.other.generation > meta.generation else "kept until the migration finishes"
        )
        print(f"migration: generation {meta.other.generation} {state} (writing {list(meta.writing)})")
    return 0


def drop(args: argparse.Namespace, client: Client) -> int:
    if not args.yes:
        print(f"sluice: dropping {args.name!r} deletes its documents; add --yes to do it", file=sys.stderr)
        return 2
    session = IndexSession(client, args.name, schema=None, backend="auto", embedder=None)
    if not session.drop():
        print(f"sluice: no index {args.name!r}", file=sys.stderr)
        return 2
    print(f"dropped index {args.name!r}")
    return 0


# --- load --------------------------------------------------------------------------------------


def parse_document(raw: str, number: int) -> IndexDocument:
    """One line as a document; ConfigError names the line and what is wrong."""
    try:
        data = json.loads(raw)
        if isinstance(data, str):
            data = {"text": data}
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ValueError('expected a JSON string or {"text": ..., "id"?, "metadata"?, "vector"?}')
        ids = ingest.new_ids([data.get("id") and str(data["id"])], 1)
        return IndexDocument(
            id=ids[0], text=data["text"], metadata=data.get("metadata") or {}, vector=data.get("vector")
        )
    except ValueError as e:
        raise ConfigError(f"line {number}: {e}") from None


def read_documents(path: Path) -> Iterator[IndexDocument]:
    for number, line in read_lines(path):
        yield parse_document(line, number)


def load(args: argparse.Namespace, client: Client) -> int:
    total = sum(1 for _ in read_documents(args.file))  # a first pass: bad input fails before any enqueue
    if not total:
        print(f"sluice: {args.file}: no documents", file=sys.stderr)
        return 2
    meta = _open(client, args, args.index)
    embedder = meta.embedder or args.embedder
    applied = Applied(client.redis, client.keys, client.settings.queue.group)
    first_ids: dict[Any, str] = {}
    began = time.monotonic()
    batch: list[IndexDocument] = []

    def flush() -> None:
        payloads = ingest.payloads(
            client.keys, client.settings.limits, args.index, upserts=batch, embedder=embedder
        )
        handles = client.producer.enqueue_many(payloads)
        applied.add(handles, [len(p.upserts) for p in payloads])
        first_ids.update({h: p.upserts[0].id for h, p in zip(handles, payloads, strict=True)})
        batch.clear()
        if not args.no_wait:
            applied.update()
            _bar(applied)

    for doc in read_documents(args.file):
        if doc.vector is None and embedder is None:
            raise ConfigError(
                f"document {doc.id!r} has no vector and index {args.index!r} no embedder; pass --embedder"
            )
        batch.append(doc)
        if len(batch) >= max(1, args.batch):
            flush()
    if batch:
        flush()
    if args.no_wait:
        print(f"{total} documents enqueued for index {args.index!r}")
        return 0
    finished = applied.wait(args.timeout, _bar)
    print(file=sys.stderr)
    seconds = time.monotonic() - began
    print(
        f"{applied.applied_units} of {total} documents indexed into {args.index!r} in {seconds:.1f}s "
        f"({applied.applied_units / seconds if seconds else 0:,.0f}/s); {applied.failed_units} failed"
    )
    for handle, reason in applied.failed.items():
        print(f"FAILED job {handle.entry_id} (first document {first_ids.get(handle)!r}): {reason}")
    if applied.failed:
        print("dead letters: `sluice dlq list --kind index`; fix and `sluice dlq retry <ids>`")
    if not finished:
        print(
            f"{len(applied.left)} jobs not applied after {args.timeout}s; are workers running? (`sluice status`)"
        )
    return 0 if finished and not applied.failed else 1


def _bar(applied: Applied) -> None:
    sys.stderr.write("\r" + applied.bar())
    sys.stderr.flush()


# --- migrate -----------------------------------------------------------------------------------


def migrate(args: argparse.Namespace, client: Client) -> int:
    vectors = client.settings.vectors
    grace = vectors.switch_grace if args.grace is None else args.grace
    if grace <= vectors.meta_refresh:
        raise ConfigError(
            f"the grace ({grace}s) must exceed SLUICE_VECTORS__META_REFRESH ({vectors.meta_refresh}s), or a "
            "vector store could still read the old generation when it is dropped"
        )
    m = Migration(client, args.name, log=print)
    if args.abort:
        print(f"aborted: generation {m.abort(args.timeout)} of {args.name!r} dropped")
        return 0
    _, meta = m.current()
    target = resumed(meta)
    switched = meta.other is not None and meta.other.generation < meta.generation
    if not switched and (target is None or _given(args) or args.embedder or args.backend != "auto"):
        if target is not None and args.resume:
            raise ConfigError("--resume continues the migration in progress: give no schema changes with it")
        target = m.plan(_new_schema(args, client, meta), embedder=args.embedder, backend=args.backend)
        if not (_changed(meta, target) or args.rebuild):
            raise MigrationError(f"nothing to change in index {args.name!r}; pass changes, or --rebuild")
    elif target is not None and not args.resume:
        raise MigrationError(
            f"index {args.name!r} is being migrated to generation {target.spec.generation}: "
            "pass --resume to go on, or --abort"
        )
    try:
        m.run(
            target or Target(meta.spec(), True),
            grace=grace,
            timeout=args.timeout,
            force=args.force,
            tick=_bar,
        )
    except MigrationError as e:
        print(f"\nsluice: {e}", file=sys.stderr)
        return 1
    print(f"done: index {args.name!r} is {_describe(m.current()[1])}")
    return 0


def _new_schema(args: argparse.Namespace, client: Client, meta: IndexMeta) -> IndexSchema:
    schema = build_schema(args, meta.index_schema, lambda: meta.index_schema.vector.dims)
    if args.embedder and args.embedder != meta.embedder and args.dims is None and not args.schema:
        dims = _dims_of(client.settings, args.embedder)()
        schema = schema.model_copy(update={"vector": schema.vector.model_copy(update={"dims": dims})})
    return schema


def _changed(meta: IndexMeta, target: Target) -> bool:
    spec = target.spec
    return bool(differences(meta.index_schema, spec.index_schema)) or (spec.embedder, spec.backend) != (
        meta.embedder,
        meta.backend,
    )

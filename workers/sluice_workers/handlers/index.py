"""index: embed documents in batches and write them into vector indexes with versioned Lua.

Per batch: one round trip reads every index's metadata; texts are embedded through the
embeddings cache with ONE embeddings call per embedder (re-indexing unchanged text costs no
call); writes run as versioned Lua calls in pipelines sized so that one pipeline takes about
`worker.write_budget_ms` of server time (HNSW inserts are CPU-heavy on Redis's one thread, and
the app's reads must not starve). A bad document fails its job (dead letter), not the batch.

During a migration a job is written to both generations, each under its own schema and
embedder (`IndexMeta.at`). A job's vectors come from the embedder it names, else from the read
generation's; they serve the generations of that embedder (an unnamed one takes any), the
others embed the text. A backfill job targets one generation and carries each document's
source version, so a live write of the same document always wins over the copy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import redis.exceptions as rex

from sluice.errors import ConfigError, PermanentJobError, RetryableJobError, StoreCorrupted
from sluice.jobs.codec import Job
from sluice.jobs.models import IndexDocument, IndexPayload
from sluice.stores.versions import padded
from sluice.transport.runner import Call
from sluice.transport.translate import ServerErrors
from sluice.vectors.documents import DocumentError, DocWrite, check_vector
from sluice.vectors.manager import make_backend
from sluice.vectors.meta import IndexMeta
from sluice.vectors.writer import VectorWriter
from sluice_workers.handlers.base import Failures


class IndexHandler(VectorWriter):
    kind = "index"

    def handle(self, jobs: Sequence[Job]) -> Failures:
        # Jobs are tracked by position: entry ids are unique per stream only, and a batch spans streams.
        failures: dict[int, BaseException] = {}
        payloads = [_payload(j) for j in jobs]
        metas = self._metas({p.index for p in payloads})
        views: dict[int, list[IndexMeta]] = {}
        for i, p in enumerate(payloads):
            meta = metas.get(p.index)
            if meta is None:
                failures[i] = PermanentJobError(
                    f"index {p.index!r} does not exist (dropped?); create it first"
                )
            else:  # a backfill for a generation no longer written is obsolete: nothing to do
                gens = meta.writing if p.generation is None else (p.generation,)
                views[i] = [meta.at(g) for g in gens if g in meta.writing]
                # vectors without a name come from the embedder of the generation the app reads
                payloads[i] = p.model_copy(update={"embedder": p.embedder or meta.embedder})
        vectors = self._embed(payloads, views, failures)
        calls: list[Call] = []
        owners: list[int] = []
        for i, (job, p) in enumerate(zip(jobs, payloads, strict=True)):
            for view in views.get(i, []) if i not in failures else []:
                backend = make_backend(view.backend, self.keys, [""])
                try:  # building the calls checks every document against this generation's schema
                    writes = _writes(job, p, view, vectors)
                    new = backend.write_calls(view, view.generation, writes, self.tombstone_ttl_ms)
                except DocumentError as e:
                    failures[i] = PermanentJobError(f"index {p.index!r}: {e}")
                    break
                calls += new
                owners += [i] * len(new)
        self._write(calls, owners, failures)
        return {jobs[i].entry_id: e for i, e in failures.items()}

    def _metas(self, indexes: set[str]) -> dict[str, IndexMeta | None]:
        names = sorted(indexes)
        keys = [self.keys.vector_meta(n) for n in names]
        replies = self.runner.run([Call(("GET", k), route=k) for k in keys])
        out: dict[str, IndexMeta | None] = {}
        for name, key, raw in zip(names, keys, replies, strict=True):
            if isinstance(raw, rex.ResponseError):
                raise StoreCorrupted(f"{key}: {raw}; delete that key and create the index again")
            out[name] = IndexMeta.decode(raw, key) if raw else None
        return out

    def _embed(
        self,
        payloads: Sequence[IndexPayload],
        views: dict[int, list[IndexMeta]],
        failures: dict[int, BaseException],
    ) -> dict[tuple[str, str], np.ndarray]:
        """(embedder, text) -> vector, with one embeddings call per embedder for the whole batch."""
        wanted: dict[str, list[str]] = defaultdict(list)
        users: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(payloads):
            for view in views.get(i, []) if i not in failures else []:
                texts = [d.text for d in p.upserts if not _usable(d, view, p)]
                if not texts:
                    continue
                name = view.embedder or p.embedder
                if name is None:
                    failures[i] = PermanentJobError(
                        f"index {p.index!r} has no embedder and the job carries documents without vectors"
                    )
                    break
                wanted[name] += texts
                users[name].append(i)
        out: dict[tuple[str, str], np.ndarray] = {}
        for name, texts in wanted.items():
            try:
                embedder = self.registry.get(name)
                fingerprint = self.registry.fingerprint(name)
            except ConfigError as e:
                failures.update(dict.fromkeys(users[name], PermanentJobError(str(e))))
                continue
            try:
                vectors = self.embeddings.embed_arrays(fingerprint, embedder, texts)
            except Exception as e:  # the embedder's own errors: a model/network hiccup is worth a retry
                error = RetryableJobError(f"embedder {name!r} failed: {type(e).__name__}: {e}")
                failures.update(dict.fromkeys(users[name], error))
                continue
            out.update({(name, t): v for t, v in zip(texts, vectors, strict=True)})
        return out

    def _write(self, calls: list[Call], owners: list[int], failures: dict[int, BaseException]) -> None:
        replies = self.send(calls)
        for owner, reply in zip(owners, replies, strict=True):
            if isinstance(reply, rex.ResponseError) and owner not in failures:
                failures[owner] = _write_error(reply)


def _payload(job: Job) -> IndexPayload:
    p = job.envelope.payload
    assert isinstance(p, IndexPayload)  # routed by kind
    return p


def _usable(doc: IndexDocument, view: IndexMeta, p: IndexPayload) -> bool:
    """A job's vector serves a generation of the embedder that made it (`p.embedder`), or of none."""
    return doc.vector is not None and view.embedder in (None, p.embedder)


def _writes(
    job: Job, p: IndexPayload, view: IndexMeta, vectors: dict[tuple[str, str], np.ndarray]
) -> list[DocWrite]:
    """Deletes first, then upserts (the last of duplicate ids wins), at the job's version (a copy:
    at its source's, never above the job's)."""
    version = padded(job.version)
    schema = view.index_schema
    name = view.embedder or p.embedder or ""
    writes = [DocWrite(doc_id, version, "delete") for doc_id in dict.fromkeys(p.deletes)]
    last = {d.id: d for d in p.upserts}
    for doc in last.values():
        vector: Any = doc.vector if _usable(doc, view, p) else vectors[(name, doc.text)]
        check_vector(vector, schema)
        at = min(doc.version, version) if doc.version else version
        writes.append(DocWrite(doc.id, at, "upsert", doc.text, doc.metadata, vector))
    return writes


def _write_error(reply: rex.ResponseError) -> BaseException:
    if ServerErrors.matches(reply, ServerErrors.WRONGTYPE):
        return StoreCorrupted(
            f"a vector index key has the wrong Redis type ({reply}); delete it and re-index"
        )
    text = str(reply)
    if "dimension" in text.lower() or "quantization" in text.lower():
        return PermanentJobError(
            f"the vector set refused the vector ({text}); the index schema and data disagree"
        )
    return RetryableJobError(f"vector write failed: {text}")

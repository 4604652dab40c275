"""store: apply LangGraph store puts and deletes, embedding the indexed fields in batches.

Per batch: one embeddings call per settings embedder for every text not in the embeddings cache;
one pipeline of store_write.lua calls (one per job, on each namespace's node); then the namespace
index (store_index.lua) and the pending sets of the namespaces written (pending_done.lua).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from sluice.embeddings.cache import EmbeddingsCache
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError, PermanentJobError, RetryableJobError, SluiceError
from sluice.jobs.codec import Job
from sluice.jobs.models import StorePayload
from sluice.keys import Keys
from sluice.queue.pending import PendingSet
from sluice.settings import Settings
from sluice.stores.items import encode_namespace, index_call, write_call
from sluice.transport.runner import Call, Runner
from sluice.types import EntryId, KeyT
from sluice.vectors.backend import check
from sluice_workers.handlers.base import Failures


class StoreHandler:
    kind = "store"

    def __init__(
        self, runner: Runner, keys: Keys, registry: EmbedderRegistry, cache: EmbeddingsCache
    ) -> None:
        self._runner = runner
        self._keys = keys
        self._registry = registry
        self._cache = cache

    @classmethod
    def build(cls, redis: Any, settings: Settings, *, cluster: bool) -> StoreHandler:
        keys = Keys(settings.namespace, settings.queue.partitions)
        return cls(
            Runner(redis, cluster=cluster),
            keys,
            EmbedderRegistry(settings.embedders),
            EmbeddingsCache(redis, keys, settings.vectors),
        )

    def handle(self, jobs: Sequence[Job]) -> Failures:
        failures: dict[EntryId, BaseException] = {}
        payloads: list[tuple[Job, StorePayload]] = []
        for job in jobs:
            p = job.envelope.payload
            if isinstance(p, StorePayload):
                payloads.append((job, p))
            else:
                failures[job.entry_id] = PermanentJobError(f"not a store job: {p.kind}")
        vectors = self._embed(payloads, failures)
        calls: list[Call] = []
        owners: list[tuple[Job, StorePayload]] = []
        for job, p in payloads:
            if job.entry_id in failures:
                continue
            found = [(path, np.asarray(v, dtype=np.float32)) for path, v in p.vectors]
            found += [(path, vectors[(p.embedder or "", text)]) for path, text in p.texts]
            try:
                calls.append(write_call(self._keys, p.namespace, p.key, job.version, p.value, p.ttl, found))
            except ValueError as e:  # a name or value sluice cannot store: it never will
                failures[job.entry_id] = PermanentJobError(f"store item {p.key!r}: {e}")
                continue
            owners.append((job, p))
        added: list[tuple[str, str]] = []
        dropped: list[tuple[str, str]] = []
        done: dict[PendingSet, list[str]] = defaultdict(list)
        for (job, p), reply in zip(owners, self._runner.run(calls), strict=True):
            try:
                code, left = check(reply, f"write store item {p.key!r}")
            except SluiceError as e:
                failures[job.entry_id] = e
                continue
            encoded = encode_namespace(p.namespace)
            if int(code) == 1 and p.op == "put":
                added.append((encoded, job.version))
            elif int(code) == 1 and int(left) == 0:
                dropped.append((encoded, job.version))
            done[PendingSet(KeyT(job.stream), self._keys.pending(job.stream, p.target_key()))].append(
                job.entry_id
            )
        after = [
            c for c in (index_call(self._keys, "add", added), index_call(self._keys, "drop", dropped)) if c
        ]
        after += [where.done_call(self._keys, ids) for where, ids in done.items()]
        for reply in self._runner.run(after):
            check(reply, "update the store's namespace index")
        return failures

    def _embed(
        self, payloads: Sequence[tuple[Job, StorePayload]], failures: dict[EntryId, BaseException]
    ) -> dict[tuple[str, str], np.ndarray]:
        """(embedder, text) -> vector: one embeddings call per embedder for the whole batch."""
        wanted: dict[str, list[str]] = defaultdict(list)
        users: dict[str, list[EntryId]] = defaultdict(list)
        for job, p in payloads:
            if not p.texts:
                continue
            if p.embedder is None:
                failures[job.entry_id] = PermanentJobError(
                    "a store job with texts to embed names no embedder"
                )
                continue
            wanted[p.embedder] += [text for _, text in p.texts]
            users[p.embedder].append(job.entry_id)
        out: dict[tuple[str, str], np.ndarray] = {}
        for name, texts in wanted.items():
            try:
                embedder = self._registry.get(name)
                fingerprint = self._registry.fingerprint(name)
            except ConfigError as e:
                failures.update(dict.fromkeys(users[name], PermanentJobError(str(e))))
                continue
            try:
                rows = self._cache.embed_arrays(fingerprint, embedder, texts)
            except Exception as e:  # the embedder's own errors: a model/network hiccup is worth a retry
                error = RetryableJobError(f"embedder {name!r} failed: {type(e).__name__}: {e}")
                failures.update(dict.fromkeys(users[name], error))
                continue
            out.update({(name, t): v for t, v in zip(texts, rows, strict=True)})
        return out

"""Every key and stream name sluice uses, built in one place.

Key schema (``ns`` = the namespace, default ``sluice``; ``{...}`` is a Cluster hash tag):

| key | type | TTL | written by | read by |
|---|---|---|---|---|
| ``ns:partitions`` | string: ``queue.partitions`` of the namespace | - | first client or worker (SET NX); ``sluice partitions set`` | every client and worker at connect |
| ``ns:jobs:{kind:p}`` | stream | - | producer (XADD via enqueue.lua); version reservations (XSETID) | workers (XREADGROUP), status |
| ``ns:jobs:{kind:p}:enq:<bucket>`` | hash job id -> entry id | 2 x queue.dedupe_window | producer (enqueue.lua) | producer retries |
| ``ns:jobs:{kind:p}:done:<id>`` | list | queue.signal_ttl | worker after XACK (jobs that asked) | ``wait()`` (BLPOP) |
| ``ns:jobs:{kind:p}:dead:<id>`` | string | 7 days | worker when dead-lettering | ``wait()`` |
| ``ns:jobs:{kind:p}:pend:<digest(target)>`` | set of entry ids: tracked jobs for one target key not yet applied | 7 days after the last enqueue | producer (enqueue.lua, tracked calls) adds; worker (pending_done.lua) removes | every reader of that key, any process (``sluice.queue.pending``) |
| ``ns:dead`` | stream | capped | worker | ``sluice dlq`` |
| ``ns:workers`` | zset member=worker id, score=last beat ms | - | worker heartbeat | status, ``--check`` |
| ``ns:worker:<id>`` | string (JSON) | 3 x heartbeat | worker heartbeat | status, ``--check`` |
| ``ns:governor`` | hash: the shared bucket (tokens, ts, rate, spent, waits, backoffs, per-window duty), the apps' latest foreground report (fg_*) | 1 day after the last write | workers (governor_take.lua), facades (governor_report.lua) | workers, status, dashboard |
| ``ns:stats:<kind>:<minute>`` | hash processed/failed/dead | 2 h | worker | status |
| ``ns:history:{<session>}`` | zset score 0, member ``<padded id>:<n>:<json>`` | history ttl | history handler (history_write.lua) | chat history |
| ``ns:history:{<session>}:meta`` | hash cleared/deleted/floor (a delete's tombstone) | history ttl; tombstone 1 day | history handler | session listing |
| ``ns:history:{<session>}:vdocs`` | hash ``<padded id>:<n>`` -> semantic index name | history ttl + 1 day | history handler | history handler, session pruner |
| ``ns:sessions:{ns}:active`` | zset member=session, score=last write (entry id ms) | - | history handler (history_index.lua) | session listing, ops |
| ``ns:sessions:{ns}:names`` | zset score 0, member=session (lexical: listing by prefix) | - | history handler | session listing |
| ``ns:sessions:{ns}:expires`` | zset member=session, score=expiry ms (sessions with a TTL) | - | history handler | session pruner |
| **LangGraph checkpoints** (``{t}`` = the thread id as a hash tag, ``sluice.stores.checkpoints``) | | | | |
| ``ns:cp:{t}:meta`` | hash cleared/deleted (tombstones), pruned/gc (versions of the newest prune or run deletion) | thread ttl; tombstone 1 day | checkpoint handler (checkpoint_write.lua) | checkpoint_write.lua |
| ``ns:cp:{t}:ckpts`` | zset score 0, member ``<ns>\\0<checkpoint id>\\0<padded version><record JSON>`` | thread ttl (refreshed on read) | checkpoint handler | checkpointer (checkpoint_read.lua) |
| ``ns:cp:{t}:writes`` | zset score 0, member ``<ns>\\0<checkpoint id>\\0<task id>\\0<idx>\\0<padded version><channel>\\0<task path>\\0<type>\\0<bytes>`` | thread ttl | checkpoint handler | checkpointer |
| ``ns:cp:{t}:blobs`` | hash ``<ns>\\0<channel>\\0<channel version>`` -> ``<padded version><type>\\0<bytes>`` | thread ttl | checkpoint handler | checkpointer |
| ``ns:cp-run:{<run id>}`` | set of thread ids with checkpoints of that run (``delete_for_runs``) | thread ttl, from the run's last put | checkpoint handler | checkpointer |
| **LangGraph store** (``{n}`` = digest of a namespace: one slot per namespace, ``sluice.stores.items``) | | | | |
| ``ns:st:{n}:items`` | hash item key -> ``<padded version><record JSON>`` (value, created, updated, ttl, vector elements) | per item (hash field TTL) | store handler (store_write.lua) | store (store_read.lua) |
| ``ns:st:{n}:tomb`` | hash item key -> version of its delete | per field, 1 day | store handler | store_write.lua |
| ``ns:st:{n}:vec`` | vector set, element ``<item key>\x1f<field path>``, attributes = the item's top-level scalar fields | - | store handler | store search (VSIM ... FILTER) |
| ``ns:store:{ns}:names`` | zset score 0, member = namespace labels each followed by ``\x1f`` (lexical: listing by prefix) | - | store handler (store_index.lua) | ``list_namespaces``, search by prefix |
| ``ns:store:{ns}:versions`` | hash namespace -> version of its newest put (an emptied namespace leaves only if none is newer) | - | store handler | store_index.lua |
| **vector indexes** (``<ix>`` = index name, ``g<n>`` = generation, ``{t}`` = a shard tag, empty standalone) | | | | |
| ``ns:vindex:<ix>`` | string (JSON ``IndexMeta``: schema, backend, embedder, generations) | - | facade (create) | facade, index handler |
| ``ns:vec:<ix>:g<n>:{<id>}`` | hash: text, vector, metadata fields, ``_id``, ``_meta``, ``_v`` | - | index handler (vector_hash_write.lua) | RediSearch index, facade |
| ``ns:vtomb:<ix>:g<n>:{<id>}`` | string: version of the delete (tombstone) | vectors tombstone TTL | index handler | index handler |
| ``ns:vidx:<ix>:g<n>[:{t}]`` | RediSearch index, PREFIX ``ns:vec:<ix>:g<n>:``; one per Cluster primary | - | facade | facade (via alias) |
| ``ns:vidx:<ix>[:{t}]`` | RediSearch alias of the generation queries read (``sluice index migrate`` switches it) | - | facade | facade |
| ``ns:vset:<ix>:g<n>:{t}`` | vector set, element = doc id, attributes = filterable metadata | - | index handler (vector_set_write.lua) | facade |
| ``ns:vset:<ix>:g<n>:{t}:docs`` | hash id -> ``<version><json text+metadata>`` | - | index handler | facade |
| ``ns:vset:<ix>:g<n>:{t}:tomb`` | hash id -> version of the delete | per field, tombstone TTL | index handler | index handler |
| ``ns:emb:<fingerprint>:<digest(text)>`` | string: float32 vector | embeddings cache TTL | index handler | index handler |
| **LLM caches** (``<c>`` = cache name, ``<hl>`` = ``digest(llm_string)``, ``<hp>`` = ``digest(prompt)``) | | | | |
| ``ns:cache:<c>:<hl>:<hp>`` | string ``<padded version>:<generations JSON>`` | cache ttl (set with the value) | cache-fill / cache-warm handlers, sync update (cache_write.lua) | exact cache lookup |
| ``ns:cache-meta:<c>:cleared`` | hash ``*:<p>`` or ``<hl>:<p>`` -> version of the newest clear in partition p | - | ``clear()`` (cache_clear_mark.lua) | cache_write.lua (drops older fills) |
| ``ns:cache-meta:<c>:hits`` | zset member ``<hl>:<hp>``, score = hits (decayed) | - | exact cache facade (buffered ZINCRBY) | refresh-ahead beat task |
| ``ns:cache-meta:<c>:src`` | hash ``<hl>:<hp>`` -> JSON prompt, llm_string, ttl, embedder | - | exact cache facade (with hits) | refresh-ahead beat task |
| ``ns:cache-meta:<c>:warming:<hl>:<hp>`` | string: claim of one refresh (idempotent enqueue) | refresh window | refresh-ahead beat task (SET NX) | refresh-ahead beat task |
| ``ns:cache-meta:<c>:lookups:<minute>`` | hash hit/miss/sem_hit/sem_miss/``d<bucket>`` (nearest distance) | 2 h | cache facades (``sluice.ops.cachestats``) | dashboard |

The job stream's hash tag is ``{kind:p}`` so partitions spread over Cluster slots while a stream
and its signal keys stay in one slot. A key's partition stream is its *version domain* (DESIGN
rule 2): every write to the key carries an entry id of that one stream, never a clock. Cache
entries are versioned by the ``cache-fill`` stream of their partition, whoever writes them:
cache-fill jobs by their entry ids, cache-warm jobs, ``write="sync"`` updates and ``clear()``
marks by ids reserved from that stream (`sluice.stores.versions`). Per-session keys are tagged by session id so one Lua script
can write both. A vector document and its tombstone share the hash tag ``{<id>}`` (a digest when
the id holds braces) for the same reason; RediSearch indexes and vector sets exist once per shard
tag, chosen so that on a Cluster every primary holds one (queries fan out and merge).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from sluice.types import JOB_KINDS, EntryId, JobKind, KeyT

VERSIONED_BY: Final[dict[JobKind, JobKind]] = {"cache-warm": "cache-fill"}
"""Job kinds whose writes are versioned by another kind's stream: cache-warm jobs write cache
entries, whose versions are entry ids of the cache-fill stream of their partition."""


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def digest(text: str) -> str:
    """Short hex digest used inside key names."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for one namespace."""

    namespace: str
    partitions: int = 4

    # --- job streams -------------------------------------------------------------------------
    def stream(self, kind: JobKind, partition: int) -> KeyT:
        return KeyT(f"{self.namespace}:jobs:{{{kind}:{partition}}}")

    def streams(self, kind: JobKind) -> list[KeyT]:
        return [self.stream(kind, p) for p in range(self.partitions)]

    def partition_of(self, target_key: str) -> int:
        """All jobs for one target key go to one partition, so their entry ids are comparable."""
        return stable_hash(target_key) % self.partitions

    def stream_for(self, kind: JobKind, target_key: str) -> KeyT:
        return self.stream(kind, self.partition_of(target_key))

    def version_stream(self, kind: JobKind, partition: int) -> KeyT:
        """The stream whose entry ids version the writes of a `kind` job routed to `partition`."""
        return self.stream(VERSIONED_BY.get(kind, kind), partition)

    def partitions_key(self) -> KeyT:
        """Where the namespace's partition count is recorded (`sluice.queue.partitions`)."""
        return KeyT(f"{self.namespace}:partitions")

    def enqueue_dedupe(self, stream: str, bucket: int) -> KeyT:
        return KeyT(f"{stream}:enq:{bucket}")

    def done_signal(self, stream: str, entry_id: EntryId) -> KeyT:
        return KeyT(f"{stream}:done:{entry_id}")

    def dead_marker(self, stream: str, entry_id: EntryId) -> KeyT:
        return KeyT(f"{stream}:dead:{entry_id}")

    def dead_letter_stream(self, stream: str) -> KeyT:
        """A job stream's dead letters: same hash tag, so one script dead-letters and acknowledges."""
        return KeyT(f"{stream}:dlq")

    def dead_letter_streams(self) -> list[KeyT]:
        """Every job stream's dead-letter stream, then the single stream of releases before 0.x."""
        per_stream = [self.dead_letter_stream(s) for kind in JOB_KINDS for s in self.streams(kind)]
        return [*per_stream, self.dead_letters()]

    def dead_letters(self) -> KeyT:
        """The one dead-letter stream earlier releases wrote (read, never written, now)."""
        return KeyT(f"{self.namespace}:dead")

    # --- workers -----------------------------------------------------------------------------
    def workers(self) -> KeyT:
        return KeyT(f"{self.namespace}:workers")

    def worker(self, worker_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:worker:{worker_id}")

    def governor(self) -> KeyT:
        """The governor's shared token bucket of server-milliseconds and the apps' latency reports."""
        return KeyT(f"{self.namespace}:governor")

    def stats(self, kind: str, minute: int) -> KeyT:
        return KeyT(f"{self.namespace}:stats:{kind}:{minute}")

    def pending(self, stream: str, target_key: str) -> KeyT:
        """The tracked jobs for one target key that are not applied yet (same slot as the stream)."""
        return KeyT(f"{stream}:pend:{digest(target_key)}")

    # --- conversation store --------------------------------------------------------------------
    def history(self, session_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:history:{{{session_id}}}")

    def history_meta(self, session_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:history:{{{session_id}}}:meta")

    def history_vdocs(self, session_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:history:{{{session_id}}}:vdocs")

    def history_sessions(self) -> KeyT:
        """Sessions by last write; the session index keys share one hash tag (one Lua call updates all)."""
        return KeyT(f"{self.namespace}:sessions:{{{self.namespace}}}:active")

    def sessions_names(self) -> KeyT:
        return KeyT(f"{self.namespace}:sessions:{{{self.namespace}}}:names")

    def sessions_expires(self) -> KeyT:
        return KeyT(f"{self.namespace}:sessions:{{{self.namespace}}}:expires")

    # --- LangGraph checkpoints (sluice.stores.checkpoints) ------------------------------------
    def checkpoint_keys(self, thread_id: str) -> tuple[KeyT, KeyT, KeyT, KeyT]:
        """meta, ckpts, writes, blobs of one thread: one hash tag, so one script writes them all."""
        base = f"{self.namespace}:cp:{_id_tag(thread_id)}"
        return KeyT(f"{base}:meta"), KeyT(f"{base}:ckpts"), KeyT(f"{base}:writes"), KeyT(f"{base}:blobs")

    def checkpoint_run(self, run_id: str) -> KeyT:
        """The threads with checkpoints of one LangGraph run (what `delete_for_runs` reads)."""
        return KeyT(f"{self.namespace}:cp-run:{_id_tag(run_id)}")

    # --- LangGraph store (sluice.stores.items) -------------------------------------------------
    def store_item_keys(self, encoded_namespace: str) -> tuple[KeyT, KeyT, KeyT]:
        """items, tombstones and vectors of one namespace: one hash tag (one slot, one script)."""
        base = f"{self.namespace}:st:{{{digest(encoded_namespace)}}}"
        return KeyT(f"{base}:items"), KeyT(f"{base}:tomb"), KeyT(f"{base}:vec")

    def store_namespaces(self) -> tuple[KeyT, KeyT]:
        """The namespace index (names, versions): one hash tag, so one script updates both."""
        base = f"{self.namespace}:store:{{{self.namespace}}}"
        return KeyT(f"{base}:names"), KeyT(f"{base}:versions")

    # --- vector indexes (sluice.vectors) ---------------------------------------------------------
    def vector_meta(self, index: str) -> KeyT:
        return KeyT(f"{self.namespace}:vindex:{index}")

    def vector_doc_prefix(self, index: str, generation: int) -> str:
        """The RediSearch PREFIX of one generation's documents."""
        return f"{self.namespace}:vec:{index}:g{generation}:"

    def vector_doc(self, index: str, generation: int, doc_id: str) -> KeyT:
        return KeyT(f"{self.vector_doc_prefix(index, generation)}{_id_tag(doc_id)}")

    def vector_tombstone(self, index: str, generation: int, doc_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:vtomb:{index}:g{generation}:{_id_tag(doc_id)}")

    def vector_index(self, index: str, generation: int, tag: str = "") -> KeyT:
        return KeyT(f"{self.namespace}:vidx:{index}:g{generation}{_shard(tag)}")

    def vector_alias(self, index: str, tag: str = "") -> KeyT:
        return KeyT(f"{self.namespace}:vidx:{index}{_shard(tag)}")

    def vector_set(self, index: str, generation: int, tag: str = "") -> KeyT:
        return KeyT(f"{self.namespace}:vset:{index}:g{generation}{_shard(tag)}")

    def vector_set_docs(self, index: str, generation: int, tag: str = "") -> KeyT:
        return KeyT(f"{self.vector_set(index, generation, tag)}:docs")

    def vector_set_tombstones(self, index: str, generation: int, tag: str = "") -> KeyT:
        return KeyT(f"{self.vector_set(index, generation, tag)}:tomb")

    def embedding(self, fingerprint: str, text: str) -> KeyT:
        return KeyT(f"{self.namespace}:emb:{fingerprint}:{digest(text)}")

    # --- LLM caches (sluice.stores.exact_cache) ------------------------------------------------
    def cache_entry(self, cache: str, llm_string: str, prompt: str) -> KeyT:
        return KeyT(f"{self.namespace}:cache:{cache}:{digest(llm_string)}:{digest(prompt)}")

    def cache_entry_of(self, cache: str, member: str) -> KeyT:
        """The entry of a hits member ``<hl>:<hp>``."""
        return KeyT(f"{self.namespace}:cache:{cache}:{member}")

    def cache_match(self, cache: str, llm_string: str | None = None) -> str:
        """SCAN MATCH pattern of one cache's entries (or one model's); names hold no glob characters."""
        scope = f"{digest(llm_string)}:" if llm_string is not None else ""
        return f"{self.namespace}:cache:{cache}:{scope}*"

    def cache_partition(self, cache: str, member: str) -> int:
        """The partition of an entry (member ``<hl>:<hp>``): that of `CacheFillPayload.target_key`."""
        return self.partition_of(f"cache:{cache}:{member}")

    def cache_version_stream(self, cache: str, member: str) -> KeyT:
        """The stream that versions an entry: the cache-fill stream of its partition."""
        return self.stream("cache-fill", self.cache_partition(cache, member))

    def cache_cleared(self, cache: str) -> KeyT:
        return KeyT(f"{self.namespace}:cache-meta:{cache}:cleared")

    def cache_hits(self, cache: str) -> KeyT:
        return KeyT(f"{self.namespace}:cache-meta:{cache}:hits")

    def cache_sources(self, cache: str) -> KeyT:
        return KeyT(f"{self.namespace}:cache-meta:{cache}:src")

    def cache_warming(self, cache: str, member: str) -> KeyT:
        return KeyT(f"{self.namespace}:cache-meta:{cache}:warming:{member}")

    def cache_lookups(self, cache: str, minute: int) -> KeyT:
        """Per-minute lookup counters of one cache (hit rate, semantic distance histogram)."""
        return KeyT(f"{self.namespace}:cache-meta:{cache}:lookups:{minute}")


def _id_tag(doc_id: str) -> str:
    """``{<id>}``, or ``{#<digest>}:<id>`` when braces in the id would break the hash tag."""
    if doc_id and "{" not in doc_id and "}" not in doc_id:
        return f"{{{doc_id}}}"
    return f"{{#{digest(doc_id)}}}:{doc_id}"


def _shard(tag: str) -> str:
    return f":{{{tag}}}" if tag else ""

"""Turning payloads into per-stream enqueue batches: routing, versions, encoding and limits, no I/O.

Shared by the sync and asyncio producers so both refuse exactly the same input. A job goes to
the partition of the keys it writes (`route`), and a payload whose keys lie in several
partitions is refused: its writes could not all be versioned by one stream. cache-warm jobs
travel on their own streams but write cache entries, which the cache-fill stream of their
partition versions: `version_requests` names the versions to reserve there before encoding.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticSerializationError

from sluice.errors import ConfigError, PayloadTooLarge
from sluice.jobs.codec import FIELD, encode_new
from sluice.jobs.models import CacheWarmPayload, Payload
from sluice.keys import Keys
from sluice.queue.pending import PENDING_TTL_MS
from sluice.settings import LimitSettings
from sluice.types import EntryId, JobKind, KeyT, NotifiedEntryRef, StreamEntryRef

CHUNK = 500  # jobs per script call: bounds the server time one call takes


@dataclass(slots=True)
class StreamBatch:
    """Encoded jobs bound for one partition stream, in enqueue order; `slots` are their places in
    the caller's list so handles come back in the caller's order."""

    stream: KeyT
    jobs: list[bytes] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    pending: list[KeyT] = field(default_factory=list)  # tracked jobs: each one's pending set


def json_size(value: Any, what: str) -> int:
    """Bytes of `value` as compact JSON. NaN and infinity are refused: JSON has neither, and the
    job encoder would silently turn them into null."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:
        raise ConfigError(
            f"{what} holds NaN or infinity, which JSON cannot carry (it would arrive as null); "
            "replace it with null or a finite number"
        ) from None
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply to encode; flatten it") from None
    try:
        return len(text.encode())
    except UnicodeEncodeError:  # a lone surrogate, which the encoder would alter or refuse
        raise ConfigError(
            f"{what} holds text that is not valid Unicode (a lone surrogate); fix the text"
        ) from None


_NOT_FINITE = (
    "{what} holds NaN or infinity, which JSON cannot carry (it would arrive as null); "
    "replace it with null or a finite number"
)
MAX_DEPTH = 200


def check_finite(value: Any, what: str) -> None:
    """Refuse NaN and infinity anywhere in `value` (JSON has neither, and the job encoder would
    silently turn them into null) without encoding it: the encoder itself refuses what else
    JSON cannot carry (lone surrogates, unknown types)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if not math.isfinite(item):
                raise ConfigError(_NOT_FINITE.format(what=what))
        elif depth >= MAX_DEPTH:
            raise ConfigError(f"{what} is nested too deeply to encode; flatten it")
        elif isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list | tuple):
            stack += [(v, depth + 1) for v in item]
        elif isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(_NOT_FINITE.format(what=what))


def check_encoded(payload: Payload, data: bytes, limits: LimitSettings) -> None:
    """The walk `check_payload(values=False)` left out, run only when the job's bytes hold a bare
    NaN or Infinity token (the models encode them so) or that text inside a string."""
    if b"NaN" in data or b"Infinity" in data:
        check_payload(payload, limits)
        check_finite(payload.model_dump(), f"this {payload.kind} job")


def check_payload(payload: Payload, limits: LimitSettings, *, values: bool = True) -> None:
    """Per-kind limits that name the setting to raise. `values=False` leaves out the walk for NaN
    and infinity, for a caller that looks for them in the encoded bytes (`check_encoded`)."""
    if payload.kind == "index":
        n = len(payload.upserts) + len(payload.deletes)
        if n > limits.max_documents_per_job:
            raise PayloadTooLarge(
                "documents in one index job",
                n,
                limits.max_documents_per_job,
                "SLUICE_LIMITS__MAX_DOCUMENTS_PER_JOB",
            )
        for doc in payload.upserts:
            size = json_size(doc.metadata, f"metadata of document {doc.id[:60]!r}")
            if size > limits.max_metadata_bytes:
                raise PayloadTooLarge(
                    f"metadata of document {doc.id[:60]!r} (bytes)",
                    size,
                    limits.max_metadata_bytes,
                    "SLUICE_LIMITS__MAX_METADATA_BYTES",
                )
    elif payload.kind == "history-append":
        if len(payload.messages) > limits.max_messages_per_job:
            raise PayloadTooLarge(
                "messages in one history job",
                len(payload.messages),
                limits.max_messages_per_job,
                "SLUICE_LIMITS__MAX_MESSAGES_PER_JOB",
            )
        if values and payload.messages:
            check_finite(payload.messages, f"a message of session {payload.session_id[:60]!r}")
    elif payload.kind in ("cache-fill", "cache-warm"):
        prompts = [payload.prompt] if payload.kind == "cache-fill" else payload.prompts
        longest = max((len(p) for p in prompts), default=0)
        if longest > limits.max_prompt_chars:
            raise PayloadTooLarge(
                "prompt length (characters)",
                longest,
                limits.max_prompt_chars,
                "SLUICE_LIMITS__MAX_PROMPT_CHARS",
            )
        if values and payload.kind == "cache-fill":
            check_finite(payload.generations, "the generations of a cache fill")


_SPLIT_HOW = {
    "cache-warm": "enqueue one CacheWarmPayload per prompt, as `sluice warm` and the refresh-ahead beat do",
    "index": "build index jobs with sluice.vectors.ingest.payloads (the vector store does), which "
    "groups documents by partition",
}


def route(keys: Keys, payload: Payload) -> int:
    """The partition of every key `payload` writes; refuses a payload whose keys span partitions."""
    targets = payload.targets()
    partition = keys.partition_of(targets[0])
    for target in targets[1:]:
        if keys.partition_of(target) != partition:
            spanned = len({keys.partition_of(t) for t in targets})
            raise ConfigError(
                f"this {payload.kind} job writes keys in {spanned} of {keys.partitions} partitions; "
                "a job's writes are versioned by the entry ids of one partition stream, so all its "
                f"keys must route to one partition: {_SPLIT_HOW.get(payload.kind, 'split it')}"
            )
    return partition


@dataclass(frozen=True, slots=True)
class VersionRequest:
    """Versions to reserve in one stream (`sluice.stores.versions`) for the payloads at `slots`."""

    stream: KeyT
    slots: list[int]


def version_requests(keys: Keys, limits: LimitSettings, payloads: Sequence[Payload]) -> list[VersionRequest]:
    """cache-warm payloads without a version, grouped by the stream that versions their keys (each
    checked as `plan` checks it first, so a refused call reserves nothing)."""
    wanted: dict[KeyT, list[int]] = {}
    for slot, payload in enumerate(payloads):
        if payload.kind == "cache-warm" and payload.version is None:
            check_payload(payload, limits)
            stream = keys.version_stream(payload.kind, route(keys, payload))
            wanted.setdefault(stream, []).append(slot)
    return [VersionRequest(stream, slots) for stream, slots in wanted.items()]


def with_versions(
    payloads: Sequence[Payload], requests: Sequence[VersionRequest], reserved: Sequence[Sequence[str]]
) -> list[Payload]:
    """The payloads with the reserved versions filled in, in request order."""
    out = list(payloads)
    for request, ids in zip(requests, reserved, strict=True):
        for slot, version in zip(request.slots, ids, strict=True):
            warm = out[slot]
            assert isinstance(warm, CacheWarmPayload)  # version_requests picks only these
            out[slot] = warm.model_copy(update={"version": version})
    return out


def plan(
    keys: Keys,
    limits: LimitSettings,
    payloads: Iterable[Payload],
    *,
    notify: bool = False,
    trace: dict[str, str] | None = None,
    track: bool = False,
) -> tuple[list[StreamBatch], int]:
    """Group jobs by partition stream, checking every limit before anything is written.

    `track` puts each job's entry id in its target key's pending set as it is added, so that a
    reader in any process can wait for it (`sluice.queue.pending`)."""
    batches: dict[KeyT, StreamBatch] = {}
    count = 0
    items = list(payloads)
    if len(items) > limits.max_batch_jobs:
        raise PayloadTooLarge(
            "jobs in one enqueue call", len(items), limits.max_batch_jobs, "SLUICE_LIMITS__MAX_BATCH_JOBS"
        )
    for slot, payload in enumerate(items):
        stream, job_id, data = _job(keys, limits, payload, notify, trace)
        batch = batches.setdefault(stream, StreamBatch(stream))
        batch.jobs.append(data)
        batch.slots.append(slot)
        batch.job_ids.append(job_id)
        if track:
            batch.pending.append(keys.pending(stream, payload.target_key()))
        count += 1
    return list(batches.values()), count


def _job(
    keys: Keys, limits: LimitSettings, payload: Payload, notify: bool, trace: dict[str, str] | None
) -> tuple[KeyT, str, bytes]:
    """One job checked, routed and encoded: its stream, id and bytes."""
    check_payload(payload, limits, values=False)
    partition = route(keys, payload)
    try:
        job_id, data = encode_new(payload, namespace=keys.namespace, notify=notify, trace=trace)
    except PydanticSerializationError as e:
        raise ConfigError(
            f"this {payload.kind} job cannot be encoded as JSON ({str(e)[:200]}); pass only JSON values "
            "(str, numbers, bool, None, lists, dicts) and text without lone surrogates"
        ) from None
    check_encoded(payload, data, limits)
    if len(data) > limits.max_payload_bytes:
        raise PayloadTooLarge(
            f"encoded {payload.kind} job (bytes)",
            len(data),
            limits.max_payload_bytes,
            "SLUICE_LIMITS__MAX_PAYLOAD_BYTES",
        )
    kind: JobKind = payload.kind
    return keys.stream(kind, partition), job_id, data


def plan_one(
    keys: Keys,
    limits: LimitSettings,
    payload: Payload,
    *,
    notify: bool = False,
    trace: dict[str, str] | None = None,
    track: bool = False,
) -> Segment:
    """`plan` and `rounds` of one payload (the request path: one write per call)."""
    stream, job_id, data = _job(keys, limits, payload, notify, trace)
    pending = [keys.pending(stream, payload.target_key())] if track else []
    return Segment(stream, [job_id], [data], [0], pending)


@dataclass(slots=True)
class Segment:
    """One producer call's jobs for one stream (at most CHUNK): one group of an enqueue.lua call.
    Segments of several callers share a script call (group commit); each gets its own reply."""

    stream: KeyT
    job_ids: list[str]
    jobs: list[bytes]
    slots: list[int]  # places in the caller's list
    pending: list[KeyT] = field(default_factory=list)  # tracked: one pending set per job
    resend: bool = False

    def resent(self) -> Segment:
        """The same jobs, for the script to look up by id before adding them."""
        return Segment(self.stream, self.job_ids, self.jobs, self.slots, self.pending, True)


def rounds(batches: Sequence[StreamBatch]) -> list[list[Segment]]:
    """The batches as rounds of segments, at most one per stream in each round (the i-th CHUNK of
    every stream): a round goes out in one round trip, and a caller sends the next round only
    once the previous one is accepted, so its jobs for one stream are added in its order."""
    out: list[list[Segment]] = []
    for batch in batches:
        for n, i in enumerate(range(0, len(batch.jobs), CHUNK)):
            j = i + CHUNK
            segment = Segment(
                batch.stream, batch.job_ids[i:j], batch.jobs[i:j], batch.slots[i:j], batch.pending[i:j]
            )
            if n == len(out):
                out.append([])
            out[n].append(segment)
    return out


@dataclass(slots=True)
class ScriptCall:
    """One enqueue.lua call: the segments of one stream, their keys and arguments."""

    stream: KeyT
    keys: list[str]
    args: list[Any]
    segments: list[Segment]


_BUCKETS: dict[tuple[str, int], list[KeyT]] = {}  # the dedupe bucket keys of a stream's current window


def script_call(
    keys: Keys, segments: Sequence[Segment], max_backlog: int, dedupe_window: float
) -> ScriptCall:
    """The call that adds `segments` (all for one stream); the dedupe buckets come from this
    host's clock."""
    stream = segments[0].stream
    window_ms = int(dedupe_window * 1000)
    bucket = int(time.time() * 1000) // window_ms if window_ms else 0
    buckets = _BUCKETS.get((stream, bucket))
    if buckets is None:
        if len(_BUCKETS) > 1024:
            _BUCKETS.clear()
        buckets = _BUCKETS[(stream, bucket)] = [
            keys.enqueue_dedupe(stream, bucket),
            keys.enqueue_dedupe(stream, bucket - 1),
        ]
    call_keys: list[str] = [stream, *buckets]
    args: list[Any] = [max_backlog, FIELD, window_ms, PENDING_TTL_MS]
    for segment in segments:
        args += [len(segment.jobs), int(segment.resend) + (2 if segment.pending else 0)]
        for job_id, data in zip(segment.job_ids, segment.jobs, strict=True):
            args += [job_id.encode(), data]  # bytes: each id is new, not worth remembering packed
        call_keys += segment.pending
    return ScriptCall(stream, call_keys, args, list(segments))


def by_stream(segments: Iterable[Segment]) -> list[list[Segment]]:
    """Segments grouped by stream, streams and segments in arrival order."""
    grouped: dict[KeyT, list[Segment]] = {}
    for segment in segments:
        grouped.setdefault(segment.stream, []).append(segment)
    return list(grouped.values())


def handles(stream: KeyT, ids: Iterable[bytes | str], *, notify: bool = False) -> list[StreamEntryRef]:
    """Handles of the entries `ids` of `stream` (`NotifiedEntryRef` when enqueued with notify)."""
    ref = NotifiedEntryRef if notify else StreamEntryRef
    return [ref(stream, EntryId(i.decode() if isinstance(i, bytes) else i)) for i in ids]


def queue_full(reply_error: str) -> tuple[int, int] | None:
    """Parse `QUEUEFULL <backlog> <limit>` from enqueue.lua (a group's reply); None for anything else."""
    parts = reply_error.split()
    if len(parts) >= 3 and parts[0] == "QUEUEFULL" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return None

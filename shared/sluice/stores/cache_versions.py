"""What an exact-cache write is (`CacheWrite`) and how writes and clear marks are versioned: script
arguments, versions to reserve, marks to compare, and the write itself as one sans-I/O plan (`write_plan`,
no I/O here: `sluice.stores.exact_cache` drives it on a sync or an asyncio runner).

An entry's versions are entry ids of its partition's cache-fill stream (`Keys.cache_version_stream`).
A clear marks every partition with a version reserved from that partition's stream, in fields
``*:<p>`` (whole cache) and ``<hl>:<p>`` (one model) of ``ns:cache-meta:<c>:cleared``; a write is
compared with the marks of its own partition only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.outputs import Generation

from sluice.jobs.models import CacheFillPayload
from sluice.keys import Keys, digest
from sluice.stores import generations as codec
from sluice.stores.versions import SCRIPT, padded, parse_reserved
from sluice.transport.call import Call
from sluice.transport.runner import Plan
from sluice.types import KeyT


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """One entry to store. `version` is an entry id of the entry's cache-fill stream (a fill's own
    id, a warm job's reserved one); None (sync writes) reserves one from that stream."""

    cache: str
    llm_string: str
    prompt: str
    generations_json: str
    ttl: float | None = None
    version: str | None = None
    embedder: str | None = None  # also goes into the semantic cache, embedded with this named embedder
    vector: Sequence[float] | None = None  # ... or with this vector, the app's (then nothing is embedded)

    @classmethod
    def from_payload(cls, payload: CacheFillPayload, version: str) -> CacheWrite:
        return cls(
            payload.cache, payload.llm_string, payload.prompt, codec.dumps_dicts(payload.generations),
            payload.ttl, version, payload.embedder, payload.vector,
        )  # fmt: skip

    @classmethod
    def of(
        cls, cache: str, llm_string: str, prompt: str, generations: Sequence[Generation], ttl: float | None
    ) -> CacheWrite:
        return cls(cache, llm_string, prompt, codec.encode(generations), ttl)


def member(w: CacheWrite) -> str:
    """``<hl>:<hp>``: the entry inside its cache."""
    return f"{digest(w.llm_string)}:{digest(w.prompt)}"


def write_args(keys: Keys, w: CacheWrite, *, cleared: str | None) -> tuple[list[str], list[Any]]:
    """Script keys and arguments; `cleared` is the pre-read clear mark on a Cluster (None: read in
    Lua, and a write without a version takes one from its stream in the same script)."""
    hl = digest(w.llm_string)
    p = keys.cache_partition(w.cache, member(w))
    script_keys: list[str] = [keys.cache_entry(w.cache, w.llm_string, w.prompt)]
    if cleared is None:
        script_keys.append(keys.cache_cleared(w.cache))
        if w.version is None:
            script_keys.append(keys.stream("cache-fill", p))
    elif w.version is None:
        raise ValueError("on a Cluster a write's version is reserved before the write (versioned())")
    ttl_ms = max(1, int(w.ttl * 1000)) if w.ttl else 0
    version = padded(w.version) if w.version else ""
    return script_keys, [version, ttl_ms, w.generations_json, f"*:{p}", f"{hl}:{p}", cleared or ""]


def version_needs(keys: Keys, writes: Sequence[CacheWrite]) -> dict[KeyT, list[int]]:
    """Writes without a version, by the stream that versions their entry (positions in `writes`)."""
    needs: dict[KeyT, list[int]] = {}
    for i, w in enumerate(writes):
        if w.version is None:
            needs.setdefault(keys.cache_version_stream(w.cache, member(w)), []).append(i)
    return needs


def with_write_versions(
    writes: Sequence[CacheWrite], needs: Mapping[KeyT, list[int]], reserved: Mapping[KeyT, list[str]]
) -> list[CacheWrite]:
    out = list(writes)
    for stream, positions in needs.items():
        for i, version in zip(positions, reserved[stream], strict=True):
            out[i] = replace(out[i], version=version)
    return out


def clear_streams(keys: Keys) -> list[KeyT]:
    """The streams a clear takes its versions from: every partition's cache-fill stream, in order."""
    return keys.streams("cache-fill")


def clear_mark_args(scope: str, reserved: Sequence[str]) -> list[str]:
    """cache_clear_mark.lua arguments: the scope, then one padded version per partition."""
    return [scope, *(padded(v) for v in reserved)]


def newest_mark(marks: Mapping[Any, Any], keys: Keys, w: CacheWrite) -> str:
    """The clear mark that applies to one entry: the newer of the whole cache's and its model's
    mark in the entry's partition."""
    plain = {_text(k): _text(v) for k, v in marks.items()}
    p = keys.cache_partition(w.cache, member(w))
    return max(plain.get(f"*:{p}", ""), plain.get(f"{digest(w.llm_string)}:{p}", ""))


def cleared_since(
    keys: Keys, writes: Sequence[CacheWrite], results: Sequence[int], marks: Mapping[str, Mapping[Any, Any]]
) -> list[tuple[int, str]]:
    """Writes applied on a Cluster that a clear has marked since (`marks` read after the writes):
    (position, the mark they are older than). Applied writes only; `marks` holds their caches."""
    stale: list[tuple[int, str]] = []
    for i, (w, result) in enumerate(zip(writes, results, strict=True)):
        if result == 1 and w.version is not None:
            mark = newest_mark(marks[w.cache], keys, w)
            if mark and padded(w.version) < mark:
                stale.append((i, mark))
    return stale


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def clear_sweep_calls(keys: Keys, cache: str, found: Sequence[Any], reserved: Sequence[str]) -> list[Call]:
    """A clear's deletion of the entries its SCAN found: each dropped only if older than the clear's
    own version in the entry's partition (`reserved`, one per partition), so a fill enqueued after
    the clear and applied while the sweep runs is kept. Non-sluice values under the cache's prefix
    go too."""
    prefix = f"{keys.namespace}:cache:{cache}:"
    marks = [padded(v) for v in reserved]
    calls = []
    for raw in found:
        key = _text(raw)
        mark = marks[keys.cache_partition(cache, key[len(prefix) :])]
        calls.append(Call((mark, "1"), route=key, script="cache_drop_older", keys=(key,)))
    return calls


def write_plan(keys: Keys, writes: Sequence[CacheWrite], *, cluster: bool) -> Plan[list[int]]:
    """Apply writes: 1 = written, 0 = older than the stored entry, -1 = cleared since.

    One server: one cache_write.lua call per write (a pipeline; the script reads the clear mark and
    reserves a missing version itself). A Cluster, where the entry, its stream and the marks live in
    three slots: versions reserved first (one call per stream), marks read, the writes, the marks
    read again, and what a clear marked in between is dropped (cache_drop_older.lua).
    """
    if not writes:
        return []
    marks: dict[str, Mapping[Any, Any]] | None = None
    if cluster:
        writes = yield from versions_plan(keys, writes)
        marks = yield from marks_plan(keys, {w.cache for w in writes})
    calls = []
    for w in writes:
        cleared = None if marks is None else newest_mark(marks[w.cache], keys, w)
        script_keys, args = write_args(keys, w, cleared=cleared)
        calls.append(Call(tuple(args), route=script_keys[0], script="cache_write", keys=tuple(script_keys)))
    out = [int(r) for r in _checked((yield calls))]
    if marks is None:
        return out
    after = yield from marks_plan(keys, {w.cache for w, r in zip(writes, out, strict=True) if r == 1})
    stale = cleared_since(keys, writes, out, after)
    drops = []
    for i, mark in stale:
        w = writes[i]
        entry = keys.cache_entry(w.cache, w.llm_string, w.prompt)
        drops.append(Call((mark,), route=entry, script="cache_drop_older", keys=(entry,)))
    _checked((yield drops) if drops else [])
    for i, _ in stale:
        out[i] = -1
    return out


def versions_plan(keys: Keys, writes: Sequence[CacheWrite]) -> Plan[list[CacheWrite]]:
    """The writes, each without a version given one reserved from its entry's stream."""
    needs = version_needs(keys, writes)
    if not needs:
        return list(writes)
    streams = list(needs)
    calls = [Call((len(needs[s]),), route=s, script=SCRIPT, keys=(s,)) for s in streams]
    replies = _checked((yield calls))
    reserved = {s: parse_reserved(r, len(needs[s])) for s, r in zip(streams, replies, strict=True)}
    return with_write_versions(writes, needs, reserved)


def clear_mark_plan(keys: Keys, cache: str, scope: str) -> Plan[list[str]]:
    """A clear's mark: one version reserved from every partition's cache-fill stream, then
    cache_clear_mark.lua (fills still queued are dropped when they arrive, later ones kept).
    Returns the reserved versions, by partition, for the sweep (`clear_sweep_calls`)."""
    streams = clear_streams(keys)
    replies = _checked((yield [Call((1,), route=s, script=SCRIPT, keys=(s,)) for s in streams]))
    reserved = [parse_reserved(r, 1)[0] for r in replies]
    cleared = keys.cache_cleared(cache)
    mark = Call(
        tuple(clear_mark_args(scope, reserved)), route=cleared, script="cache_clear_mark", keys=(cleared,)
    )
    _checked((yield [mark]))
    return reserved


def marks_plan(keys: Keys, caches: set[str]) -> Plan[dict[str, Mapping[Any, Any]]]:
    """The clear marks of `caches` (on a Cluster they live in another slot than the entries)."""
    ordered = sorted(caches)
    calls = [Call(("HGETALL", keys.cache_cleared(c)), route=keys.cache_cleared(c)) for c in ordered]
    replies = _checked((yield calls)) if calls else []
    return {c: _as_mapping(r) for c, r in zip(ordered, replies, strict=True)}


def _as_mapping(reply: Any) -> Mapping[Any, Any]:
    if isinstance(reply, Mapping):
        return reply
    items = list(reply or [])
    return dict(zip(items[::2], items[1::2], strict=True))


def _checked(replies: Sequence[Any]) -> Sequence[Any]:
    """Replies with a server error raised (the shells translate it; WRONGTYPE says which key)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies

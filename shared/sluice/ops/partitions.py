"""Changing a namespace's partition count without breaking versions (`sluice partitions --set N`).

A new count re-routes nearly every key to another stream, and a key's versions are entry ids of
its one stream. The change is safe only when no job is queued under the old routing and every
id the new streams give out is above every version already stored; otherwise a message could
sort before older ones, or a new fill lose to an older entry (on a Cluster, the new stream may
sit on a node whose clock is behind). `change_partitions` therefore refuses while any stream of
any kind holds a job or any worker is alive, then moves the last id of every stream up to the
highest id any of them has given out (XSETID; a missing stream is created empty at that id), and
only then records the new count (`sluice.queue.partitions`), which refuses old-count clients and
workers from then on. Stop the apps first: a producer that started with the old count keeps
routing by it until restarted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.errors import ConfigError
from sluice.keys import Keys
from sluice.ops.workers import live_workers
from sluice.queue.partitions import stored_count
from sluice.transport.translate import translate_errors
from sluice.types import JOB_KINDS, KeyT, parse_entry_id

EntryTuple = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Change:
    """What `change_partitions` did."""

    old: int | None
    new: int
    top: str
    moved: int


def all_streams(keys: Keys, count: int) -> list[KeyT]:
    return [keys.stream(kind, p) for kind in JOB_KINDS for p in range(count)]


def recorded(redis: Any, keys: Keys) -> int | None:
    """The count recorded for the namespace, None if none is."""
    with translate_errors("read the partition count"):
        raw = redis.get(keys.partitions_key())
    return None if raw is None else stored_count(raw, keys)


def _drained_last_ids(redis: Any, streams: list[KeyT]) -> dict[KeyT, EntryTuple | None]:
    """Each stream's last generated id (None: the stream does not exist); refuses while any holds a job."""
    pipe = redis.pipeline(transaction=False)
    for s in streams:
        pipe.exists(s)
        pipe.xlen(s)
    replies = pipe.execute()
    present = [s for s, n in zip(streams, replies[::2], strict=True) if int(n)]
    queued = {s: int(n) for s, n in zip(streams, replies[1::2], strict=True) if int(n)}
    if queued:
        shown = ", ".join(f"{s} ({n})" for s, n in sorted(queued.items())[:3])
        raise ConfigError(
            f"{len(queued)} streams still hold jobs: {shown}; stop the apps, let the workers drain the "
            "queues (`sluice status`), stop the workers, then run this again"
        )
    out: dict[KeyT, EntryTuple | None] = dict.fromkeys(streams)
    for s in present:
        last = redis.xinfo_stream(s)["last-generated-id"]
        out[s] = parse_entry_id(last.decode() if isinstance(last, bytes) else str(last))
    return out


def change_partitions(redis: Any, keys: Keys, new: int) -> Change:
    """Move the namespace of `keys` to `new` partitions; `keys.partitions` is the count assumed
    when none is recorded yet. Refuses (`ConfigError`) while jobs are queued or workers alive."""
    if new < 1:
        raise ConfigError(f"a partition count is at least 1, not {new}")
    old = recorded(redis, keys)
    alive = live_workers(redis, keys)
    if alive:
        names = ", ".join(str(w.get("id")) for w in alive[:3])
        raise ConfigError(
            f"{len(alive)} workers are alive ({names}); stop every worker first: one started with the "
            "old count would keep reading the old streams"
        )
    target = Keys(keys.namespace, new)
    with translate_errors("change the partition count"):
        last = _drained_last_ids(redis, all_streams(keys, max(old or keys.partitions, new)))
        known = [i for i in last.values() if i is not None]
        top = max(known) if known else (0, 0)
        moved = 0
        if known:
            for s in all_streams(target, new):
                if last[s] is None:
                    redis.execute_command("XADD", s, "MAXLEN", "0", f"{top[0]}-{top[1]}", "version", "1")
                elif last[s] != top:
                    redis.execute_command("XSETID", s, f"{top[0]}-{top[1]}")
                else:
                    continue
                moved += 1
        redis.set(target.partitions_key(), new)
    return Change(old, new, f"{top[0]}-{top[1]}", moved)

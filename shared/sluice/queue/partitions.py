"""The partition count of a namespace: recorded in Redis, checked by every client and worker.

A job goes to partition ``stable_hash(target key) % queue.partitions``, and the entry ids of that
one stream version every write to the key (DESIGN rule 2). Two processes with different counts
would send one key's jobs to two streams, whose ids cannot be compared: an older write could
win, messages could come back out of order. So the first client or worker of a namespace
records its count at ``ns:partitions`` (SET NX) and every later one compares at connect and
refuses a mismatch (`ConfigError`). A user that may not write the key (an ACL app user) only
compares; a worker records it. Change the count with `sluice partitions set N` (README,
"Changing the partition count"), never by editing settings alone.

Sync (`check_partitions`) and asyncio (`acheck_partitions`) shells share `verdict`.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoPermissionError

from sluice.errors import ConfigError
from sluice.keys import Keys
from sluice.transport.translate import translate_errors

HOW_TO_CHANGE = (
    "to change the count, drain the queues and run `sluice partitions set N` "
    "(README: 'Changing the partition count')"
)


def stored_count(raw: Any, keys: Keys) -> int:
    """The recorded count; a value that is not one is refused with what to do."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            f"{keys.partitions_key()} holds {text[:40]!r}, not a partition count; set it to the count "
            f"the namespace's streams were used with (SET {keys.partitions_key()} <count>)"
        )
    return int(text)


def verdict(raw: Any, keys: Keys) -> None:
    """Refuse a recorded count other than this process's `queue.partitions`."""
    stored = stored_count(raw, keys)
    if stored != keys.partitions:
        raise ConfigError(
            f"SLUICE_QUEUE__PARTITIONS (queue.partitions) is {keys.partitions} here, but namespace "
            f"{keys.namespace!r} runs with {stored} partitions (recorded at {keys.partitions_key()}): "
            "jobs for one key would go to two streams and an older write could win over a newer "
            f"one. Set queue.partitions={stored} in every client and worker, or {HOW_TO_CHANGE}"
        )


def check_partitions(redis: Any, keys: Keys) -> None:
    """Record this count if the namespace has none yet, else refuse a different one (sync)."""
    key = keys.partitions_key()
    with translate_errors("check the namespace's partition count"):
        raw = redis.get(key)
        if raw is None:
            try:
                if redis.set(key, keys.partitions, nx=True):
                    return
            except NoPermissionError:
                return  # a read-only user: the first worker records it
            raw = redis.get(key)
    if raw is not None:
        verdict(raw, keys)


async def acheck_partitions(redis: Any, keys: Keys) -> None:
    """The asyncio twin of `check_partitions`."""
    key = keys.partitions_key()
    with translate_errors("check the namespace's partition count"):
        raw = await redis.get(key)
        if raw is None:
            try:
                if await redis.set(key, keys.partitions, nx=True):
                    return
            except NoPermissionError:
                return
            raw = await redis.get(key)
    if raw is not None:
        verdict(raw, keys)

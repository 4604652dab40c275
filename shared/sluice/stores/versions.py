"""Versions: entry ids of a key's partition stream, padded so that comparing strings compares ids.

Every write to a key is versioned by an entry id of the one stream its jobs go to (DESIGN rule
2), never by a clock: a job by its own entry id; a write made outside that stream (a cache-warm
job, which travels on its own stream; a ``write="sync"`` update; a clear mark) by an id
*reserved* from it with reserve_versions.lua, which sits between the ids already given out and
those to come. So the newer write wins, whatever the clocks of the nodes say.

Padded versions are compared inside Lua scripts, where string comparison is all there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluice.types import KeyT, parse_entry_id

SCRIPT = "reserve_versions"


def padded(entry_id: str) -> str:
    """`"1700000000000-3"` -> `"000001700000000000-0000000003"` (fixed width, sortable)."""
    ms, seq = parse_entry_id(entry_id)
    return f"{ms:018d}-{seq:010d}"


def reserve_args(stream: KeyT, count: int) -> tuple[list[str], list[Any]]:
    """Keys and arguments of one reserve_versions.lua call."""
    return [stream], [count]


def parse_reserved(reply: Sequence[Any], count: int) -> list[str]:
    """The script's reply -> entry ids (unpadded), checked to be `count` of them."""
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in reply]
    if len(ids) != count:
        raise ValueError(f"reserve_versions.lua returned {len(ids)} ids for {count}")
    for entry_id in ids:
        parse_entry_id(entry_id)
    return ids


def reserve(scripts: Any, stream: KeyT, count: int) -> list[str]:
    """`count` versions from `stream` (one script call on the stream's node)."""
    keys, args = reserve_args(stream, count)
    return parse_reserved(scripts[SCRIPT](keys=keys, args=args), count)


async def areserve(scripts: Any, stream: KeyT, count: int) -> list[str]:
    """The asyncio twin of `reserve`."""
    keys, args = reserve_args(stream, count)
    return parse_reserved(await scripts[SCRIPT](keys=keys, args=args), count)

"""`Call`: one command or sluice script of a batch, and the wire command it becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.scripts import read_only, sha


@dataclass(frozen=True, slots=True)
class Call:
    """One command, or one sluice Lua script when `script` is set (then `keys` are its KEYS).

    `route` is a key whose slot picks the Cluster node (a keyless command such as FT.SEARCH runs
    on that node). `follows`: run right after the call before it, on the node that ran it, and
    again with it when it is redirected (WAIT / WAITAOF report on the writes before them on their
    connection).
    """

    args: tuple[Any, ...]
    route: str
    script: str | None = None
    keys: tuple[str, ...] = ()
    follows: bool = False


def command(call: Call) -> tuple[Any, ...]:
    """The wire command for a call: its own, or EVALSHA(_RO) of its script."""
    if not call.script:
        return call.args
    verb = "EVALSHA_RO" if read_only(call.script) else "EVALSHA"
    return (verb, sha(call.script), len(call.keys), *call.keys, *call.args)

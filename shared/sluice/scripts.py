"""Lua scripts shipped with the package, loaded by name and registered on a client.

Each `.lua` file opens with its key schema. A line ``--@include <name>`` is replaced by the
text of ``<name>.lua`` (a function shared by several scripts, e.g. stream_versions.lua): one
source, and each script stays one self-contained EVALSHA. redis-py's `Script` runs EVALSHA and
reloads on NOSCRIPT, on standalone, Sentinel-managed and Cluster clients alike. Cluster batches
of the vector runner send EVALSHA themselves (`sha`, of the expanded text) and load scripts per
node (`sluice.transport.cluster_batch`). A script whose first line
is ``#!lua flags=no-writes`` runs with EVALSHA_RO instead: a user allowed only reads (and
``+evalsha_ro``) may run it, and a replica can answer it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

INCLUDE = "--@include "


@cache
def source(name: str) -> str:
    """The text of `sluice/lua/<name>.lua`, its ``--@include`` lines expanded."""
    text = resources.files("sluice").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    lines = text.split("\n")
    return "\n".join(
        source(line[len(INCLUDE) :].strip()) if line.startswith(INCLUDE) else line for line in lines
    )


@cache
def sha(name: str) -> str:
    """The SHA1 digest EVALSHA names the script by (what SCRIPT LOAD returns)."""
    return hashlib.sha1(source(name).encode(), usedforsecurity=False).hexdigest()


@cache
def read_only(name: str) -> bool:
    """True if the script declares ``flags=no-writes`` in its shebang line (Redis >= 7)."""
    first = source(name).split("\n", 1)[0]
    return first.startswith("#!lua") and "no-writes" in first.partition("flags=")[2].split(",")


def _in_pipeline(client: Any, script: Any) -> None:
    """A pipeline loads its scripts (SCRIPT LOAD) before it runs them; register ours with it."""
    scripts = getattr(client, "scripts", None)
    if isinstance(scripts, set):
        scripts.add(script)


class ReadOnlyScript:
    """A registered script run with EVALSHA_RO; called like redis-py's `Script`."""

    def __init__(self, script: Any) -> None:
        self.script = script

    @property
    def sha(self) -> str:
        return str(self.script.sha)

    def __call__(
        self, keys: Sequence[Any] | None = None, args: Iterable[Any] | None = None, client: Any = None
    ) -> Any:
        keys, args = list(keys or []), list(args or [])
        client = self.script.registered_client if client is None else client
        _in_pipeline(client, self.script)
        try:
            return client.evalsha_ro(self.script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.script.sha = client.script_load(self.script.script)
            return client.evalsha_ro(self.script.sha, len(keys), *keys, *args)


class AsyncReadOnlyScript(ReadOnlyScript):
    """The asyncio twin of `ReadOnlyScript`."""

    async def __call__(
        self, keys: Sequence[Any] | None = None, args: Iterable[Any] | None = None, client: Any = None
    ) -> Any:
        keys, args = list(keys or []), list(args or [])
        client = self.script.registered_client if client is None else client
        _in_pipeline(client, self.script)
        try:
            return await client.evalsha_ro(self.script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.script.sha = await client.script_load(self.script.script)
            return await client.evalsha_ro(self.script.sha, len(keys), *keys, *args)


class Scripts:
    """The scripts registered on one client (sync or asyncio); build once per client.

    `scripts[name]` is called like redis-py's `Script` (``keys=, args=, client=``) whatever the
    flavour: EVALSHA, or EVALSHA_RO for a ``no-writes`` script.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._registered: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        script = self._registered.get(name)
        if script is None:
            script = self._client.register_script(source(name))
            if read_only(name):
                ro = AsyncReadOnlyScript if isinstance(script, AsyncScript) else ReadOnlyScript
                script = ro(script)
            self._registered[name] = script
        return script

"""Lua scripts shipped with the package, loaded by name and registered on a client.

Each `.lua` file opens with its key schema. redis-py's `Script` runs EVALSHA and reloads on
NOSCRIPT, on standalone, Sentinel-managed and Cluster clients alike.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any


@cache
def source(name: str) -> str:
    """The text of `sluice/lua/<name>.lua`."""
    return resources.files("sluice").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """The scripts registered on one client (sync or asyncio); build once per client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._registered: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        script = self._registered.get(name)
        if script is None:
            script = self._client.register_script(source(name))
            self._registered[name] = script
        return script

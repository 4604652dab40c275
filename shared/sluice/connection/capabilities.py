"""What the server can do, probed once per client: version, modules, cluster mode.

Use `probe(client)` / `await aprobe(client)` when a client is created, keep the `Capabilities`,
and call `capabilities.require("vectors", "the vector store")` before using a feature: the
error then says what is missing and how to get it. The probe is a small sans-I/O plan
(`_plan`) driven by a thin sync or async shell; raw replies are parsed in `parse_capabilities`.

Commands: ``INFO server`` (version, mode), ``MODULE LIST``; if the user may not run MODULE LIST,
``COMMAND INFO FT.SEARCH VADD JSON.GET FT.HYBRID``; if it may not run INFO, ``HELLO`` (no arguments, so the
protocol stays as it is). On a cluster one primary is asked.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.exceptions as rex

from sluice.errors import CapabilityMissing, ConfigError, PermissionDenied, SluiceError
from sluice.transport.translate import ServerErrors, translate_errors

Feature = Literal["search", "vector_sets", "json", "vectors"]
Version = tuple[int, int, int]
Command = tuple[str, ...]

_GET_LOCAL = "`pip install 'sluice[server]'` and `sluice server` for a local one"
_HOW_TO_GET: dict[Feature, str] = {
    "search": f"run Redis 8 (the redis:8 image) or load the RediSearch module; {_GET_LOCAL}",
    "json": f"run Redis 8 (the redis:8 image) or load the RedisJSON module; {_GET_LOCAL}",
    "vector_sets": f"run Redis 8 (the redis:8 image), which has Vector Sets built in; {_GET_LOCAL}",
    "vectors": f"run Redis 8 (the redis:8 image) or load RediSearch; {_GET_LOCAL}",
}
_WHAT: dict[Feature, str] = {
    "search": "RediSearch (FT.* commands)",
    "json": "RedisJSON (JSON.* commands)",
    "vector_sets": "Vector Sets (VADD/VSIM, Redis 8)",
    "vectors": "a vector backend: RediSearch (FT.SEARCH) or Vector Sets (VADD/VSIM, Redis 8)",
}


HYBRID_SEARCH_VERSION = 80400
"""The search module version (Redis 8.4's, ``MODULE LIST`` ``ver``) that brought ``FT.HYBRID``."""


@dataclass(frozen=True)
class Capabilities:
    """The probed server; `xackdel`, `waitaof` and `lag` are decided by version, `hybrid` (the
    `FT.HYBRID` command, RediSearch of Redis >= 8.4) by the search module's version."""

    version: Version
    search: bool
    search_version: int | None
    json: bool
    vector_sets: bool
    cluster: bool
    xackdel: bool
    waitaof: bool
    lag: bool
    hybrid: bool = False

    @property
    def vectors(self) -> bool:
        """Some vector backend exists (RediSearch or Vector Sets)."""
        return self.search or self.vector_sets

    def has(self, feature: Feature) -> bool:
        return bool(getattr(self, feature))

    def require(self, feature: Feature, for_what: str) -> None:
        """Raise `CapabilityMissing` (saying how to get it) unless the server has `feature`."""
        if not self.has(feature):
            version = ".".join(map(str, self.version))
            raise CapabilityMissing(
                f"{for_what} needs {_WHAT[feature]}, which this server (Redis {version}) does not "
                f"have; {_HOW_TO_GET[feature]}"
            )


class ProbeReplies(NamedTuple):
    """Raw replies of the probe; None where the command was not sent or was refused."""

    info: object = None
    modules: object = None
    commands: object = None
    hello: object = None
    cluster_client: bool = False


def parse_capabilities(replies: ProbeReplies) -> Capabilities:
    """Turn raw probe replies (RESP2 or RESP3, bytes or str) into `Capabilities`."""
    info = _info_fields(replies.info)
    hello = _as_dict(_plain(replies.hello))
    version_text = info.get("redis_version") or _text(hello.get("version"))
    if not version_text:
        if replies.info is None and replies.hello is None:
            raise PermissionDenied(
                "cannot read the server version: the Redis user may run neither INFO nor HELLO; "
                "grant +info (or +hello) in the ACL"
            )
        raise SluiceError("cannot read the server version from the INFO and HELLO replies")
    mode = info.get("redis_mode") or _text(hello.get("mode"))
    if mode == "sentinel":
        raise ConfigError(
            "the client is connected to a Sentinel, not to a Redis data node; use a "
            "redis+sentinel:// URL, which connects to the primary the sentinels name"
        )
    module_reply = replies.modules if replies.modules is not None else hello.get("modules")
    modules = _module_versions(module_reply)
    commands = _known_commands(replies.commands)
    version = _parse_version(version_text)
    search_version = modules.get("search", modules.get("ft"))
    return Capabilities(
        version=version,
        search=search_version is not None or "ft.search" in commands,
        search_version=search_version,
        json="rejson" in modules or "json.get" in commands,
        vector_sets="vectorset" in modules or "vadd" in commands,
        cluster=replies.cluster_client or mode == "cluster",
        xackdel=version >= (8, 2, 0),
        waitaof=version >= (7, 2, 0),
        lag=version >= (7, 0, 0),
        hybrid=(search_version or 0) >= HYBRID_SEARCH_VERSION or "ft.hybrid" in commands,
    )


def _plain(value: object) -> object:
    """bytes -> str, recursively; RESP3 maps stay dicts."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _as_dict(value: object) -> dict[Any, Any]:
    """A RESP3 map, or a RESP2 flat list of pairs, as a dict."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and len(value) % 2 == 0:
        return dict(zip(value[::2], value[1::2], strict=True))
    return {}


def _info_fields(reply: object) -> dict[str, str]:
    value = _plain(reply)
    if isinstance(value, str):  # unparsed INFO text
        pairs = (
            line.partition(":") for line in value.splitlines() if ":" in line and not line.startswith("#")
        )
        return {k.strip(): v.strip() for k, _, v in pairs}
    return {str(k): _text(v) for k, v in _as_dict(value).items()}


def _module_versions(reply: object) -> dict[str, int]:
    modules: dict[str, int] = {}
    entries = _plain(reply)
    for entry in entries if isinstance(entries, list) else []:
        fields = _as_dict(entry)
        name, ver = _text(fields.get("name")).lower(), fields.get("ver")
        if name:
            modules[name] = int(ver) if isinstance(ver, int | str) and str(ver).isdigit() else 0
    return modules


def _known_commands(reply: object) -> set[str]:
    value = _plain(reply)
    if isinstance(value, dict):
        return {str(k).lower() for k, v in value.items() if v}
    entries = value if isinstance(value, list) else []
    return {str(e[0]).lower() for e in entries if isinstance(e, list) and e}


def _parse_version(text: str) -> Version:
    numbers = [int(n) for n in re.findall(r"\d+", text)[:3]]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


# --- the probe: one plan, two thin shells ---

_REFUSED = object()
"""Stands for a reply the server refused (NOPERM, unknown command): the plan carries on."""


def _plan(cluster_client: bool) -> Generator[Command, object, Capabilities]:
    info = yield ("INFO", "server")
    modules = yield ("MODULE LIST",)
    probe = ("COMMAND INFO", "FT.SEARCH", "VADD", "JSON.GET", "FT.HYBRID")
    commands = (yield probe) if modules is _REFUSED else None
    hello = (yield ("HELLO",)) if info is _REFUSED else None
    return parse_capabilities(
        ProbeReplies(
            info=_unless_refused(info),
            modules=_unless_refused(modules),
            commands=_unless_refused(commands),
            hello=_unless_refused(hello),
            cluster_client=cluster_client,
        )
    )


def _unless_refused(reply: object) -> object:
    return None if reply is _REFUSED else reply


def _refused(error: rex.ResponseError) -> bool:
    return isinstance(error, rex.NoPermissionError) or any(
        ServerErrors.matches(error, w)
        for w in (ServerErrors.UNKNOWN_COMMAND, ServerErrors.UNKNOWN_SUBCOMMAND)
    )


def probe(client: redis.Redis | redis.cluster.RedisCluster) -> Capabilities:
    """Probe a sync client (plain, Sentinel-managed, or cluster: one primary is asked)."""
    is_cluster = isinstance(client, redis.cluster.RedisCluster)
    plan = _plan(is_cluster)
    with translate_errors("probe the server's capabilities"):
        if isinstance(client, redis.cluster.RedisCluster):
            primary = client.get_primaries()[0]  # type: ignore[no-untyped-call]
            target: redis.Redis = client.get_redis_connection(primary)
        else:
            target = client
        command = next(plan)
        while True:
            try:
                reply: object = target.execute_command(*command)  # type: ignore[no-untyped-call]
            except rex.ResponseError as error:
                if not _refused(error):
                    raise
                reply = _REFUSED
            try:
                command = plan.send(reply)
            except StopIteration as done:
                capabilities: Capabilities = done.value
                return capabilities


async def aprobe(client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster) -> Capabilities:
    """Probe an asyncio client (plain, Sentinel-managed, or cluster: one primary is asked)."""
    is_cluster = isinstance(client, redis.asyncio.cluster.RedisCluster)
    plan = _plan(is_cluster)
    with translate_errors("probe the server's capabilities"):
        options: dict[str, Any] = {}
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            await client.initialize()
            options["target_nodes"] = client.get_primaries()[0]
        command = next(plan)
        while True:
            try:
                reply: object = await client.execute_command(*command, **options)
            except rex.ResponseError as error:
                if not _refused(error):
                    raise
                reply = _REFUSED
            try:
                command = plan.send(reply)
            except StopIteration as done:
                capabilities: Capabilities = done.value
                return capabilities

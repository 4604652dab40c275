"""Connection URLs parsed into a typed `ConnectionSpec`, and redacted for logs.

Use `parse_url` once, where settings are turned into a client (`sluice.connection.factory`);
use `redact_url` whenever a URL is shown to a person. The accepted forms:

    redis://[[user]:password@]host[:port][/db][?option=value&...]
    rediss://...                                  same, over TLS
    unix://[[user]:password@]/path/to/redis.sock[?db=N&...]
    redis+sentinel://[[user]:password@]h1[:p1],h2[:p2],.../service[/db][?sentinel_username=..&sentinel_password=..]
    rediss+sentinel://...                         same, over TLS (sentinels and data nodes)
    redis+cluster://[[user]:password@]h1[:p1],h2[:p2],...[/0]
    rediss+cluster://...                          same, over TLS

User and password in the authority are always the *data node* credentials; sentinels take their
own from the query. Reserved characters in a user or password are percent-encoded (``@`` as
``%40``). Every malformed URL raises `URLError` naming the bad part; no message ever contains
the password, even a password the parser could not separate from the rest.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple
from urllib.parse import unquote

from sluice.connection.secrecy import LeakGuard, URLPart, redact_url
from sluice.connection.url_options import (
    CREDENTIAL_OPTIONS,
    KNOWN_OPTIONS,
    QUERY_OPTIONS,
    SECRET_OPTIONS,
    OptionValue,
)

Mode = Literal["standalone", "unix", "sentinel", "cluster"]

DEFAULT_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379


class HostPort(NamedTuple):
    """One node address; an IPv6 host is kept without brackets."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ConnectionSpec:
    """What a URL says, typed; `sluice.connection.factory` turns it into a client.

    `hosts` holds the node (standalone), the sentinels (sentinel) or the startup nodes (cluster);
    it is empty for `unix`. `options` holds the recognised query options, already typed.
    """

    mode: Mode
    tls: bool
    hosts: tuple[HostPort, ...]
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    options: dict[str, OptionValue] = field(default_factory=dict)


@dataclass(frozen=True)
class _Scheme:
    mode: Mode
    tls: bool
    default_port: int
    form: str  # the right form, quoted in error messages


_SCHEMES: Final[dict[str, _Scheme]] = {
    "redis": _Scheme("standalone", False, DEFAULT_PORT, "redis://[user:password@]host[:port][/db]"),
    "rediss": _Scheme("standalone", True, DEFAULT_PORT, "rediss://[user:password@]host[:port][/db]"),
    "unix": _Scheme("unix", False, 0, "unix://[user:password@]/path/to/redis.sock[?db=N]"),
    "redis+sentinel": _Scheme(
        "sentinel",
        False,
        DEFAULT_SENTINEL_PORT,
        "redis+sentinel://[user:password@]h1:26379,h2:26379/mymaster[/db]",
    ),
    "rediss+sentinel": _Scheme(
        "sentinel",
        True,
        DEFAULT_SENTINEL_PORT,
        "rediss+sentinel://[user:password@]h1:26379,h2:26379/mymaster[/db]",
    ),
    "redis+cluster": _Scheme(
        "cluster", False, DEFAULT_PORT, "redis+cluster://[user:password@]h1:6379,h2:6379"
    ),
    "rediss+cluster": _Scheme(
        "cluster", True, DEFAULT_PORT, "rediss+cluster://[user:password@]h1:6379,h2:6379"
    ),
}
_SCHEME_LIST: Final = ", ".join(f"{name}://" for name in _SCHEMES)
_TLS_SCHEME: Final[dict[Mode, str]] = {
    "standalone": "rediss",
    "sentinel": "rediss+sentinel",
    "cluster": "rediss+cluster",
}
__all__ = ["ConnectionSpec", "HostPort", "Mode", "OptionValue", "URLPart", "parse_url", "redact_url"]


def parse_url(url: str) -> ConnectionSpec:
    """Parse a Redis connection URL (see the module docstring for the forms); raises `URLError`."""
    guard = LeakGuard(url)
    text = url.strip()
    scheme_text, sep, rest = text.partition("://")
    if not sep:
        raise guard.error("scheme", _missing_scheme_message(text))
    scheme = _SCHEMES.get(scheme_text.lower())
    if scheme is None:
        # a scheme cannot hold credentials; echo it only if it looks like one
        shown = (
            repr(scheme_text) if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,19}", scheme_text) else "in the URL"
        )
        raise guard.error("scheme", f"unknown scheme {shown}; use one of {_SCHEME_LIST}")
    if "#" in rest:
        raise guard.error(
            "path", "'#' is not allowed in a Redis URL; inside a password or path, percent-encode it as %23"
        )
    body, _, query = rest.partition("?")
    options, credentials, query_db = _parse_query(query, scheme, guard)
    guard.add_secret(credentials.get("password"))
    guard.add_secret(credentials.get("sentinel_password"))
    path: str | None = None
    if scheme.mode == "unix":
        userinfo, path = _split_unix(body, scheme, guard)
        hosts: tuple[HostPort, ...] = ()
        path_text = ""
    else:
        authority, slash, tail = body.partition("/")
        if "@" in tail:  # credentials holding a raw '/': the rest of them would pass for a path
            raise guard.error(
                "path",
                "'@' after the first '/'; percent-encode '/' as %2F and '@' as %40 in a user or password",
            )
        userinfo, at, hostlist = authority.rpartition("@")
        userinfo = userinfo if at else ""
        hosts = _parse_hosts(hostlist, scheme, guard)
        path_text = slash + tail
    username, password = _split_userinfo(userinfo, guard)
    username = _merge("username", username, credentials.get("username"), guard)
    password = _merge("password", password, credentials.get("password"), guard)
    service, path_db = _parse_path(path_text, scheme, guard)
    db = _merge_db(path_db, query_db, guard)
    if scheme.mode == "cluster" and db != 0:
        raise guard.error("db", f"Redis Cluster has only database 0; drop the db or write /0: {scheme.form}")
    return ConnectionSpec(
        mode=scheme.mode,
        tls=scheme.tls,
        hosts=hosts,
        path=path,
        db=db,
        username=username,
        password=password,
        service_name=service,
        sentinel_username=credentials.get("sentinel_username"),
        sentinel_password=credentials.get("sentinel_password"),
        options=options,
    )


def _missing_scheme_message(text: str) -> str:
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", text)
    if match and match.group(1).lower() in _SCHEMES:
        form = _SCHEMES[match.group(1).lower()].form
        return f"the scheme must be followed by '://', as in {form}"
    return f"the URL has no scheme; start it with one of {_SCHEME_LIST} (e.g. redis://localhost:6379/0)"


def _parse_query(
    query: str, scheme: _Scheme, guard: LeakGuard
) -> tuple[dict[str, OptionValue], dict[str, str], str | None]:
    options: dict[str, OptionValue] = {}
    credentials: dict[str, str] = {}
    db: str | None = None
    seen: set[str] = set()
    for pair in query.split("&"):
        if not pair:
            continue
        raw_name, eq, raw_value = pair.partition("=")
        name, value = unquote(raw_name), unquote(raw_value)
        if name in seen:
            raise guard.error("query", f"option {guard.show(name)} is given twice; keep one")
        seen.add(name)
        if name in SECRET_OPTIONS:
            guard.add_secret(raw_value)
        if not eq or not value:
            raise guard.error("query", f"option {guard.show(name)} has no value; write option=value pairs")
        if name == "db":
            db = value
        elif name in CREDENTIAL_OPTIONS:
            if name.startswith("sentinel_") and scheme.mode != "sentinel":
                raise guard.error(
                    "query",
                    f"{name} applies only to redis+sentinel:// and rediss+sentinel:// URLs; remove it",
                )
            credentials[name] = value
        elif name in QUERY_OPTIONS:
            options[name] = _parse_option(name, value, scheme, guard)
        else:
            raise guard.error(
                "query", f"unknown option {guard.show(name)}; the known options are {KNOWN_OPTIONS}"
            )
    return options, credentials, db


def _parse_option(name: str, value: str, scheme: _Scheme, guard: LeakGuard) -> OptionValue:
    option = QUERY_OPTIONS[name]
    if option.tls_only and not scheme.tls:
        tls_scheme = _TLS_SCHEME.get(scheme.mode)
        fix = f"use {tls_scheme}:// for TLS" if tls_scheme else "unix sockets do not use TLS"
        raise guard.error("query", f"{name} is a TLS option but the scheme has no TLS; {fix}")
    try:
        return option.parse(value)
    except ValueError:
        pass  # raised below, outside the handler, so no traceback context carries the value
    raise guard.error("query", f"{name}={guard.show(value)} is not valid; expected {option.expected}")


def _split_unix(body: str, scheme: _Scheme, guard: LeakGuard) -> tuple[str, str]:
    if body.startswith("/"):
        userinfo, path = "", body
    else:
        at = body.rfind("@/")
        if at < 0:
            message = (
                "unix:// takes no host, only an absolute socket path"
                if body
                else "unix:// needs a socket path"
            )
            raise guard.error("path", f"{message}: {scheme.form} (e.g. unix:///run/redis/redis.sock)")
        userinfo, path = body[:at], body[at + 1 :]
    path = unquote(path)
    if path.strip("/") == "":
        raise guard.error("path", f"unix:// needs the socket's path: {scheme.form}")
    return userinfo, path


def _split_userinfo(userinfo: str, guard: LeakGuard) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    guard.add_secret(password)
    return (unquote(user) or None), (unquote(password) if colon and password else None)


def _merge(name: str, in_authority: str | None, in_query: str | None, guard: LeakGuard) -> str | None:
    if in_authority is not None and in_query is not None:
        raise guard.error("query", f"the {name} is given twice (before '@' and as ?{name}=); keep one")
    return in_authority if in_authority is not None else in_query


def _parse_hosts(text: str, scheme: _Scheme, guard: LeakGuard) -> tuple[HostPort, ...]:
    if not text:
        raise guard.error("host", f"the URL has no host; write {scheme.form}")
    items = text.split(",")
    if scheme.mode == "standalone" and len(items) > 1:
        raise guard.error(
            "host",
            f"{'rediss' if scheme.tls else 'redis'}:// takes one host ({len(items)} given); for several, "
            "use redis+sentinel:// or redis+cluster://",
        )
    hosts: list[HostPort] = []
    for position, item in enumerate(items, start=1):
        if not item:
            raise guard.error(
                "host", f"host number {position} of the list is empty; remove the extra comma: {scheme.form}"
            )
        node = _parse_host(item, scheme, guard)
        if node in hosts:
            raise guard.error(
                "host", f"{guard.show(node.host)} port {node.port} is listed twice; list each node once"
            )
        hosts.append(node)
    return tuple(hosts)


def _parse_host(item: str, scheme: _Scheme, guard: LeakGuard) -> HostPort:
    if item.startswith("["):
        close = item.find("]")
        if close < 0:
            raise guard.error("host", "an IPv6 address lacks its closing ']'; write [::1]:6379")
        host, after = item[1:close], item[close + 1 :]
        if not _is_ipv6(host):
            raise guard.error("host", f"{guard.show(host)} is not an IPv6 address; write [::1]:6379")
        if after and not after.startswith(":"):
            raise guard.error("host", "unexpected text after ']'; write [::1]:6379")
        port_text = after[1:] if after else None
    else:
        if item.count(":") > 1:
            raise guard.error("host", "an IPv6 address must be in brackets: [::1]:6379")
        raw_host, colon, raw_port = item.partition(":")
        host, port_text = unquote(raw_host).lower(), (raw_port if colon else None)
        if not host:
            raise guard.error("host", f"a host is empty before ':port'; write {scheme.form}")
        if not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", host):
            raise guard.error(
                "host",
                f"{guard.show(host)} is not a host name or IPv4 address (letters, digits, '.', '-', '_')",
            )
    return HostPort(host, _parse_port(port_text, scheme, guard))


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _parse_port(text: str | None, scheme: _Scheme, guard: LeakGuard) -> int:
    if text is None:
        return scheme.default_port
    if not text:
        raise guard.error(
            "port", f"the port after ':' is empty; write a number (default {scheme.default_port})"
        )
    if not re.fullmatch(r"[0-9]+", text):
        raise guard.error(
            "port", f"port {guard.show(text)} is not a number; write host:{scheme.default_port}"
        )
    port = int(text)
    if not 1 <= port <= 65535:
        raise guard.error("port", f"port {guard.show(text)} is out of range; a port is between 1 and 65535")
    return port


def _parse_path(path: str, scheme: _Scheme, guard: LeakGuard) -> tuple[str | None, str | None]:
    """Return (service name, db text) from the part after the hosts."""
    segments = [unquote(s) for s in path.split("/")[1:]] if path else []
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if scheme.mode == "sentinel":
        if not segments or not segments[0]:
            raise guard.error(
                "service", f"a Sentinel URL needs the service (master) name after the hosts: {scheme.form}"
            )
        if len(segments) > 2:
            raise guard.error("path", f"after the hosts come only /service and /db: {scheme.form}")
        if re.search(r"\s", segments[0]):
            raise guard.error("service", f"the service name {guard.show(segments[0])} contains a space")
        return segments[0], (segments[1] if len(segments) == 2 else None)
    if len(segments) > 1:
        raise guard.error("path", f"after the host comes at most /db: {scheme.form}")
    return None, (segments[0] if segments else None)


def _parse_db(text: str, guard: LeakGuard) -> int:
    if re.fullmatch(r"-[0-9]+", text):
        raise guard.error(
            "db", f"db must be 0 or more (got {guard.show(text)}); write /0 for the default database"
        )
    if not re.fullmatch(r"[0-9]+", text):
        raise guard.error("db", f"db {guard.show(text)} is not a number; write the database number, e.g. /0")
    db = int(text)
    if db >= 2**31:
        raise guard.error(
            "db", f"db {guard.show(text)} is too large; Redis numbers databases from 0 (16 by default)"
        )
    return db


def _merge_db(path_db: str | None, query_db: str | None, guard: LeakGuard) -> int:
    from_path = _parse_db(path_db, guard) if path_db is not None else None
    from_query = _parse_db(query_db, guard) if query_db is not None else None
    if from_path is not None and from_query is not None and from_path != from_query:
        raise guard.error("db", "db is given twice (in the path and as ?db=) with different values; keep one")
    return next((db for db in (from_path, from_query) if db is not None), 0)

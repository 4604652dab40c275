"""Query options of a connection URL: one table of typed parsers, like redis-py's URL parser.

Use `QUERY_OPTIONS[name].parse(text)` to turn an option's text into its typed value; a bad value
raises ValueError, which `sluice.connection.urls` turns into a `URLError` naming the option.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

OptionValue = str | float | int | bool


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError(text)
    return value


def _positive_int(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise ValueError(text)
    return int(text)


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ValueError(text)


def _cert_reqs(text: str) -> str:
    lowered = text.lower()
    if lowered not in ("required", "optional", "none"):
        raise ValueError(text)
    return lowered


def _word(text: str) -> str:
    if not re.fullmatch(r"[!-~]+", text):  # printable ASCII, no spaces (CLIENT SETNAME rule)
        raise ValueError(text)
    return text


@dataclass(frozen=True)
class QueryOption:
    """How to read one option: its parser, what a good value looks like, whether it needs TLS."""

    parse: Callable[[str], OptionValue]
    expected: str
    tls_only: bool = False


QUERY_OPTIONS: Final[dict[str, QueryOption]] = {
    "socket_timeout": QueryOption(_positive_float, "a number of seconds above 0"),
    "socket_connect_timeout": QueryOption(_positive_float, "a number of seconds above 0"),
    "health_check_interval": QueryOption(_non_negative_float, "a number of seconds, 0 or more"),
    "max_connections": QueryOption(_positive_int, "a whole number, 1 or more"),
    "client_name": QueryOption(_word, "a name without spaces"),
    "ssl_ca_certs": QueryOption(str, "a file path", tls_only=True),
    "ssl_certfile": QueryOption(str, "a file path", tls_only=True),
    "ssl_keyfile": QueryOption(str, "a file path", tls_only=True),
    "ssl_cert_reqs": QueryOption(_cert_reqs, "one of required, optional, none", tls_only=True),
    "ssl_check_hostname": QueryOption(_boolean, "true or false", tls_only=True),
}
CREDENTIAL_OPTIONS: Final = ("username", "password", "sentinel_username", "sentinel_password")
SECRET_OPTIONS: Final = ("password", "sentinel_password")
KNOWN_OPTIONS: Final = ", ".join(["db", *QUERY_OPTIONS, *CREDENTIAL_OPTIONS])

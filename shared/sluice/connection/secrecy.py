"""Keeping passwords out of text: `redact_url` for logs, `LeakGuard` for URL error messages.

Use `redact_url` whenever a URL is shown to a person (reprs, logs, status output). `LeakGuard`
is for the URL parser only: every value it echoes in an error goes through `LeakGuard.show`.
"""

from __future__ import annotations

import re
from typing import Final, Literal
from urllib.parse import unquote

from sluice.errors import URLError

URLPart = Literal["scheme", "host", "port", "db", "service", "path", "query"]
"""The part a `URLError` names."""


class LeakGuard:
    """Builds `URLError`s that cannot leak the password.

    A password with unencoded reserved characters is split wrongly by any parser, so a piece of
    it may land in a "port" or an option name. Credentials can only sit before the last ``@``;
    the guard therefore echoes a value only if it appears after that ``@`` and not before it,
    and scrubs every known secret from the final message as a last resort.
    """

    _HIDDEN: Final = "(a value hidden because it may be part of the password)"

    def __init__(self, url: str) -> None:
        rest = url.partition("://")[2] or url
        at = rest.rfind("@")
        self._private = rest[:at].lower() if at >= 0 else ""
        public = rest[at + 1 :]
        self._public = (public + "\n" + unquote(public)).lower()
        self._secrets: set[str] = set()
        if at >= 0:
            self.add_secret(rest[:at].partition(":")[2])
            self.add_secret(rest[:at])

    def add_secret(self, value: str | None) -> None:
        if value:
            self._secrets.update((value, unquote(value)))

    def show(self, value: str) -> str:
        """`repr(value)` unless it might be (part of) a secret."""
        lowered = value.lower()
        if value and (
            lowered not in self._public
            or (self._private and lowered in self._private)
            or any(secret.lower() in lowered for secret in self._secrets)
        ):
            return self._HIDDEN
        return repr(value)

    def error(self, part: URLPart, message: str) -> URLError:
        for secret in sorted(self._secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return URLError(part, message)


_QUERY_SECRET: Final = re.compile(
    r"([?&](?:sentinel_)?password=)[^&]*(?:&(?![A-Za-z_]+=)[^&]*)*", re.IGNORECASE
)
_UNREADABLE: Final = "<a Redis URL that could not be redacted>"


def redact_url(url: str) -> str:
    """`url` with every password replaced by ``***``; safe for logs and reprs, never raises.

    When in doubt it hides too much: everything between the user name and the last ``@``.
    """
    try:
        return _redact(url)
    except Exception:  # must never raise, whatever it is given
        return _UNREADABLE


def _redact(url: str) -> str:
    if not isinstance(url, str):
        return _UNREADABLE
    scheme, sep, rest = url.partition("://")
    prefix = scheme + sep if sep else ""
    rest = rest if sep else url
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        if colon:
            rest = f"{user}:***{rest[at:]}"
    return prefix + _QUERY_SECRET.sub(r"\1***", rest)

"""Keeping passwords out of text: `redact_url` for logs, `LeakGuard` for URL error messages,
`hide_secrets` for free-form keyword arguments.

Use `redact_url` whenever a URL is shown to a person (reprs, logs, status output). `LeakGuard`
is for the URL parser only: every value it echoes in an error goes through `LeakGuard.show`.
`hide_secrets` wraps the secret-looking values of a kwargs mapping (an embedder's `api_key`) in
`Hidden`, which prints as ``**********``; `reveal_secrets` gives them back to the constructor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal
from urllib.parse import unquote

from pydantic import SecretStr

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


SECRET_WORDS: Final = frozenset(
    {
        "key", "keys", "apikey", "token", "secret", "secrets", "password", "passwords", "passwd", "pwd",
        "passphrase", "credential", "credentials", "auth", "authorization", "cookie", "bearer",
    }
)  # fmt: skip
"""A kwarg name holding one of these words (split at ``_``, ``-``, ``.`` and camelCase) is secret."""

_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_URL_PASSWORD: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:[^/?#]*@")


class Hidden(SecretStr):
    """A string `hide_secrets` took for a secret: ``**********`` in reprs, dumps and errors."""


def is_secret_name(name: str) -> bool:
    """True for ``api_key``, ``openai_api_key``, ``apiKey``, ``X-Api-Key``, ``hf_token``, ``Authorization``…"""
    return any(word.lower() in SECRET_WORDS for word in _WORD.findall(name))


def hide_secrets(value: Any, secret: bool = False) -> Any:
    """`value` with every string under a secret-looking key (at any depth) wrapped in `Hidden`.

    Everything below a secret key is secret (``credentials: {user: ...}``), and so is a URL that
    carries a password. Containers are rebuilt only when something in them is hidden.
    """
    if isinstance(value, str):
        return Hidden(value) if secret or _URL_PASSWORD.match(value) else value
    if isinstance(value, Mapping):
        items = {
            k: hide_secrets(v, secret or (isinstance(k, str) and is_secret_name(k))) for k, v in value.items()
        }
        return items if any(items[k] is not value[k] for k in items) else value
    if isinstance(value, (list, tuple)):
        hidden = [hide_secrets(v, secret) for v in value]
        if all(h is v for h, v in zip(hidden, value, strict=True)):
            return value
        return type(value)(hidden) if isinstance(value, tuple) else hidden
    return value


def reveal_secrets(value: Any) -> Any:
    """`value` with every `Hidden` string given back; for the constructor's call only, never for text."""
    if isinstance(value, Hidden):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {k: reveal_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        revealed = [reveal_secrets(v) for v in value]
        return type(value)(revealed) if isinstance(value, tuple) else revealed
    return value


def hidden_values(value: Any) -> list[str]:
    """Every `Hidden` string in `value`, at any depth."""
    found: list[str] = []

    def collect(v: Any) -> None:
        if isinstance(v, Hidden):
            found.append(v.get_secret_value())
        elif isinstance(v, Mapping):
            for item in v.values():
                collect(item)
        elif isinstance(v, (list, tuple)):
            for item in v:
                collect(item)

    collect(value)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (longest first, so no secret leaves a tail) replaced by ``**********``."""
    for secret in sorted(filter(None, set(secrets)), key=len, reverse=True):
        text = text.replace(secret, "**********")
    return text


def scrub_secrets(text: str, value: Any) -> str:
    """`text` with every `Hidden` string found in `value` replaced by ``**********``.

    For the message of an error a constructor raised after it was given the revealed kwargs.
    """
    return scrub(text, hidden_values(value))

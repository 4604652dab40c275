"""The one place where redis-py exceptions become sluice errors.

Wrap every call into redis-py at the transport edge, in sync and async code alike:

    with translate_errors("enqueue"):
        client.xadd(...)                 # or: await client.xadd(...)

`what` names the operation; it starts every message, which then says what to do next. Errors
that are not redis-py's pass through untouched. `ServerErrors` collects the wordings of server
error replies for code that must tell them apart (a missing script, an existing group, ...).
"""

from __future__ import annotations

from types import TracebackType
from typing import ClassVar, Final

import redis.asyncio.sentinel
import redis.exceptions as rex
import redis.sentinel

from sluice.errors import (
    ConfigError,
    PermissionDenied,
    RedisFull,
    RedisTimeout,
    RedisUnavailable,
    ServerError,
    SluiceError,
)

_DETAIL_LIMIT: Final = 300
_TLS_HINT: Final = (
    "; the TLS session broke: if this persists, the server may require a client certificate "
    "(ssl_certfile / ssl_keyfile) or may not speak TLS on that port"
)
_TLS_CONFIG_MARKERS: Final = (
    "CERTIFICATE",
    "WRONG_VERSION_NUMBER",
    "HOSTNAME MISMATCH",
    "UNKNOWN CA",
    "TLSV13_ALERT",
)


class ServerErrors:
    """Wordings of Redis error replies.

    Error codes (upper case) are the reply's first word; phrases are matched anywhere. Use
    `ServerErrors.matches(error, ServerErrors.BUSYGROUP)` rather than comparing strings: redis-py
    strips some codes from the message and turns them into exception classes.
    """

    UNKNOWN_COMMAND: Final = "unknown command"
    UNKNOWN_SUBCOMMAND: Final = "unknown subcommand"
    NOSCRIPT: Final = "NOSCRIPT"
    BUSYGROUP: Final = "BUSYGROUP"
    NOGROUP: Final = "NOGROUP"
    WRONGTYPE: Final = "WRONGTYPE"
    OOM: Final = "OOM"
    NOPERM: Final = "NOPERM"
    ACL_IN_SCRIPT: Final = "ACL failure in script"  # a script hit a key or command the user lacks
    READONLY: Final = "READONLY"
    LOADING: Final = "LOADING"
    UNKNOWN_INDEX: Final = "unknown index name"  # RediSearch 2.x
    NO_SUCH_INDEX: Final = "no such index"  # older RediSearch
    INDEX_EXISTS: Final = "index already exists"

    _CLASSES: ClassVar[dict[str, type[rex.RedisError]]] = {
        "NOSCRIPT": rex.NoScriptError,
        "OOM": rex.OutOfMemoryError,
        "NOPERM": rex.NoPermissionError,
        "READONLY": rex.ReadOnlyError,
        "LOADING": rex.BusyLoadingError,
    }

    @classmethod
    def matches(cls, error: BaseException, wording: str) -> bool:
        """True if `error` is the server error `wording` (one of this class's constants)."""
        known = cls._CLASSES.get(wording)
        if known is not None and isinstance(error, known):
            return True
        message = str(error)
        if wording.isupper():
            return getattr(error, "status_code", None) == wording or message.split(" ", 1)[0] == wording
        return wording.lower() in message.lower()


# The error table. A server error reply is sorted by its code (the first word) into one of three:
#   transient  the server cannot serve the call *now* (loading, busy, failing over, migrating a
#              slot): RedisUnavailable, so a job in hand stays pending and the attempt does not
#              count against it;
#   permanent  the call can never succeed as sent (ServerError, retryable=False);
#   anything else, including codes this table does not know: ServerError, retryable=True
#              (retried with backoff up to max_deliveries, then dead-lettered with the reply).
TRANSIENT_CODES: Final = frozenset(
    {"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "READONLY"}
    | {"NOREPLICAS", "MISCONF", "UNBLOCKED", "NOTREADY", "NOQUORUM"}
)
PERMANENT_CODES: Final = frozenset({"WRONGTYPE", "CROSSSLOT", "EXECABORT", "NOPROTO", "WRONGPASS"})
# `ERR ...` replies that are permanent: the command, its arguments or its value are wrong.
PERMANENT_ERR_PHRASES: Final = (
    "unknown command",
    "unknown subcommand",
    "wrong number of arguments",
    "syntax error",
    "value is not",
    "not an integer",
    "not a valid float",
    "out of range",
    "string exceeds maximum allowed size",
    "protocol error",
    "invalid",
)
_CODE_OF_CLASS: Final[tuple[tuple[type[rex.RedisError], str], ...]] = (
    (rex.BusyLoadingError, "LOADING"),
    (rex.MasterDownError, "MASTERDOWN"),
    (rex.TryAgainError, "TRYAGAIN"),
    (rex.ClusterDownError, "CLUSTERDOWN"),
    (rex.AskError, "ASK"),  # MovedError is a subclass of AskError
    (rex.ClusterCrossSlotError, "CROSSSLOT"),
    (rex.ExecAbortError, "EXECABORT"),
    (rex.NoScriptError, "NOSCRIPT"),
)


def error_code(error: BaseException) -> str:
    """The server reply's code (``ERR``, ``WRONGTYPE``, ``MOVED``, ...), also where redis-py turned it
    into an exception class and dropped it from the message; ``""`` if there is none."""
    for cls, code in _CODE_OF_CLASS:
        if isinstance(error, cls):
            return "MOVED" if isinstance(error, rex.MovedError) else code
    first = str(error).split(" ", 1)[0]
    return first if first.isupper() and first.isalpha() else ""


def is_permanent_reply(error: BaseException) -> bool:
    """True only for error replies known to be permanent (see the table above)."""
    code = error_code(error)
    if code in PERMANENT_CODES:
        return True
    if code == "ERR" or not code:
        text = str(error).lower()
        return any(phrase in text for phrase in PERMANENT_ERR_PHRASES)
    return False


def _detail(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."


def _is_tls_config_problem(error: BaseException) -> bool:
    text = str(error).upper()
    return "SSL" in text and any(marker in text for marker in _TLS_CONFIG_MARKERS)


def to_sluice_error(error: BaseException, what: str) -> SluiceError | None:
    """The sluice error for a redis-py `error`, or None if it is not redis-py's.

    Use it in an `except` clause where a context manager does not fit; otherwise prefer
    `translate_errors`.
    """
    detail = _detail(error)
    if isinstance(error, rex.TimeoutError):
        return RedisTimeout(
            f"{what}: Redis did not answer in time ({detail}); check the server's load and the network, "
            "or raise SLUICE_REDIS__SOCKET_TIMEOUT"
        )
    if isinstance(error, rex.AuthenticationError | rex.AuthorizationError):
        return PermissionDenied(
            f"{what}: Redis refused the credentials ({detail}); check the user and password "
            "(in the URL or SLUICE_REDIS__USERNAME / SLUICE_REDIS__PASSWORD)"
        )
    if (
        isinstance(error, rex.NoPermissionError)
        or ServerErrors.matches(error, ServerErrors.NOPERM)
        or ServerErrors.matches(error, ServerErrors.ACL_IN_SCRIPT)
    ):
        return PermissionDenied(
            f"{what}: the Redis user lacks a permission ({detail}); grant it in the ACL "
            "(ACL SETUSER ...) or connect as a user that has it"
        )
    if isinstance(error, redis.sentinel.MasterNotFoundError | redis.asyncio.sentinel.MasterNotFoundError):
        return RedisUnavailable(
            f"{what}: no Sentinel named a primary for the service ({detail}); check the sentinel "
            "addresses, the service name and the sentinel credentials (sentinel_username / "
            "sentinel_password), then retry"
        )
    if isinstance(error, rex.ConnectionError) and _is_tls_config_problem(error):
        return ConfigError(
            f"{what}: the TLS handshake failed ({detail}); check ssl_ca_certs (the CA that signed the "
            "server's certificate), the client certificate and key (ssl_certfile / ssl_keyfile), and "
            "that the host name matches the certificate"
        )
    if isinstance(error, rex.ConnectionError):
        tls_hint = _TLS_HINT if "SSL" in str(error).upper() else ""
        return RedisUnavailable(
            f"{what}: cannot reach Redis ({detail}); check that the server runs and the URL's host and "
            f"port are right{tls_hint}; the call can be retried"
        )
    if isinstance(error, rex.TryAgainError):
        return RedisUnavailable(
            f"{what}: a Redis Cluster slot is being migrated (TRYAGAIN: {detail}); the call is retried "
            "shortly, and succeeds once the slot has moved"
        )
    if isinstance(error, rex.ClusterDownError | rex.ClusterError):
        return RedisUnavailable(
            f"{what}: the Redis Cluster is not serving every slot ({detail}); wait until CLUSTER INFO "
            "shows cluster_state:ok, then retry"
        )
    if isinstance(error, rex.RedisClusterException):
        return RedisUnavailable(
            f"{what}: cannot use the Redis Cluster ({detail}); check the startup nodes in the URL and "
            "that the cluster is up (CLUSTER INFO), then retry"
        )
    if isinstance(error, rex.ReadOnlyError):
        return RedisUnavailable(
            f"{what}: the server is a read-only replica ({detail}), usually during a failover; retry shortly"
        )
    if isinstance(error, rex.OutOfMemoryError) or ServerErrors.matches(error, ServerErrors.OOM):
        return RedisFull(
            f"{what}: Redis is out of memory ({detail}); free memory, raise maxmemory, or let the "
            "workers drain the queues"
        )
    if isinstance(error, rex.RedisError):
        return _server_error(error, what, detail)
    return None


def _server_error(error: rex.RedisError, what: str, detail: str) -> SluiceError:
    code = error_code(error)
    if code in TRANSIENT_CODES:
        return RedisUnavailable(
            f"{what}: Redis cannot serve the call right now ({code}: {detail}); it is loading, busy, "
            "failing over or moving a slot; the call is retried"
        )
    if is_permanent_reply(error):
        return ServerError(f"{what}: Redis refused the call: {detail}", code or "ERR", retryable=False)
    return ServerError(
        f"{what}: Redis replied with an error: {detail}; retried with backoff", code or "ERR", retryable=True
    )


class translate_errors:  # lower case: it reads like a function, `with translate_errors("enqueue"):`
    """Context manager (sync `with`, or `async with`) that re-raises redis-py errors as sluice errors."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if error is not None:
            translated = to_sluice_error(error, self.what)
            if translated is not None:
                raise translated from error

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, error, tb)

"""One error root for everything sluice raises.

Transport errors (`redis.RedisError`) are translated into these at the transport edge
(`sluice.transport.translate`), so apps catch `SluiceError` and never a redis-py type.
Every message says what is wrong and what to do next.
"""

from __future__ import annotations


class SluiceError(Exception):
    """Root of every error sluice raises."""


class ConfigError(SluiceError):
    """Settings or arguments that cannot work (fix the configuration)."""


class InvalidArgument(ConfigError, ValueError):
    """An argument a sluice call cannot take (a ValueError too: callers that catch ValueError
    for bad arguments, as LangChain code does, still catch it)."""


class InvalidArgumentType(ConfigError, TypeError):
    """An argument of the wrong type, or a keyword a sluice call does not take (a TypeError too)."""


class NoEventLoop(SluiceError, RuntimeError):
    """An asyncio connection was asked for outside a running event loop (use it inside a coroutine)."""


class URLError(InvalidArgument):
    """A connection URL that cannot be parsed; `part` names the bad piece.

    The message never contains the password.
    """

    def __init__(self, part: str, message: str) -> None:
        self.part = part
        super().__init__(f"bad Redis URL ({part}): {message}")


class RedisUnavailable(SluiceError):
    """Redis could not be reached or stopped answering (retry later or check the server)."""


class RedisTimeout(RedisUnavailable):
    """Redis did not answer within the configured timeout."""


class RedisFull(SluiceError):
    """Redis refused a write because `maxmemory` is reached (free memory or raise the limit)."""


class ServerError(SluiceError):
    """A server error reply that is not about reachability, memory or permissions.

    `code` is the reply's first word (``ERR``, ``WRONGTYPE``, ...). `retryable` is False only for
    replies known to be permanent (a wrong type, a syntax or argument error, a cross-slot call):
    an error reply sluice does not know is retried, never taken as proof that a job is bad.
    """

    def __init__(self, message: str, code: str, *, retryable: bool) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class PermissionDenied(SluiceError):
    """The Redis user lacks a permission (check the ACL for this user)."""


class CapabilityMissing(SluiceError):
    """The server lacks a module or version this feature needs; the message says how to get it."""


class StoreCorrupted(SluiceError):
    """A stored value has the wrong type or content; the message names the key."""


class PayloadTooLarge(SluiceError):
    """A job or a field of it exceeds a configured limit; refused before anything was written."""

    def __init__(self, what: str, size: int, limit: int, setting: str) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(
            f"{what} is {size} but the limit is {limit}; split the work into smaller jobs or raise {setting}"
        )


class DurabilityNotReached(SluiceError):
    """The jobs ARE in the stream, but no replica / fsync confirmed them within the timeout.

    Retrying the enqueue would add them a second time; check replication or the AOF instead.
    """


class QueueFull(SluiceError):
    """A job stream's backlog is above `queue.max_backlog` (add workers or wait)."""

    def __init__(self, stream: str, backlog: int, limit: int) -> None:
        self.stream = stream
        self.backlog = backlog
        self.limit = limit
        super().__init__(
            f"queue {stream} holds {backlog} unprocessed jobs (limit {limit}); "
            "start more workers, retry later, or set SLUICE_QUEUE__BACKLOG_POLICY=wait"
        )


class JobDecodeError(SluiceError):
    """A stream entry is not a valid job; carries the entry id so it can be dead-lettered."""

    def __init__(self, entry_id: str, reason: str) -> None:
        self.entry_id = entry_id
        self.reason = reason
        super().__init__(f"stream entry {entry_id} is not a valid sluice job: {reason}")


class JobError(SluiceError):
    """Raised by handlers; `retryable` decides between retry with backoff and the dead-letter stream."""

    retryable: bool = True


class RetryableJobError(JobError):
    """A transient failure (a model or Redis hiccup): the job is retried with backoff."""

    retryable = True


class PermanentJobError(JobError):
    """A job that can never succeed (bad content): it goes to the dead-letter stream."""

    retryable = False


class JobFailed(SluiceError):
    """`wait()` found the job dead-lettered; `reason` is what the worker recorded."""

    def __init__(self, entry_id: str, reason: str) -> None:
        self.entry_id = entry_id
        self.reason = reason
        super().__init__(
            f"job {entry_id} was dead-lettered: {reason} (inspect it with `sluice dlq show {entry_id}`)"
        )


class WaitTimeout(SluiceError):
    """`wait()` gave up before the jobs were applied (are workers running? see `sluice status`)."""

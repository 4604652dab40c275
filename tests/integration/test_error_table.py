"""The error table (sluice.transport.translate): real server error replies sorted into transient
(RedisUnavailable: a job in hand stays pending and the attempt does not count), permanent, and
unknown-hence-retryable; and how the worker's verdict follows from it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis as redis_py
import redis.exceptions as rex

from sluice.errors import RedisUnavailable, ServerError
from sluice.settings import WorkerSettings
from sluice.transport.translate import error_code, to_sluice_error
from sluice_workers.runtime.outcomes import judge


def reply_of(client: redis_py.Redis, *command: Any) -> rex.RedisError:
    try:
        client.execute_command(*command)
    except rex.RedisError as e:
        return e
    raise AssertionError(f"{command} did not fail")


def test_real_permanent_replies_are_permanent(redis8: Any) -> None:
    client = redis8.client()
    client.set("table:str", "x")
    for command in (
        ("LPUSH", "table:str", "y"),  # WRONGTYPE
        ("NOSUCHCOMMAND",),  # ERR unknown command
        ("SET", "table:k"),  # ERR wrong number of arguments
        ("INCR", "table:str"),  # ERR value is not an integer
    ):
        error = to_sluice_error(reply_of(client, *command), "test")
        assert isinstance(error, ServerError) and not error.retryable, command
        assert not judge(error, 1, WorkerSettings()).retry


def test_a_real_busy_reply_is_transient_and_an_unknown_one_is_retried(redis_factory: Any) -> None:
    server = redis_factory.redis(8, config=["busy-reply-threshold 50"])
    spinner, other = server.client(socket_timeout=10), server.client()
    spin = threading.Thread(target=lambda: reply_of(spinner, "EVAL", "while true do end", 0), daemon=True)
    spin.start()
    try:
        deadline = time.monotonic() + 5
        busy = None
        while busy is None and time.monotonic() < deadline:
            try:
                other.ping()
                time.sleep(0.02)
            except rex.ResponseError as e:
                busy = e
        assert busy is not None and error_code(busy) == "BUSY", busy
        assert isinstance(to_sluice_error(busy, "test"), RedisUnavailable)
    finally:
        other.script_kill()
        spin.join(5)
    # a code the table does not know: retried with backoff, dead-lettered only after max_deliveries
    unknown = to_sluice_error(rex.ResponseError("NEWCODE something a future server says"), "test")
    assert isinstance(unknown, ServerError) and unknown.retryable and unknown.code == "NEWCODE"
    settings = WorkerSettings(max_deliveries=3)
    assert judge(unknown, 1, settings).retry and not judge(unknown, 3, settings).retry


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (rex.ResponseError("LOADING Redis is loading the dataset in memory"), "LOADING"),
        (rex.BusyLoadingError("Redis is loading the dataset in memory"), "LOADING"),
        (rex.ResponseError("MASTERDOWN Link with MASTER is down"), "MASTERDOWN"),
        (rex.ResponseError("NOREPLICAS Not enough good replicas to write."), "NOREPLICAS"),
        (rex.ResponseError("MISCONF Redis is configured to save RDB snapshots"), "MISCONF"),
        (rex.MovedError("3999 127.0.0.1:6381"), "MOVED"),
        (rex.AskError("3999 127.0.0.1:6381"), "ASK"),
        (rex.TryAgainError("Multiple keys request during rehashing of slot"), "TRYAGAIN"),
        (rex.ClusterDownError("The cluster is down"), "CLUSTERDOWN"),
        (rex.ReadOnlyError("You can't write against a read only replica."), ""),
    ],
)
def test_replies_of_a_server_that_cannot_serve_now_are_transient(error: Exception, code: str) -> None:
    if code:
        assert error_code(error) == code
    translated = to_sluice_error(error, "test")
    assert isinstance(translated, RedisUnavailable), (error, translated)

"""The partition count against real Redis: recorded by the first client or worker, refused on a
mismatch at connect, and changed safely by `sluice partitions --set N` (queues drained, workers
stopped, every stream's ids moved above every stored version, then the new count recorded)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation

from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.jobs.models import CacheFillPayload
from sluice.keys import Keys, digest
from sluice.models.prompts import cache_prompt
from sluice.queue.producer import Producer
from sluice.settings import Settings
from sluice.stores import generations as codec
from sluice_workers.cli.main import main
from sluice_workers.runtime.process import run_process
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until

HOUR_MS = 3_600_000


def settings_for(url: str, namespace: str, partitions: int) -> Settings:
    return fast_settings(url, namespace, queue={"partitions": partitions})


def fill(prompt: str, text: str) -> CacheFillPayload:
    return CacheFillPayload(
        llm_string="llm", prompt=cache_prompt(prompt), generations=codec.to_dicts([Generation(text=text)])
    )


def moved(namespace: str, target: Callable[[int], str]) -> int:
    """The first i whose target moves from partition 0 or 1 of 2 to a partition >= 2 of 5."""
    return next(i for i in range(1000) if Keys(namespace, 5).partition_of(target(i)) >= 2)


def sluice(url: str, namespace: str, *args: str) -> int:
    return main(["--url", url, "--namespace", namespace, "partitions", *args])


def test_a_client_with_another_partition_count_is_refused_at_connect(redis8: Any, namespace: str) -> None:
    # Given a namespace first used with 4 partitions
    first = Client(settings_for(redis8.url, namespace, 4))
    assert first.capabilities.version >= (6, 2, 0)
    assert first.redis.get(first.keys.partitions_key()) == b"4"
    # When a client with 8 connects (probe, enqueue, asyncio), then each is refused naming both counts
    other = settings_for(redis8.url, namespace, 8)
    with pytest.raises(ConfigError, match=r"is 8 here, but namespace .* runs with 4 partitions") as refused:
        _ = Client(other).capabilities
    assert "sluice partitions set N" in str(refused.value)
    with pytest.raises(ConfigError, match="runs with 4 partitions"):
        Producer(first.redis, other).enqueue(fill("p", "x"))
    with pytest.raises(ConfigError, match="runs with 4 partitions"):
        asyncio.run(Client(other).acapabilities())
    # And a client with the recorded count connects and enqueues
    Client(settings_for(redis8.url, namespace, 4)).enqueue([fill("p", "x")])
    first.close()


def test_a_worker_with_another_partition_count_refuses_to_start(redis8: Any, namespace: str) -> None:
    # Given a namespace recorded with 4 partitions
    Client(settings_for(redis8.url, namespace, 4)).enqueue([fill("p", "x")])
    # When a worker configured with 2 starts, then it stops at once with the reason
    with pytest.raises(ConfigError, match=r"is 2 here, but namespace .* runs with 4 partitions"):
        run_process(settings_for(redis8.url, namespace, 2), 0, threading.Event())
    # And the first worker of a new namespace records its own count
    fresh = settings_for(redis8.url, f"{namespace}-fresh", 3)
    key = Keys(fresh.namespace).partitions_key()
    with ThreadWorker(fresh):
        probe = Client(fresh)
        wait_until(lambda: probe.redis.get(key) == b"3", 10, "the worker to record its count")


def test_sluice_partitions_shows_the_recorded_count(
    redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a namespace no one used yet, then one recorded with 4
    assert sluice(redis8.url, namespace) == 0
    assert "none recorded yet" in capsys.readouterr().out
    Client(settings_for(redis8.url, namespace, 4)).enqueue([fill("p", "x")])
    # When shown with another configured count, then it says both and exits 1
    assert main(["--url", redis8.url, "--namespace", namespace, "partitions"]) == 0
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SLUICE_QUEUE__PARTITIONS", "6")
        assert sluice(redis8.url, namespace) == 1
    assert "4; this configuration: 6" in capsys.readouterr().out


def test_changing_the_count_keeps_every_key_newer_than_what_is_stored(
    redis8: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a namespace on 2 partitions whose streams gave out ids an hour ahead (a fast clock),
    # holding a conversation and a cache entry written through them, both of which the new count
    # routes to a stream that did not exist before
    session = moved(namespace, lambda i: f"history:s{i}")
    prompt = moved(namespace, lambda i: f"cache:default:{digest('llm')}:{digest(cache_prompt(f'q{i}'))}")
    session, prompt = f"s{session}", f"q{prompt}"
    old = Client(settings_for(redis8.url, namespace, 2))
    for stream in Keys(namespace, 2).streams("history-append") + Keys(namespace, 2).streams("cache-fill"):
        old.redis.execute_command(
            "XADD", stream, "MAXLEN", "0", f"{int(time.time() * 1000) + HOUR_MS}-0", "x", "1"
        )
    history = old.chat_history(session)
    with ThreadWorker(old.settings):
        history.add_messages([HumanMessage("first"), HumanMessage("second")])
        old.wait(old.enqueue([fill(prompt, "old answer")], notify=True), 20)
        # When the count is changed while a worker is alive, or a job is queued, it is refused
        assert sluice(redis8.url, namespace, "--set", "5") == 2
        assert "workers are alive" in capsys.readouterr().err
    [queued] = old.enqueue([fill("other", "x")])
    assert sluice(redis8.url, namespace, "--set", "5") == 2
    assert "streams still hold jobs" in capsys.readouterr().err
    with ThreadWorker(old.settings):
        old.wait([queued], 20)
    # And with the queues drained and the workers stopped, it is changed
    assert sluice(redis8.url, namespace, "--set", "5") == 0
    assert "2 -> 5 partitions" in capsys.readouterr().out
    # Then the old count is refused, and under the new one every key's new writes are newer
    with pytest.raises(ConfigError, match="runs with 5 partitions"):
        _ = Client(settings_for(redis8.url, namespace, 2)).capabilities
    new = Client(settings_for(redis8.url, namespace, 5))
    with ThreadWorker(new.settings):
        new.chat_history(session).add_messages([HumanMessage("third")])
        new.wait(new.enqueue([fill(prompt, "new answer")], notify=True), 20)
        assert [m.content for m in new.chat_history(session).messages] == ["first", "second", "third"]
    assert new.llm_cache().lookup(cache_prompt(prompt), "llm") == [Generation(text="new answer")]
    old.close()
    new.close()

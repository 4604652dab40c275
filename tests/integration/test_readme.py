"""The README's quick start runs as written: its own worker command, its own app code, twice.

And when it cannot (a worker serving another namespace), the wait says so.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.messages import HumanMessage

from sluice.errors import WaitTimeout
from sluice.facade.client import Client
from sluice.jobs.codec import Job
from sluice.jobs.models import HistoryAppendPayload
from sluice.queue.waiting import AsyncWaiter, Waiter
from sluice.types import EntryId
from support.settings import fast_settings
from support.workers import ProcessWorker, ThreadWorker, wait_until

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "redis://localhost:6379/0"
README_NAMESPACE = "myapp"


def _quick_start_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Quick start")
    return text[start : text.index("\n## ", start + 1)]


def quick_start() -> str:
    blocks = re.findall(r"```python\n(.*?)```", _quick_start_section(), flags=re.S)
    return str(blocks[0])


def worker_command() -> tuple[dict[str, str], list[str]]:
    """The README's worker command line: its environment assignments and its argv."""
    blocks = re.findall(r"```bash\n(.*?)```", _quick_start_section(), flags=re.S)
    words = shlex.split(blocks[0].strip())
    env: dict[str, str] = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def _localize(text: str, url: str, namespace: str) -> str:
    """The README's Redis and namespace replaced, the same way in the command and the code."""
    return text.replace(README_URL, url).replace(README_NAMESPACE, namespace)


def test_the_quick_start_runs_as_written_with_its_own_worker_command_twice(
    redis8: Any, namespace: str
) -> None:
    # Given the README's worker command, started as written (its environment and arguments)
    assigned, argv = worker_command()
    assert argv[:2] == ["sluice", "worker"], argv
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({k: _localize(v, redis8.url, namespace) for k, v in assigned.items()})
    code = _localize(quick_start(), redis8.url, namespace)
    assert "from sluice import Client" in code and namespace in code
    client = Client(fast_settings(redis8.url, namespace))
    worker = ProcessWorker(client.settings, *argv[2:], env=env)
    try:
        with worker:
            wait_until(lambda: len(client.status().workers) >= 2, 60, "the README's two worker processes")
            # When the quick start runs, and runs again (the session, the documents persist)
            for run in (1, 2):
                scope: dict[str, Any] = {}
                exec(compile(code, "README.md", "exec"), scope)
                # Then it passes its own asserts and finds its document each time
                assert [d.page_content for d in scope["hits"]] == [
                    "Redis Streams keep a job until a consumer acknowledges it"
                ], run
                assert len(scope["ids"]) == 2
                scope["cache"].close()
            code_, output = worker.terminate()
            assert code_ == 0, output
    finally:
        set_llm_cache(None)  # the quick start sets the global LangChain cache
        client.close()


# --- why a wait times out ---------------------------------------------------------------------------


class SlowHandler:
    kind = "history-append"

    def handle(self, jobs: Sequence[Job]) -> dict[EntryId, BaseException]:
        time.sleep(1.5)
        return {}


def _waiter(client: Client) -> Waiter:
    return Waiter(client.redis, client.keys, client.settings.queue.group)


def _timeout(client: Client, timeout: float = 0.3) -> str:
    handles = client.enqueue([HistoryAppendPayload(session_id="s", messages=[])])
    with pytest.raises(WaitTimeout) as caught:
        _waiter(client).wait(handles, timeout)
    return str(caught.value)


def test_a_wait_with_no_worker_in_the_namespace_says_so(redis8: Any, namespace: str) -> None:
    # Given workers serve another namespace (the quick start's mistake), none this one
    client = Client(fast_settings(redis8.url, namespace))
    other = fast_settings(redis8.url, f"{namespace}other")
    with ThreadWorker(other):
        wait_until(lambda: Client(other).status().workers, 10, "the other namespace's heartbeat")
        # When a wait times out, Then the error says no worker serves this namespace, and how to start one
        message = _timeout(client)
    assert f"no worker heartbeat in namespace {namespace!r}" in message
    assert f"SLUICE_NAMESPACE={namespace}" in message
    # And so does a facade's read that waits for its own writes (a floor wait), sync and async
    history = client.chat_history("s", wait_timeout=0.3, on_timeout="raise")
    history.add_messages([HumanMessage("hi")])
    with pytest.raises(WaitTimeout, match=f"no worker heartbeat in namespace {namespace!r}"):
        history.messages
    handle = client.enqueue([HistoryAppendPayload(session_id="s", messages=[])])[0]
    with pytest.raises(WaitTimeout, match=f"no worker heartbeat in namespace {namespace!r}"):
        _waiter(client).wait_floors({handle.stream: handle.entry_id}, 0.3)

    async def async_waits() -> list[str]:
        # one event loop: a Client's asyncio connection belongs to the first loop that used it
        waiter = AsyncWaiter(client.async_redis, client.keys, client.settings.queue.group)
        handles = client.enqueue([HistoryAppendPayload(session_id="s", messages=[])])
        messages = []
        with pytest.raises(WaitTimeout) as caught:
            await waiter.wait(handles, 0.3)
        messages.append(str(caught.value))
        with pytest.raises(WaitTimeout) as caught:
            await waiter.wait_floors({handles[0].stream: handles[0].entry_id}, 0.3)
        messages.append(str(caught.value))
        return messages

    for message in asyncio.run(async_waits()):
        assert f"no worker heartbeat in namespace {namespace!r}" in message
    client.close()


def test_a_wait_names_workers_that_do_not_take_the_kind_or_have_not_finished(
    redis8: Any, namespace: str
) -> None:
    client = Client(fast_settings(redis8.url, namespace))
    # Given the only worker takes index jobs, When a history job's wait times out
    with ThreadWorker(fast_settings(redis8.url, namespace, kinds=["index"])):
        wait_until(lambda: client.status().workers, 10, "a heartbeat")
        message = _timeout(client)
    # Then the error says none takes that kind
    assert "none takes 'history-append' jobs" in message, message
    # Given a worker that takes them but is slow, Then the error says it serves the namespace
    with ThreadWorker(fast_settings(redis8.url, namespace), handlers={"history-append": SlowHandler()}):
        wait_until(lambda: client.status().workers, 10, "a heartbeat")
        message = _timeout(client)
    assert f"1 worker(s) serve namespace {namespace!r} but have not applied them yet" in message, message
    assert f"sluice --namespace {namespace} status" in message
    client.close()


def test_the_readme_says_how_to_run_sluice_after_make() -> None:
    text = README.read_text(encoding="utf-8")
    two_commands = text[text.index("## Two commands") : text.index("## Install")]
    assert ".venv/bin/sluice" in two_commands and "source .venv/bin/activate" in two_commands

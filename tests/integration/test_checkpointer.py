"""`client.checkpointer()` under real LangGraph graphs: memory across invocations, interrupts,
history, durability modes, TTLs, failures, and threads continued by another app process."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from sluice.errors import ConfigError, InvalidArgument, JobFailed, PayloadTooLarge, PermanentJobError
from sluice.facade.client import Client
from sluice.jobs.codec import Job
from sluice.jobs.models import CheckpointPayload
from sluice.settings import Settings
from sluice_workers.handlers.base import Failures
from sluice_workers.handlers.checkpoint import CheckpointHandler
from support.agent import answer, build_agent, build_approval
from support.settings import fast_settings
from support.workers import ProcessWorker, ThreadWorker, wait_until

TESTS = Path(__file__).resolve().parents[1]


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


class Slowed:
    """The checkpoint handler, `delay` seconds late on every batch (a busy worker); jobs of the
    threads in `poison` fail permanently."""

    kind = "checkpoint"

    def __init__(self, settings: Settings, delay: float, poison: Sequence[str] = ()) -> None:
        self.settings = settings
        self.delay = delay
        self.poison = set(poison)
        self.inner: CheckpointHandler | None = None

    def handle(self, jobs: Sequence[Job]) -> Failures:
        if self.inner is None:
            from sluice.connection.factory import connect

            self.inner = CheckpointHandler.build(connect(self.settings.redis), self.settings, cluster=False)
        time.sleep(self.delay)
        bad = {
            j.entry_id: PermanentJobError("poisoned on purpose") for j in jobs if _thread(j) in self.poison
        }
        good = [j for j in jobs if j.entry_id not in bad]
        return {**bad, **self.inner.handle(good)}


def _thread(job: Job) -> str:
    p = job.envelope.payload
    return p.thread_id if isinstance(p, CheckpointPayload) else ""


def worker(settings: Settings, delay: float = 0.0, poison: Sequence[str] = ()) -> ThreadWorker:
    handlers: Mapping[str, Any] | None = None
    if delay or poison:
        handlers = {"checkpoint": Slowed(settings, delay, poison)}
    return ThreadWorker(
        settings.model_copy(update={"worker": settings.worker.model_copy(update={"kinds": ["checkpoint"]})}),
        handlers,
    )


@pytest.fixture
def settings(redis8: Any, namespace: str) -> Settings:
    return fast_settings(redis8.url, namespace)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings)
    yield c
    c.close()


def history(graph: Any, config: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What get_state_history shows, newest first, without ids and timestamps."""
    return [
        (s.metadata["step"], s.metadata["source"], s.next, [m.content for m in s.values.get("messages", [])])
        for s in graph.get_state_history(config)
    ]


def test_an_agent_keeps_its_memory_and_its_history_walks_back(client: Client, settings: Settings) -> None:
    # Given an agent (fake chat model + a tool) on a sluice checkpointer, and the same agent in memory
    agent, reference = build_agent(client.checkpointer()), build_agent(InMemorySaver())
    with worker(settings):
        # When it is invoked twice on one thread
        for graph in (agent, reference):
            first = graph.invoke({"messages": [HumanMessage("my name is Ada")]}, thread("ada"))
            second = graph.invoke({"messages": [HumanMessage("what is my name?")]}, thread("ada"))
        # Then the second turn saw the first, and another thread sees nothing of it
        assert answer(first) == "turn 1 (4 words); you said: my name is Ada"
        assert answer(second) == "turn 2 (4 words); you said: my name is Ada | what is my name?"
        other = agent.invoke({"messages": [HumanMessage("hello")]}, thread("bob"))
        assert answer(other) == "turn 1 (1 words); you said: hello"
        # And the state history walks back through every step, exactly as LangGraph's own saver's
        walked = history(agent, thread("ada"))
        assert walked == history(reference, thread("ada"))
        assert [s for s, *_ in walked] == [8, 7, 6, 5, 4, 3, 2, 1, 0, -1]
        assert walked[-1][1] == "input"
        # And a past state can be read by its checkpoint id
        snapshots = list(agent.get_state_history(thread("ada")))
        past = agent.get_state(snapshots[5].config)
        assert [m.content for m in past.values["messages"]][:1] == ["my name is Ada"]


async def test_an_async_agent_keeps_its_memory(client: Client, settings: Settings) -> None:
    agent = build_agent(client.checkpointer())
    with worker(settings):
        await agent.ainvoke({"messages": [HumanMessage("one")]}, thread("async"))
        second = await agent.ainvoke({"messages": [HumanMessage("two")]}, thread("async"))
        assert answer(second) == "turn 2 (1 words); you said: one | two"
        states = [s async for s in agent.aget_state_history(thread("async"))]
        assert len(states) == 10
    await client.aclose()


def test_an_interrupt_is_resumed_with_command_from_another_client(client: Client, settings: Settings) -> None:
    # Given a graph that stops for a human decision
    with worker(settings):
        graph = build_approval(client.checkpointer())
        result = graph.invoke({"messages": [HumanMessage("hi")]}, thread("approval"))
        assert result["__interrupt__"][0].value == {"question": "send this draft?", "draft": "draft: hi"}
        # When another client (another app replica) resumes it
        other = Client(settings)
        resumed_graph = build_approval(other.checkpointer())
        assert resumed_graph.get_state(thread("approval")).next == ("approve",)
        resumed = resumed_graph.invoke(Command(resume="yes, send it"), thread("approval"))
        # Then the interrupted node finished with the decision, and nothing is left to run
        assert [m.content for m in resumed["messages"]] == ["hi", "draft: hi", "decision: yes, send it"]
        assert graph.get_state(thread("approval")).next == ()
        other.close()


def replica_turn(settings: Settings, thread_id: str, text: str) -> str:
    """One agent turn in a separate Python process (another app replica)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    code = "from support.agent import main; main()"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            settings.redis.url.get_secret_value(),
            settings.namespace,
            thread_id,
            text,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_thread_started_by_one_process_is_continued_by_another(client: Client, settings: Settings) -> None:
    # Given busy workers (every batch 0.3 s late), so a turn's last writes are still queued when
    # the next turn starts elsewhere
    agent = build_agent(client.checkpointer())
    with worker(settings, delay=0.3):
        # When turns alternate between another process and this one, with no waiting in between
        first = replica_turn(settings, "replicas", "I am turn one")
        second = answer(agent.invoke({"messages": [HumanMessage("I am turn two")]}, thread("replicas")))
        third = replica_turn(settings, "replicas", "I am turn three")
    # Then every turn saw every earlier one
    assert first == "turn 1 (4 words); you said: I am turn one"
    assert second == "turn 2 (4 words); you said: I am turn one | I am turn two"
    assert third == "turn 3 (4 words); you said: I am turn one | I am turn two | I am turn three"


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_durability_modes_behave_as_langgraph_documents(
    client: Client, settings: Settings, durability: str
) -> None:
    # Given busy workers and a reader that does not wait for pending writes
    agent = build_agent(client.checkpointer())
    reference = build_agent(InMemorySaver())
    peek = Client(settings).checkpointer(read_your_writes=False)
    with worker(settings, delay=0.2):
        # When a turn runs with this durability
        for graph in (agent, reference):
            graph.invoke({"messages": [HumanMessage("remember me")]}, thread("d"), durability=durability)
        latest = peek.get_tuple(thread("d"))
        # Then "sync" returns only once the last checkpoint is applied; "async" and "exit" return
        # once it is queued (a reader that waits, as by default, sees it at once)
        if durability == "sync":
            assert latest is not None and latest.metadata["step"] == 3
        else:
            assert latest is None or latest.metadata["step"] < 3
        # And the checkpoints kept are the ones LangGraph's own saver keeps in this mode
        assert history(agent, thread("d")) == history(reference, thread("d"))
    if durability == "exit":
        assert len(history(agent, thread("d"))) == 1


def test_a_thread_expires_after_its_ttl_unless_read(client: Client, settings: Settings) -> None:
    saver = client.checkpointer(ttl=1.0)
    agent = build_agent(saver)
    with worker(settings):
        agent.invoke({"messages": [HumanMessage("short lived")]}, thread("ttl"))
        agent.invoke({"messages": [HumanMessage("kept alive")]}, thread("kept"))
        for _ in range(4):  # reads refresh the TTL of "kept"
            time.sleep(0.4)
            assert saver.get_tuple(thread("kept")) is not None
        # the thread nobody read expired, every key of it
        assert saver.get_tuple(thread("ttl")) is None
        assert client.redis.exists(*client.keys.checkpoint_keys("ttl")) == 0
        ttl = client.redis.pttl(client.keys.checkpoint_keys("kept")[1])
        assert 0 < ttl <= 1000
        # and a reader with refresh_on_read=False does not keep it alive
        no_refresh = client.checkpointer(ttl=1.0, refresh_on_read=False)
        time.sleep(0.5)
        no_refresh.get_tuple(thread("kept"))
        assert client.redis.pttl(client.keys.checkpoint_keys("kept")[1]) < 600


def test_a_dead_lettered_write_fails_the_writer_once_and_other_readers_go_on(
    client: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a worker that dead-letters every job of thread "poison"
    saver = client.checkpointer()
    agent = build_agent(saver)
    with worker(settings, poison=["poison"]):
        agent.invoke({"messages": [HumanMessage("doomed")]}, thread("poison"))
        # When the process that wrote reads the thread, Then it learns of the failure, once
        with pytest.raises(JobFailed, match="poisoned on purpose"):
            saver.get_tuple(thread("poison"))
        assert saver.get_tuple(thread("poison")) is None
        # And another process reads what is there: the dead writes are marked dead in the thread's
        # pending sets, so it does not wait for them (nor warn about them on every read)
        members = {m for k in client.redis.scan_iter(match=f"{settings.namespace}:jobs:*:pend:*")
                   for m in client.redis.smembers(k)}  # fmt: skip
        assert members and all(m.startswith(b"dead:") for m in members)
        other = Client(settings)
        with caplog.at_level(logging.WARNING, logger="sluice.facade.consistency"):
            assert other.checkpointer().get_tuple(thread("poison")) is None
        assert not [r for r in caplog.records if r.name.startswith("sluice.facade")]
        other.close()


def test_sync_durability_fails_the_step_when_the_write_is_dead_lettered(
    client: Client, settings: Settings
) -> None:
    agent = build_agent(client.checkpointer())
    with worker(settings, poison=["poison-sync"]), pytest.raises(JobFailed):
        agent.invoke({"messages": [HumanMessage("doomed")]}, thread("poison-sync"), durability="sync")


def test_limits_and_bad_input_are_refused_at_enqueue(client: Client, settings: Settings) -> None:
    agent = build_agent(client.checkpointer())
    huge = "word " * 300_000  # 1.5 MB > SLUICE_LIMITS__MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLarge, match="SLUICE_LIMITS__MAX_PAYLOAD_BYTES"):
        agent.invoke({"messages": [HumanMessage(huge)]}, thread("huge"))
    saver = client.checkpointer()
    with pytest.raises(ConfigError, match="thread_id"):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(ConfigError, match="one thread"):
        list(saver.list(None))
    # bad arguments are sluice's InvalidArgument, a ValueError as LangGraph callers expect
    with pytest.raises(InvalidArgument, match="'auto', 'applied' or 'enqueued'"):
        client.checkpointer(write="sync")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="ttl must be positive"):
        client.checkpointer(ttl=0)
    with pytest.raises(ValueError, match="prune strategy"):
        saver.prune(["t"], strategy="newest")


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_no_step(settings: Settings) -> None:
    # Given a real worker process, and an agent running ten turns without waiting for the writes
    client = Client(settings)
    agent = build_agent(client.checkpointer())
    workers = [ProcessWorker(settings, "--kinds", "checkpoint").start()]

    def kill_and_replace() -> None:  # When the worker is SIGKILLed mid-run, then replaced
        time.sleep(0.5)
        workers[0].kill()
        time.sleep(0.5)
        workers.append(ProcessWorker(settings, "--kinds", "checkpoint").start())

    killer = threading.Thread(target=kill_and_replace)
    killer.start()
    try:
        for i in range(10):
            agent.invoke({"messages": [HumanMessage(f"turn {i}")]}, thread("killed"))
            time.sleep(0.1)
        killer.join()
        # Then every checkpoint of every turn is there, once, and the last state has every message
        final = agent.get_state(thread("killed"))
        steps = [s.metadata["step"] for s in agent.get_state_history(thread("killed"))]
        assert steps == list(range(48, -2, -1))
        assert [m.content for m in final.values["messages"] if isinstance(m, HumanMessage)] == [
            f"turn {i}" for i in range(10)
        ]
        assert len(final.values["messages"]) == 40
    finally:
        killer.join()
        for w in workers:
            w.terminate()
        client.close()


@pytest.mark.cluster
async def test_the_conformance_suite_passes_on_a_cluster(cluster: Any, namespace: str) -> None:
    from langgraph.checkpoint.conformance import checkpointer_test, validate

    c = Client(fast_settings(cluster.url, namespace))
    assert c.capabilities.cluster

    @checkpointer_test(name="sluice-cluster")
    async def saver() -> Any:
        yield c.checkpointer()

    with ThreadWorker(c.settings):
        report = await validate(saver)
        wait_until(lambda: True, 1, "")
    assert {n: r.failures for n, r in report.results.items() if r.failures} == {}
    assert all(r.passed for r in report.results.values() if r.detected)
    await c.aclose()
    c.close()


def test_the_readme_langgraph_example_runs_as_written_twice(settings: Settings) -> None:
    text = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    start = text.index("## LangGraph memory")
    section = text[start : text.index("\n## ", start + 1)]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    code = code.replace("redis://localhost:6379/0", settings.redis.url.get_secret_value())
    code = code.replace('namespace="myapp"', f'namespace="{settings.namespace}"')
    with worker(settings):
        for _ in range(2):
            scope: dict[str, Any] = {}
            exec(compile(code, "README.md", "exec"), scope)
            scope["client"].close()


def test_delete_for_runs_removes_a_runs_checkpoints_in_every_thread_and_leaves_no_index_behind(
    client: Client, settings: Settings
) -> None:
    # Given two threads each run twice by one agent, each invoke a run with its own run_id (as
    # LangGraph's server sets it: config metadata)
    saver = client.checkpointer(ttl=600)
    agent = build_agent(saver)
    with worker(settings):
        runs: dict[str, list[str]] = {}
        for t in ("r1", "r2"):
            runs[t] = [f"{t}-run-{n}" for n in range(2)]
            for run in runs[t]:
                agent.invoke({"messages": [HumanMessage(run)]}, {**thread(t), "metadata": {"run_id": run}})
            assert {s.metadata["run_id"] for s in saver.list(thread(t))} == set(runs[t])
        doomed = [runs["r1"][0], runs["r2"][1]]
        # When the first thread's newest run and the second's oldest are deleted
        saver.delete_for_runs(doomed)
        # Then their checkpoints are gone and the others stay, in both threads
        for t in ("r1", "r2"):
            left = {s.metadata["run_id"] for s in saver.list(thread(t))}
            assert left == set(runs[t]) - set(doomed)
        # And the run index holds no thread for a deleted run, and expires with the threads
        keys = client.keys
        assert client.redis.exists(*(keys.checkpoint_run(r) for r in doomed)) == 0
        kept = runs["r1"][1]
        assert client.redis.smembers(keys.checkpoint_run(kept)) == {b"r1"}
        assert 0 < client.redis.pttl(keys.checkpoint_run(kept)) <= 600_000
        # and deleting a thread takes it out of the index of every run it held
        saver.delete_thread("r1")
        saver.flush("r1")
        assert client.redis.exists(keys.checkpoint_run(kept)) == 0
